"""``rnnbench``: a small command line that dispatches to the Hydra app and the reporting tools."""

from __future__ import annotations

import sys

USAGE = """usage: rnnbench COMMAND [ARGS]

commands:
  train [-m] [KEY=VALUE ...]   train one run, or a Hydra multirun sweep with -m (see: rnnbench train --help)
  table SWEEP_DIR [...]        one table of the runs below the dirs: mean ± std (n) over seeds per group,
                               or --compare KEY=A KEY=B with bootstrap CIs (see: rnnbench table --help)
  plot SWEEP_DIR [...] --kind gradient-flow|curves|clip-rate
                               PNG and SVG figures of the runs below the dirs (see: rnnbench plot --help)

Every job writes result.json in its Hydra output dir (outputs/... or multirun/...)."""

# Hydra's own flags: they inspect or print the config, so there is nothing to validate first.
HYDRA_INSPECTION_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--version",
                          "--shell-completion", "-sc", "--resolve", "--package", "-p", "--config-path", "-cp",
                          "--config-name", "-cn", "--config-dir", "-cd", "--experimental-rerun")


def train(arguments: list[str]) -> int:
    from rnnbench.errors import RnnbenchError

    if not any(a.split("=")[0] in HYDRA_INSPECTION_FLAGS for a in arguments):
        from rnnbench.preflight import preflight

        try:
            preflight(arguments)
        except RnnbenchError as error:
            print(f"rnnbench: error: {error}", file=sys.stderr)
            return 2
    from rnnbench import app
    from rnnbench.tracking import summary

    sys.argv = ["rnnbench train", *arguments]
    app.train()
    return summary.exit_status


def _report_error(error: Exception) -> int:
    from rnnbench.report.plot import NoData

    print(f"rnnbench: error: {error}", file=sys.stderr)
    return 1 if isinstance(error, NoData) else 2


def table(arguments: list[str]) -> int:
    import argparse

    from rnnbench.report.records import ReportError, load_runs
    from rnnbench.report.table import FORMATS, build_comparison, build_table

    parser = argparse.ArgumentParser(
        prog="rnnbench table",
        description="One table of every result.json below the dirs: rows group the runs by the settings that "
                    "vary (seed excluded), each metric is mean ± std (n) over the completed seeds.")
    parser.add_argument("dirs", nargs="+", metavar="SWEEP_DIR", help="sweep or run dirs (searched recursively)")
    parser.add_argument("--metric", action="append", metavar="NAME",
                        help="a column (repeatable): test/mse, best/val/loss, gradients.vanishing_log10, steps, "
                             "throughput.samples_per_second, ... (default: test metric, test loss, gradients)")
    parser.add_argument("--by", action="append", metavar="KEY",
                        help="group by this setting (repeatable; default: every setting that varies)")
    parser.add_argument("--compare", nargs=2, metavar=("KEY=A", "KEY=B"),
                        help="difference of means A - B per metric with a 95%% bootstrap CI over seeds, "
                             "within the remaining groups")
    parser.add_argument("--format", choices=FORMATS, default="markdown", help="output format (default: markdown)")
    parser.add_argument("--output", metavar="FILE", help="write the table here instead of stdout")
    options = parser.parse_args(arguments)
    try:
        runs = load_runs(options.dirs)
        if options.compare:
            result = build_comparison(runs, options.compare, metrics=options.metric, by=options.by)
        else:
            result = build_table(runs, metrics=options.metric, by=options.by)
        text = result.render(options.format)
        for warning in result.warnings:
            print(f"rnnbench: warning: {warning}", file=sys.stderr)
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


def plot(arguments: list[str]) -> int:
    import argparse

    from rnnbench.report.plot import DEFAULT_BY, KINDS
    from rnnbench.report.records import ReportError, code_differences, load_runs

    parser = argparse.ArgumentParser(
        prog="rnnbench plot",
        description="Figures (PNG and SVG) of every result.json below the dirs: gradient-flow (gradient norm "
                    "against distance from the loss), curves (train/val loss against step), clip-rate "
                    "(clip rate and divergence against trainer.gradient_clip_val).")
    parser.add_argument("dirs", nargs="+", metavar="SWEEP_DIR", help="sweep or run dirs (searched recursively)")
    parser.add_argument("--kind", required=True, choices=KINDS, help="which figure")
    parser.add_argument("--by", action="append", metavar="KEY",
                        help=f"one line per value of this setting (repeatable; default: {', '.join(DEFAULT_BY)})")
    parser.add_argument("--output", metavar="DIR", default=".", help="dir for KIND.png and KIND.svg (default: .)")
    options = parser.parse_args(arguments)
    try:
        from rnnbench.report.plot import plot as draw

        runs = load_runs(options.dirs)
        for warning in code_differences(runs.runs) + [f"skipped unreadable record {s}" for s in runs.skipped]:
            print(f"rnnbench: warning: {warning}", file=sys.stderr)
        for path in draw(runs, options.kind, by=options.by, output=options.output):
            print(path)
    except (ReportError, OSError) as error:
        return _report_error(error)
    return 0


COMMANDS = {"train": train, "table": table, "plot": plot}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"rnnbench: error: unknown command {argv[0]!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return command(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
