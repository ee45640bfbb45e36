"""``rnnbench status DIR``: the state of a running or finished sweep (or run), from its records alone, so a
user can check it from another terminal or node: completed, diverged, failed, running (with steps, speed and
ETA from the run's heartbeat), killed (a running record whose heartbeat stopped), not started."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rnnbench.screen.progress import format_duration, status_line
from rnnbench.screen.sweep_lines import job_label, outcome, parse_timestamp
from rnnbench.tracking.record import RECORD_NAME

STALE_SECONDS = 120.0  # a running record whose heartbeat (every 10 s of training) is older than this: killed


def _age(timestamp: Any, now: float) -> float | None:
    moment = parse_timestamp(timestamp)
    return None if moment is None else now - moment


def expected_jobs(sweep_dir: Path) -> int | None:
    """How many jobs the sweep's command holds, from the ``multirun.yaml`` Hydra keeps in the sweep dir."""
    saved = sweep_dir / "multirun.yaml"
    if not saved.is_file():
        return None
    from omegaconf import OmegaConf

    from rnnbench.preflight import job_overrides

    config = OmegaConf.load(saved)
    overrides = [str(o) for o in config.hydra.overrides.task]
    params = {str(k): str(v) for k, v in (config.hydra.sweeper.get("params") or {}).items()}
    n_trials = config.hydra.sweeper.get("n_trials")
    if isinstance(n_trials, int):
        return n_trials
    return sum(1 for _ in job_overrides(overrides, params, multirun=True))


def describe(root: Path, now: float | None = None) -> list[str]:
    """The lines ``rnnbench status`` prints for ``root``."""
    now = time.time() if now is None else now
    records: list[tuple[Path, dict[str, Any]]] = []
    unreadable = []
    for path in sorted(root.rglob(RECORD_NAME)):
        try:
            records.append((path, json.loads(path.read_text())))
        except (OSError, ValueError):
            unreadable.append(path)
    varying = _varying(records)
    counts = {"completed": 0, "diverged": 0, "failed": 0, "running": 0, "killed": 0}
    details, running_left = [], []
    for path, record in records:
        status = record.get("status")
        label = job_label(record, varying)
        if status == "running":
            progress = record.get("progress") or {}
            age = _age(progress.get("updated_at") or record.get("started_at"), now)
            if age is not None and age > STALE_SECONDS:
                counts["killed"] += 1
                details.append(f"  killed    {label}: no heartbeat for {format_duration(age)} "
                               f"(last at step {record.get('steps')}); resume=true runs it again")
                continue
            counts["running"] += 1
            total, rate, steps = progress.get("max_steps"), progress.get("steps_per_second") or 0.0, record.get("steps") or 0
            details.append(f"  running   {label}: {status_line(steps, total, rate, {})}")
            if total and rate:
                running_left.append((total - steps) / rate)
        elif status in counts:
            counts[status] += 1
            if status != "completed":
                details.append(f"  {status:<9} {label}: {outcome(record)}")
    expected = expected_jobs(root)
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    not_started = max(0, (expected or 0) - len(records))
    if not_started:
        parts.append(f"{not_started} not started")
    if unreadable:
        parts.append(f"{len(unreadable)} unreadable record(s)")
    header = f"{root}: {len(records) + not_started} job(s): {', '.join(parts) or 'no records yet'}"
    walls = [r.get("wall_seconds") for _, r in records if r.get("status") in ("completed", "diverged")
             and isinstance(r.get("wall_seconds"), (int, float))]
    if counts["running"] and (not_started == 0 or walls):
        # jobs run about as many at a time as are running now; each new one takes the mean finished job's time
        eta = max(running_left or [0.0]) + (not_started * sum(walls) / len(walls) / counts["running"] if walls else 0)
        header += f"; ETA {format_duration(eta)}"
    return [header, *details, *(f"  unreadable {p}" for p in unreadable)]


def _varying(records: list[tuple[Path, dict[str, Any]]]) -> list[str]:
    """The override keys whose values differ between the records (what tells the jobs apart)."""
    values: dict[str, set[str]] = {}
    for _, record in records:
        for override in record.get("overrides") or []:
            key, _, value = override.lstrip("+~").partition("=")
            values.setdefault(key, set()).add(value)
    return [k for k, v in values.items() if len(v) > 1 and k not in ("threads", "resume")]


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
