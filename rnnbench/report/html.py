"""``rnnbench report``: one self-contained HTML page of the runs below some dirs.

The page is one more view over the shared rows (:mod:`rnnbench.report.rows`): for each grouping a reader can
choose (distinct groupings only: two settings that split the runs alike are one choice), the table exactly as
``rnnbench table`` builds it and the figures of :mod:`rnnbench.report.figures`, as data; the ``--compare`` tables;
the list of runs; the provenance (training commands, commits, package versions, machine, dates, warnings).

The answer comes first: the table and the comparisons' verdicts, then the figures, then the runs and their
provenance. A long table shows its rows of one run each (a search, a pilot) folded below the others, a long list
of runs starts folded, and code versions that differ between runs are a folded note, not a warning (they are
provenance to check, not a fault of the runs). Everything is inline: the data as JSON in the page, its style, and a short script
(``report.js``, this package's own) that draws the figures as SVG, sorts the tables, switches the grouping, toggles
rows and shows values on hover. No network, no server: the page opens from disk or an e-mail attachment.

The output is deterministic: the same records give the same bytes. Links to each run's ``result.json`` and log
are relative to the page: ``link_base`` (the path from the page's dir to the dirs' common root) joined with each
run's path below that root.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from rnnbench.record.keys import LAUNCHER_ADDED
from rnnbench.report.compare import build_comparison
from rnnbench.report.cells import Fraction
from rnnbench.report.figures import KINDS as FIGURE_KINDS
from rnnbench.report.figures import PALETTE, NoData, build_figure, figure_views
from rnnbench.report.published import PUBLISHED, Published
from rnnbench.report.records import (VERSION_KEYS, ReportError, Run, RunSet, code_differences, display,
                                     is_code_difference, value_counts, varying_keys)
from rnnbench.report.rows import grouping
from rnnbench.report.table import Table, build_table

__all__ = ["build_page", "page_data", "write_report", "embedded_data", "MAX_GROUPINGS"]

MAX_GROUPINGS = 8  # grouping choices on the page: the default, then one per varying setting
FOLD_FROM = 15  # a table of more rows than this shows its rows of one run each folded below the others
DATA_ID = "report-data"
LOG_NAME = "rnnbench.log"


def _asset(name: str) -> str:
    return resources.files("rnnbench.report").joinpath("assets", name).read_text(encoding="utf-8")


# --- the page's data -------------------------------------------------------------------------------------------

def _finite(value: Any) -> Any:
    """``value``, with a number that is not finite as None (JSON has no infinity)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def table_data(table: Table) -> dict[str, Any]:
    """A table as the page shows it: column names, which are numeric, each cell's text and sort value, the rows
    to fold (:func:`one_run_rows`), and the table's warnings, notes and code-version differences
    (:func:`versions_note`)."""
    numeric = [any(row[i].numeric for row in table.rows) for i in range(len(table.columns))]
    return {"columns": table.columns, "numeric": numeric,
            "rows": [[{"t": cell.text(), "v": _finite(cell.sort_value())} for cell in row] for row in table.rows],
            "folded": one_run_rows(table),
            "warnings": [w for w in table.warnings if not is_code_difference(w)], "notes": table.notes,
            "code_versions": versions_note([w for w in table.warnings if is_code_difference(w)])}


def one_run_rows(table: Table) -> list[int]:
    """The rows of a long table (more than :data:`FOLD_FROM`) that hold one run each, where others hold more: a
    search's or a pilot's rows, which the page folds below the rows with seeds to average."""
    runs = [max((cell.total for cell in row if isinstance(cell, Fraction)), default=None) for row in table.rows]
    single = [i for i, n in enumerate(runs) if n == 1]
    if len(table.rows) <= FOLD_FROM or not any(n is not None and n > 1 for n in runs):
        return []
    return single


def versions_note(lines: Sequence[str]) -> dict[str, Any] | None:
    """Code-version differences as the page's folded note: a one-line summary and the lines (None: none)."""
    if not lines:
        return None
    items = [line.removeprefix("runs differ in ").split(" version: ")[0] for line in lines]
    what = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return {"summary": f"the runs ran different {what} versions (see which)", "lines": list(lines)}


def _figures(runs: Sequence[Run], by: Sequence[str] | None) -> list[dict[str, Any]]:
    """Every figure the records have data for, grouped by ``by``: gradient flow and gates for each
    layer-direction, learning curves against steps and wall time, clipping."""
    figures = []
    for kind, layer, direction in figure_views(runs, FIGURE_KINDS):
        try:
            figure = build_figure(runs, kind, by, layer, direction)
        except NoData:
            continue
        figures.append(figure.as_data())
    return figures


def _partition(runs: Sequence[Run], by: Sequence[str] | None) -> frozenset[frozenset[int]]:
    """Which runs the grouping by ``by`` puts together (the rows as sets of runs, in no order)."""
    return frozenset(frozenset(id(run) for run in row.runs) for row in grouping(runs, by).rows)


def _grouping_choices(runs: Sequence[Run], by: Sequence[str] | None) -> list[list[str] | None]:
    """The groupings the page offers: ``by`` (default: every varying setting), then each varying setting alone,
    each distinct grouping once: a setting that splits the runs as an earlier choice does (``data.name`` beside
    ``data``; ``model.cell`` where the default is ``model.cell, data.seq_len`` and every cell ran one length) would
    only repeat that choice's table and figures under other labels."""
    choices: list[list[str] | None] = [list(by) if by else None]
    seen = {_partition(runs, by)}
    for key in varying_keys(runs):
        if len(choices) == MAX_GROUPINGS:
            break
        partition = _partition(runs, [key])
        if partition not in seen:
            seen.add(partition)
            choices.append([key])
    return choices


def _with_published(table: Table, published: Published | None) -> Table:
    """``table`` with the ``published`` column where the file joins on columns the table has."""
    return published.add_to(table) if published is not None and published.joins(table) else table


def _grouping_data(runset: RunSet, by: Sequence[str] | None, metrics: Sequence[str] | None,
                   published: Published | None = None, success: Sequence[str] = ()) -> dict[str, Any]:
    rows = grouping(runset.runs, by)
    name = ", ".join(rows.keys) or "all runs"
    if not by:
        name += " (every setting that varies)"
    table = _with_published(build_table(runset, metrics=metrics, by=by, success=success), published)
    return {"name": name, "keys": rows.keys, "table": table_data(table), "figures": _figures(runset.runs, by)}


def _common_root(runs: Sequence[Run]) -> Path:
    return Path(os.path.commonpath([str(run.directory) for run in runs]))


def _relative(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def link(relative_path: str) -> str:
    """A relative path as a link that can only be a path: percent-encoded (a dir named ``javascript:...`` becomes
    ``javascript%3A...``, a file name, not a scheme)."""
    return urllib.parse.quote(relative_path, safe="/._-~")


def runs_data(runs: Sequence[Run], root: Path) -> dict[str, Any]:
    """The list of runs: where each is (below ``root``), its varying settings, seed, status, error, steps, wall
    time and the links to its record and log."""
    keys = varying_keys(runs)
    columns = ["run", *keys, "seed", "status", "error", "steps", "wall time (s)"]
    rows = []
    for run in runs:
        where = _relative(run.directory, root)
        wall = run.record.get("wall_seconds")
        log = run.directory / LOG_NAME
        rows.append({"dir": where, "values": [display(run.settings.get(k)) for k in keys],
                     "seed": display(run.seed), "status": run.status, "error": run.record.get("error") or "",
                     "diverged_at_step": run.record.get("diverged_at_step"), "steps": run.record.get("steps"),
                     "wall_seconds": round(wall, 1) if isinstance(wall, (int, float)) else None,
                     "record": link(f"{where}/result.json"),
                     "log": link(f"{where}/{LOG_NAME}") if log.is_file() else None})
    return {"columns": columns, "rows": rows}


def _sweep_commands(dirs: Sequence[str | Path], runs: Sequence[Run]) -> list[str]:
    """The training commands, as Hydra recorded them in each sweep's ``multirun.yaml`` (its task and launcher
    overrides), and for runs outside any sweep their own overrides."""
    import yaml

    commands: dict[str, None] = {}
    covered: list[Path] = []
    for directory in dirs:
        root = Path(directory)
        for path in sorted(root.rglob("multirun.yaml")) if root.is_dir() else []:
            try:
                overrides = (yaml.safe_load(path.read_text()) or {}).get("hydra", {}).get("overrides", {})
            except (OSError, yaml.YAMLError, AttributeError):
                continue
            # less Hydra's bookkeeping: the mode, and what rnnbench train adds itself (the sweep dir, the one this
            # file is in, and its sweeper)
            hydra = [o for o in overrides.get("hydra") or [] if o != "hydra.mode=MULTIRUN" and o not in LAUNCHER_ADDED
                     and not o.startswith(("hydra.sweep.dir=", "hydra.run.dir="))]
            commands["rnnbench train -m " + " ".join([*(overrides.get("task") or []), *hydra])] = None
            covered.append(path.parent.resolve())
    for run in runs:
        if not any(run.directory.is_relative_to(parent) for parent in covered):
            commands["rnnbench train " + " ".join(run.record.get("overrides") or [])] = None
    return list(commands)


def _counts(runs: Sequence[Run], read: Any) -> str:
    return value_counts(str(read(run)) for run in runs)


def provenance_data(dirs: Sequence[str | Path], runset: RunSet) -> dict[str, Any]:
    """Commands, commits, package versions, machine, dates and warnings, from the records themselves."""
    runs = runset.runs

    def commit(run: Run) -> str:
        git = run.record.get("git") or {}
        return (str(git.get("commit"))[:10] + ("+dirty" if git.get("dirty") else "")) if git.get("commit") \
            else "unknown"

    versions = {package: _counts(runs, lambda run, p=package: (run.record.get("versions") or {}).get(p))
                for package in (*VERSION_KEYS, "wandb")}
    started = sorted(str(r.record["started_at"]) for r in runs if r.record.get("started_at"))
    finished = sorted(str(r.record["finished_at"]) for r in runs if r.record.get("finished_at"))
    return {"commands": _sweep_commands(dirs, runs),
            "commits": _counts(runs, commit),
            "versions": versions,
            "machine": {"device": _counts(runs, lambda run: run.record.get("device")),
                        "threads": _counts(runs, lambda run: run.record.get("threads"))},
            "dates": {"first start": started[0] if started else None,
                      "last finish": finished[-1] if finished else None},
            "warnings": runset.warnings(), "code_versions": versions_note(code_differences(runs))}


def page_data(runset: RunSet, dirs: Sequence[str | Path], output: Path, by: Sequence[str] | None = None,
              compare: Sequence[Sequence[str]] = (), metrics: Sequence[str] | None = None,
              interval: str = "auto", published: Published | None = None, margins: Sequence[str] = (),
              success: Sequence[str] = ()) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data (see the module docstring). ``published``: the CSV of
    ``rnnbench table --published``, read once, joined onto every table whose columns it names (ReportError if
    none); ``margins`` and ``success``: as ``rnnbench table --margin`` and ``--success``."""
    runs = runset.runs
    root = _common_root(runs)
    statuses: dict[str, int] = {}
    for run in runs:
        statuses[run.status] = statuses.get(run.status, 0) + 1
    groupings = [_grouping_data(runset, choice, metrics, published, success)
                 for choice in _grouping_choices(runs, by)]
    comparisons = []
    for sides in compare:
        table = _with_published(build_comparison(runset, list(sides), metrics=metrics, interval=interval,
                                                 margins=margins, success=success), published)
        comparisons.append({"title": f"{sides[0]} against {sides[1]}", "table": table_data(table)})
    tables = [g["table"] for g in groupings] + [c["table"] for c in comparisons]
    if published is not None and not any(PUBLISHED in t["columns"] for t in tables):
        raise ReportError(f"--published {published.path}: no table of the page has its columns "
                          f"({', '.join(published.keys)})")
    return {"title": "rnnbench report: " + " ".join(str(d) for d in dirs),
            "summary": {"runs": len(runs), "statuses": statuses}, "palette": list(PALETTE),
            "groupings": groupings, "comparisons": comparisons, "runs": runs_data(runs, root),
            "link_base": link(_relative(root, output.resolve().parent)),
            "provenance": provenance_data(dirs, runset)}


def build_page(data: Mapping[str, Any]) -> str:
    """The HTML page of ``data``: style, data and script inline."""
    payload = json.dumps(data, ensure_ascii=False, sort_keys=False, separators=(",", ":"), allow_nan=False)
    # no markup in the data: it can neither close its script element nor open a comment (<!--) that would hide
    # the rest of the page; JSON reads the escapes back as the characters
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    title = html.escape(str(data["title"]))
    script = _asset("report.js")
    # only this script runs: no inline handler, no javascript: link, whatever the data holds
    script_hash = base64.b64encode(hashlib.sha256(f"\n{script}".encode()).digest()).decode()
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            f"style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'\">\n"
            f"<title>{title}</title>\n<style>\n{_asset('report.css')}</style>\n</head>\n<body>\n"
            f"<noscript>This report draws its tables and figures with its inline script: allow scripts for this "
            f"file.</noscript>\n<main id=\"report\"></main>\n"
            f"<script type=\"application/json\" id=\"{DATA_ID}\">{payload}</script>\n"
            f"<script>\n{script}</script>\n</body>\n</html>\n")


def embedded_data(page: str) -> dict[str, Any]:
    """The data a page built by :func:`build_page` embeds (for tests and tools reading a report back)."""
    start = page.index(f'id="{DATA_ID}">') + len(f'id="{DATA_ID}">')
    end = page.index("</script>", start)
    return json.loads(page[start:end])


def write_report(runset: RunSet, dirs: Sequence[str | Path], output: str | Path, **options: Any) -> Path:
    """Write the page of ``runset`` to ``output``; returns its path. ReportError for an output that is a dir."""
    path = Path(output)
    if path.is_dir():
        raise ReportError(f"-o {output} is not allowed: it is a dir; give a file name such as {path / 'report.html'}")
    page = build_page(page_data(runset, dirs, path, **options))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
