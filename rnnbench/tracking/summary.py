"""The end of a run or sweep: a one-screen summary of its records, and the process's exit status."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from rnnbench.tracking.record import find_records, read_record

log = logging.getLogger(__name__)

# Set by the callback, read by the CLI once Hydra returns: 0 unless a job failed for a reason
# other than divergence (a diverged run is a result, not an error).
exit_status = 0


def summarize(records: list[dict[str, Any]]) -> tuple[Counter, list[str]]:
    counts = Counter(record.get("status", "unknown") for record in records)
    failures = [f"  {record.get('output_dir')}: {record.get('error')}"
                for record in records if record.get("status") == "failed"]
    return counts, failures


def _report(where: Path, records: list[dict[str, Any]], expected: int | None = None) -> int:
    counts, failures = summarize(records)
    missing = (expected or 0) - len(records)
    parts = [f"{counts[s]} {s}" for s in ("completed", "diverged", "failed", "running") if counts[s]]
    if missing > 0:
        parts.append(f"{missing} without a record")
    lines = [f"rnnbench: {len(records)} run(s): {', '.join(parts) or 'none'}; records under {where}"]
    if counts["running"]:
        lines.append("  'running' records belong to jobs that were killed before they finished")
    lines.extend(failures)
    print("\n".join(lines), flush=True)
    return 1 if counts["failed"] or counts["running"] or missing > 0 else 0


class RunSummary(Callback):
    """Hydra callback: after a run or a whole sweep, read the records from disk (so it works with any
    launcher, in-process or not), print the summary and set :data:`exit_status`."""

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        global exit_status
        output_dir = Path(config.hydra.runtime.output_dir)
        records = [read_record(path) for path in find_records(output_dir)]
        exit_status = _report(output_dir, records, expected=1)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global exit_status
        sweep_dir = Path(config.hydra.sweep.dir)
        records = [read_record(path) for path in find_records(sweep_dir)]
        exit_status = _report(sweep_dir.resolve(), records)
