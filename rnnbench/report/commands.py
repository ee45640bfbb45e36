"""`rnnbench table`, `rnnbench plot` and `rnnbench report`: argument parsing and error reporting around the report package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _warn(lines: list[str]) -> None:
    for line in lines:
        print(f"rnnbench: warning: {line}", file=sys.stderr)


def beside_records(dirs: list[str]) -> Path:
    """Where a command writes by default: inside the first dir (the dir of the first record, where a file is
    given), beside the records it reads, not the current dir."""
    first = Path(dirs[0])
    return first if first.is_dir() else first.parent


def _report_error(error: Exception) -> int:
    from rnnbench.report.plot import NoData

    _warn(getattr(error, "warnings", []))  # the records skipped on the way, which may explain the error
    print(f"rnnbench: error: {error}", file=sys.stderr)
    return 1 if isinstance(error, NoData) else 2


def table_command(arguments: list[str]) -> int:
    from rnnbench.report.records import ReportError, load_runs
    from rnnbench.report.compare import build_comparison
    from rnnbench.report.table import FORMATS, build_table

    parser = argparse.ArgumentParser(
        prog="rnnbench table",
        description="One table of every result.json below the dirs: rows group the runs by the settings that "
                    "vary (seed excluded), each metric is mean ± std (n) over the completed seeds.")
    parser.add_argument("dirs", nargs="+", metavar="SWEEP_DIR", help="sweep or run dirs (searched recursively)")
    parser.add_argument("--metric", action="append", metavar="NAME",
                        help="a column (repeatable): test/mse, best/val/loss, gradients.vanishing_log10, steps, "
                             "throughput.samples_per_second, steps_to:val/mse<0.01 (steps until the validation "
                             "metric first met the threshold), ... (default: test metric, test loss, gradients)")
    parser.add_argument("--by", action="append", metavar="KEY",
                        help="group by this setting (repeatable; default: every setting that varies)")
    parser.add_argument("--compare", nargs=2, metavar=("KEY=A", "KEY=B"),
                        help="A against B per metric over seeds, within the remaining groups: the difference of "
                             "means, the interval the verdict reads, p, Holm's p over the table, the margin and "
                             "Holm's p of equivalence, and the verdict: A > B, A < B, 'equivalent within ±δ' or "
                             "'inconclusive' (with the smallest |A - B| the design detects with 80%% power)")
    parser.add_argument("--interval", choices=["auto", "welch", "paired", "bootstrap"], default="auto",
                        help="the --compare test: auto (paired where both sides ran the same seeds, else "
                             "Welch's t), welch, paired, or the percentile bootstrap (default: auto)")
    parser.add_argument("--margin", action="append", metavar="METRIC=δ", default=[],
                        help="--compare: the equivalence margin of a metric (repeatable), e.g. test/mse=0.01; "
                             "default: 10%% of |B's mean - the task's input-blind baseline| on the task's metric "
                             "and loss; a metric with neither gets no equivalence test")
    parser.add_argument("--success", action="append", metavar="METRIC<X", default=[],
                        help="a threshold (repeatable), e.g. 'test/mse<0.01' or 'test/accuracy>0.9': a column of "
                             "how many runs met it (a diverged run counts as not reaching it); with --compare, a row "
                             "comparing the fractions by Boschloo's exact test, as each steps_to: metric also gets")
    parser.add_argument("--published", metavar="CSV",
                        help="add a 'published' column: a CSV naming some of the table's columns (model.cell, "
                             "metric, ...) and a 'published' column, joined on those columns' values")
    parser.add_argument("--format", choices=FORMATS, default="markdown", help="output format (default: markdown)")
    parser.add_argument("--output", metavar="FILE", help="write the table here instead of stdout")
    options = parser.parse_args(arguments)
    try:
        runs = load_runs(options.dirs)
        if options.compare:
            result = build_comparison(runs, options.compare, metrics=options.metric, by=options.by,
                                      interval=options.interval, margins=options.margin, success=options.success)
        elif options.margin:
            raise ReportError(f"--margin {options.margin[0]} is not allowed without --compare: it is the margin of a "
                              "comparison's equivalence test")
        else:
            result = build_table(runs, metrics=options.metric, by=options.by, success=options.success)
        if options.published:
            from rnnbench.report.published import read_published

            result = read_published(options.published).add_to(result)
        text = result.render(options.format)
        _warn(result.warnings)  # the skipped and duplicate records among them
        if options.format in ("csv", "json"):
            for note in result.notes:
                print(f"rnnbench: note: {note}", file=sys.stderr)
        if options.output:
            with open(options.output, "w") as f:
                f.write(text)
            print(f"rnnbench: wrote {options.output}")
        else:
            sys.stdout.write(text)
    except (ReportError, OSError) as error:
        return _report_error(error)
    return 0


def plot_command(arguments: list[str]) -> int:
    from rnnbench.report.plot import DEFAULT_BY, KINDS
    from rnnbench.report.records import ReportError, code_differences, load_runs

    parser = argparse.ArgumentParser(
        prog="rnnbench plot",
        description="Figures (PNG and SVG) of every result.json below the dirs: gradient-flow (gradient norm "
                    "against distance from the loss), curves (train/val loss and the task metric against step), "
                    "curves-time (the same against training wall time), clip-rate (clip rate and divergence "
                    "against trainer.gradient_clip_val), gates (gate means and saturation over training), all.")
    parser.add_argument("dirs", nargs="+", metavar="SWEEP_DIR", help="sweep or run dirs (searched recursively)")
    parser.add_argument("--kind", required=True, choices=KINDS, help="which figure")
    parser.add_argument("--by", action="append", metavar="KEY",
                        help=f"one line per value of this setting (repeatable; default: {', '.join(DEFAULT_BY)})")
    parser.add_argument("--output", metavar="DIR",
                        help="dir for KIND.png and KIND.svg (default: the first SWEEP_DIR, beside the records)")
    options = parser.parse_args(arguments)
    try:
        from rnnbench.report.plot import plot as draw

        runs = load_runs(options.dirs)
        _warn(code_differences(runs.runs) + runs.warnings())
        output = options.output if options.output is not None else beside_records(options.dirs)
        for path in draw(runs, options.kind, by=options.by, output=output,
                         skipped=lambda line: print(f"rnnbench: note: {line}", file=sys.stderr)):
            print(path)
    except (ReportError, OSError) as error:
        return _report_error(error)
    return 0


def report_command(arguments: list[str]) -> int:
    from rnnbench.report.html import write_report
    from rnnbench.report.published import read_published
    from rnnbench.report.records import ReportError, load_runs

    parser = argparse.ArgumentParser(
        prog="rnnbench report",
        description="One self-contained HTML page of every result.json below the dirs (no network, no server): "
                    "the table, comparisons, figures, the runs and their provenance; choose the grouping, sort, "
                    "toggle lines and hover for values in the page.")
    parser.add_argument("dirs", nargs="+", metavar="SWEEP_DIR", help="sweep or run dirs (searched recursively)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="the page to write (default: report.html inside the first dir)")
    parser.add_argument("--by", action="append", metavar="KEY",
                        help="the page's first grouping (repeatable; default: every setting that varies); the page "
                             "also offers each varying setting alone")
    parser.add_argument("--metric", action="append", metavar="NAME",
                        help="a table column (repeatable; as rnnbench table --metric)")
    parser.add_argument("--compare", nargs=2, action="append", metavar=("KEY=A", "KEY=B"),
                        help="a comparison table (repeatable; as rnnbench table --compare: verdicts A > B, A < B, "
                             "'equivalent within ±δ' or 'inconclusive', Holm's adjustment over each table)")
    parser.add_argument("--interval", choices=["auto", "welch", "paired", "bootstrap"], default="auto",
                        help="the --compare test (default: auto)")
    parser.add_argument("--margin", action="append", metavar="METRIC=δ", default=[],
                        help="--compare: an equivalence margin (repeatable; as rnnbench table --margin)")
    parser.add_argument("--success", action="append", metavar="METRIC<X", default=[],
                        help="a threshold (repeatable; as rnnbench table --success): a column of the tables, a row "
                             "of the comparisons")
    parser.add_argument("--published", metavar="CSV",
                        help="a 'published' column on the tables whose columns the CSV names (as rnnbench table "
                             "--published)")
    options = parser.parse_args(arguments)
    try:
        runs = load_runs(options.dirs)
        _warn(runs.warnings())
        output = options.output or beside_records(options.dirs) / "report.html"
        if options.margin and not options.compare:
            raise ReportError(f"--margin {options.margin[0]} is not allowed without --compare: it is the margin of a "
                              "comparison's equivalence test")
        path = write_report(runs, options.dirs, output, by=options.by, compare=options.compare or (),
                            metrics=options.metric, interval=options.interval, margins=options.margin,
                            success=options.success,
                            published=read_published(options.published) if options.published else None)
        print(f"rnnbench: wrote {path}")
    except (ReportError, OSError) as error:
        return _report_error(error)
    return 0
