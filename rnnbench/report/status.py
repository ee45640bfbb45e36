"""``rnnbench status DIR``: the state of a running or finished sweep (or run), from its records alone, so a
user can check it from another terminal or node: completed, diverged, failed, interrupted (SIGINT or SIGTERM),
running (with steps, speed and ETA from the run's heartbeat), killed (a running record whose heartbeat stopped),
not started. A result.json that cannot be read or is not an rnnbench record is skipped with a warning."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnbench.record.keys import is_run_setting, key_of
from rnnbench.record.lines import format_duration, job_label, outcome, parse_timestamp, status_line
from rnnbench.record.plan import read_plan
from rnnbench.record.schema import COMPLETED, DIVERGED, FAILED, FINISHED, INTERRUPTED, RUNNING, find_records
from rnnbench.report.records import loading_warnings, read_records

KILLED = "killed"  # not a record's status: a running record whose heartbeat stopped

STALE_SECONDS = 120.0  # a running record whose heartbeat (every 10 s of training) is older than this: killed


def _age(timestamp: Any, now: float) -> float | None:
    moment = parse_timestamp(timestamp)
    return None if moment is None else now - moment


def _warn(line: str) -> None:
    print(f"rnnbench: warning: {line}", file=sys.stderr)


def describe(root: Path, now: float | None = None, warn: Callable[[str], None] = _warn) -> list[str]:
    """The lines ``rnnbench status`` prints for ``root``; ``warn`` gets one line per record skipped (unreadable,
    not rnnbench's, wrongly typed) and one for the duplicate records dropped (see
    :func:`rnnbench.report.records.read_records`)."""
    now = time.time() if now is None else now
    records, skipped, duplicates = read_records(find_records(root))
    for line in loading_warnings(skipped, duplicates):
        warn(line)
    plan = read_plan(root)
    varying = plan.varying if plan is not None and plan.varying else _varying(records)
    counts = {COMPLETED: 0, DIVERGED: 0, FAILED: 0, INTERRUPTED: 0, RUNNING: 0, KILLED: 0}
    details, running_left = [], []
    for path, record in records:
        status = record["status"]
        label = job_label(record, varying)
        if status == RUNNING:
            progress = record.get("progress") or {}
            age = _age(progress.get("updated_at") or record.get("started_at"), now)
            if age is not None and age > STALE_SECONDS:
                counts[KILLED] += 1
                details.append(f"  killed    {label}: no heartbeat for {format_duration(age)} "
                               f"(last at step {record['steps']}); resume=true runs it again")
                continue
            counts[RUNNING] += 1
            total, rate, steps = _heartbeat(progress, record["steps"])
            details.append(f"  running   {label}: {status_line(steps, total, rate, {})}")
            if total and rate:
                running_left.append((total - steps) / rate)
        elif status == INTERRUPTED:
            counts[INTERRUPTED] += 1
            details.append(f"  interrupted {label}: {_interrupted(record)}")
        elif status in counts:
            counts[status] += 1
            if status != COMPLETED:
                details.append(f"  {status:<9} {label}: {outcome(record)}")
    expected = plan.jobs if plan is not None else None
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    not_started = max(0, (expected or 0) - len(records))
    if not_started:
        parts.append(f"{not_started} not started")
    if skipped:
        parts.append(f"{len(skipped)} unreadable record(s) skipped")
    header = f"{root}: {len(records) + not_started} job(s): {', '.join(parts) or 'no records yet'}"
    walls = [r["wall_seconds"] for _, r in records if r["status"] in FINISHED and r.get("wall_seconds") is not None]
    if counts[RUNNING] and (not_started == 0 or walls):
        # jobs run about as many at a time as are running now; each new one takes the mean finished job's time
        eta = max(running_left or [0.0]) + (not_started * sum(walls) / len(walls) / counts[RUNNING] if walls else 0)
        header += f"; ETA {format_duration(eta)}"
    return [header, *details]


def _heartbeat(progress: dict[str, Any], steps: int) -> tuple[int | None, float, int]:
    """(planned steps, steps per second, steps done) from a running record's heartbeat; what a damaged heartbeat
    makes impossible (a negative or non-finite speed, more steps done than planned) counts as unknown."""
    total, rate = progress.get("max_steps"), progress.get("steps_per_second")
    rate = float(rate) if isinstance(rate, (int, float)) and not isinstance(rate, bool) and 0 <= rate < float("inf") \
        else 0.0
    total = total if isinstance(total, int) and not isinstance(total, bool) and total >= max(steps, 1) else None
    return total, rate, max(steps, 0)


def _interrupted(record: dict[str, Any]) -> str:
    """``at step 120, val/mse 0.031, 14 s; resume=true continues it``."""
    metric = (record.get("task") or {}).get("metric")
    value = record["metrics"].get(f"val/{metric}")
    seconds = record.get("wall_seconds")
    return (f"at step {record['steps']}" + (f", val/{metric} {value:.4g}" if value is not None else "")
            + (f", {format_duration(seconds)}" if seconds is not None else "") + "; resume=true continues it")


def _varying(records: list[tuple[Path, dict[str, Any]]]) -> list[str]:
    """The override keys whose values differ between the records (what tells the jobs apart)."""
    values: dict[str, set[str]] = {}
    for _, record in records:
        for override in record["overrides"]:
            values.setdefault(key_of(override), set()).add(override.partition("=")[2])
    return [k for k, v in values.items() if len(v) > 1 and not is_run_setting(k)]


def status_command(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rnnbench status", description=__doc__)
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="sweep or run dirs")
    options = parser.parse_args(arguments)
    for name in options.dirs:
        root = Path(name)
        if not root.is_dir():
            print(f"rnnbench: error: DIR={name!r} is not allowed: an existing sweep or run dir", file=sys.stderr)
            return 2
        print("\n".join(describe(root)))
    return 0
