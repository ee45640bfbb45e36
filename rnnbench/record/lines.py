"""A record in one line, the same in every process: a running job's status line (the job's progress bar and
``rnnbench status``), a finished job's outcome (the sweep's per-job lines and ``rnnbench status``), durations and
the record's timestamps."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from rnnbench.record.keys import is_run_setting, key_of
from rnnbench.record.schema import DIVERGED, FAILED, INTERRUPTED


def format_duration(seconds: float) -> str:
    """``41 s``, ``12 min``, ``2.5 h``; ``?`` for a non-finite time."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def status_line(step: int, total: int | None, rate: float, metrics: dict[str, float]) -> str:
    """``step 700/1500 (47%), 35.2 steps/s, ETA 23 s, train/loss 0.0123, val/mse 0.0101``."""
    parts = [f"step {step}/{total} ({100 * step / total:.0f}%)" if total else f"step {step}",
             f"{rate:.3g} steps/s"]
    if total and rate > 0:
        parts.append(f"ETA {format_duration((total - step) / rate)}")
    parts += [f"{name} {value:.4g}" for name, value in metrics.items()]
    return ", ".join(parts)


def shown_override(override: str) -> str:
    """An override as a label shows it: a float value to 4 significant digits (an Optuna draw,
    ``optim.lr=0.0012948479610631662``, as ``optim.lr=0.001295``), anything else as written."""
    key, equals, value = override.partition("=")
    if not equals or value.lstrip("+-").isdigit():
        return override
    try:
        number = float(value)
    except ValueError:
        return override
    return f"{key}={number:.4g}" if math.isfinite(number) else override


def job_label(record: dict[str, Any], varying: list[str]) -> str:
    """The job's overrides of the keys that vary in the sweep (all but its run settings if none is known), floats
    to 4 significant digits."""
    overrides = [o for o in record.get("overrides") or [] if not is_run_setting(key_of(o))]
    chosen = [o for o in overrides if key_of(o) in varying] if varying else overrides
    return " ".join(map(shown_override, chosen)) or record.get("output_dir") or "?"


def outcome(record: dict[str, Any]) -> str:
    """``completed, test/mse 0.0012, 41 s`` / ``diverged at step 1210, 12 s`` / ``failed: <error>``."""
    status, seconds = record.get("status"), record.get("wall_seconds")
    took = f", {format_duration(seconds)}" if isinstance(seconds, (int, float)) else ""
    if status == FAILED:
        return f"failed: {record.get('error')}{took}"
    if status == DIVERGED:
        return f"diverged at step {record.get('diverged_at_step')}{took}"
    if status == INTERRUPTED:
        return f"interrupted at step {record.get('steps')}{took}"
    metric = (record.get("task") or {}).get("metric")
    value = (record.get("metrics") or {}).get(f"test/{metric}")
    shown = f", test/{metric} {value:.4g}" if isinstance(value, (int, float)) else ""
    return f"{status}{shown}{took}"


def parse_timestamp(value: Any) -> float | None:
    """Seconds since the epoch of a record's ISO 8601 time, or None."""
    try:
        return dt.datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None
