"""The end of a run or sweep: a one-screen summary of its records, and the exit status they imply.

Everything here reads the records on disk, so it works whatever launcher ran the jobs and however it ended."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from rnnbench.record.schema import (COMPLETED, DIVERGED, FAILED, FINISHED, INTERRUPTED, RUNNING, RecordError,
                                      find_records, read_record)

log = logging.getLogger(__name__)

SMALL_SWEEP = 24  # a sweep of at most this many runs ends with its `rnnbench table`

MAX_LISTED = 10
LABELS = {RUNNING: "killed"}  # a record still 'running' after its job ended: the job was killed


def read_records(root: Path) -> list[dict[str, Any]]:
    """Every readable record below ``root``; each unreadable or foreign one is named in a warning and left out."""
    records = []
    for path in find_records(root):
        try:
            records.append(read_record(path))
        except RecordError as error:
            print(f"rnnbench: warning: skipped {error}", flush=True)
    return records


def summarize(records: list[dict[str, Any]]) -> tuple[Counter, list[str]]:
    counts = Counter(record.get("status", "unknown") for record in records)
    problems = [f"  failed  {record.get('output_dir')}: {record.get('error')}"
                for record in records if record.get("status") == FAILED]
    problems += [f"  killed  {record.get('output_dir')} (its record still says 'running')"
                 for record in records if record.get("status") == RUNNING]
    return counts, problems


def _optuna_line(where: Path) -> str | None:
    results = where / "optimization_results.yaml"
    if not results.is_file():
        return None
    best = yaml.safe_load(results.read_text()) or {}
    if "best_value" not in best:
        return None
    params = " ".join(f"{k}={v}" for k, v in (best.get("best_params") or {}).items())
    return f"  optuna: best value {best['best_value']} with {params} ({results})"


def _report(where: Path, records: list[dict[str, Any]], expected: int | None = None) -> int:
    counts, problems = summarize(records)
    missing = (expected or 0) - len(records)
    listed = (COMPLETED, DIVERGED, FAILED, RUNNING)
    parts = [f"{counts[s]} {LABELS.get(s, s)}" for s in listed if counts[s]]
    parts += [f"{n} {s}" for s, n in counts.items() if s not in listed]
    if missing > 0:
        parts.append(f"{missing} without a record (never ran)")
    lines = [f"rnnbench: {len(records)} run(s): {', '.join(parts) or 'none'}; records under {where}"]
    lines.extend(problems[:MAX_LISTED])
    if len(problems) > MAX_LISTED:
        lines.append(f"  ... and {len(problems) - MAX_LISTED} more (status in each result.json)")
    if counts[RUNNING] or counts[INTERRUPTED] or missing > 0:
        lines.append("  rerun the same command with resume=true to finish them "
                     "(completed and diverged jobs are skipped; interrupted ones continue from their checkpoint)")
    optuna = _optuna_line(where)
    if optuna:
        lines.append(optuna)
    print("\n".join(lines), flush=True)
    bad = counts[FAILED] or counts[RUNNING] or missing > 0
    return 1 if bad or any(s not in FINISHED for s in counts) else 0


def report_sweep(sweep_dir: Path, expected: int | None = None) -> int:
    """Print the summary of every record below ``sweep_dir`` (and, for a small sweep, its table and the commands
    for more); return the exit status it implies."""
    records = read_records(sweep_dir)
    status = _report(sweep_dir.resolve(), records, expected)
    finished = [r for r in records if r.get("status") in FINISHED]
    if finished:
        table = _table(sweep_dir)
        if table is not None and len(records) <= SMALL_SWEEP:
            print(table.render("markdown"), end="", flush=True)
        if table is not None:
            _table_to_wandb(sweep_dir, records, table)
        print(f"  table: rnnbench table {sweep_dir}   figures: rnnbench plot {sweep_dir} --kind all   "
              f"page: rnnbench report {sweep_dir}", flush=True)
        if any((r.get("wandb") or {}).get("mode") == "offline" for r in records):
            print(f"  W&B (offline): wandb sync {sweep_dir}/*/wandb/offline-run-* {sweep_dir}/wandb/offline-run-*",
                  flush=True)
    return status


def _table(sweep_dir: Path) -> Any:
    """The sweep's ``rnnbench table`` (default columns); None where it cannot be made (the summary never fails)."""
    from rnnbench.report.records import ReportError, load_runs
    from rnnbench.report.table import build_table

    try:
        return build_table(load_runs([str(sweep_dir)]))
    except (ReportError, ValueError, KeyError, TypeError) as error:
        log.info("no table for %s: %s", sweep_dir, error)
        return None


def _table_to_wandb(sweep_dir: Path, records: list[dict[str, Any]], table: Any) -> None:
    """The table as a ``wandb.Table`` in a run of its own, when the sweep's jobs logged to W&B
    (:func:`rnnbench.job.loggers.log_sweep_table`)."""
    logged = [r for r in records if r.get("wandb") and ((r.get("config") or {}).get("logger") or {}).get("wandb")]
    if not logged:
        return
    from rnnbench.job.loggers import invocation_label, log_sweep_table

    rows = [[cell.text() for cell in row] for row in table.rows]
    offline = all((r.get("wandb") or {}).get("mode") == "offline" for r in logged)  # as its jobs ran
    log_sweep_table(sweep_dir.resolve(), logged[0]["config"]["logger"]["wandb"], offline,
                    invocation_label(logged[0].get("choices") or {}, sweep_dir), table.columns, rows)


def run_line(record: dict[str, Any], where: Path) -> str:
    """A single run's numbers: status, steps, final and best validation metric, test metric, wall time, record."""
    from rnnbench.record.lines import format_duration

    metric = (record.get("task") or {}).get("metric")
    metrics = record.get("metrics") or {}
    parts = [f"rnnbench: {record.get('status')}", f"{record.get('steps')} steps"]
    if isinstance(record.get("wall_seconds"), (int, float)):
        parts[-1] += f" in {format_duration(record['wall_seconds'])}"
    if record.get("status") == DIVERGED:
        parts.append(f"diverged at step {record.get('diverged_at_step')}")
    if metric and f"val/{metric}" in metrics:
        best, at = metrics.get(f"best/val/{metric}"), metrics.get(f"best/val/{metric}_step")
        best_text = f" (best {best:.4g} at step {at})" if isinstance(best, (int, float)) else ""
        last = metrics[f"val/{metric}"]  # null: not a finite number (a diverged run's last validation)
        parts.append(f"val/{metric} {last:.4g}{best_text}" if isinstance(last, (int, float))
                     else f"val/{metric} not finite{best_text}")
    if metric and isinstance(metrics.get(f"test/{metric}"), (int, float)):
        baseline = (record.get("task") or {}).get("baseline_metric")
        against = f" (input-blind baseline {baseline:.4g})" if isinstance(baseline, (int, float)) else ""
        parts.append(f"test/{metric} {metrics[f'test/{metric}']:.4g}{against}")
    if record.get("status") == FAILED:
        parts.append(f"error: {record.get('error')}")
    return "; ".join([", ".join(parts), f"record: {where / 'result.json'}"])


def report_run(output_dir: Path) -> int:
    """Print the line of a single run (or, if its record is missing or still says running, the summary of what
    is there); return the exit status it implies: 0 for completed or diverged, else 1."""
    records = read_records(output_dir)
    if len(records) == 1 and records[0].get("status") != RUNNING:
        print(run_line(records[0], output_dir.resolve()), flush=True)
        return 0 if records[0].get("status") in FINISHED else 1
    return _report(output_dir, records, expected=1)
