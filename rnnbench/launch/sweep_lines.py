"""One line per finished job of a sweep, whatever the launcher: the sweep's own process watches the records
appear in the sweep dir (basic, joblib, submitit and Slurm jobs all write one) and prints
``[7/18] model.cell=gru seed=2: completed, test/mse 0.0012, 41 s; ETA 6 min``."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from rnnbench.record.lines import format_duration, job_label, outcome, parse_timestamp
from rnnbench.record.schema import FAILED, FINISHED, INTERRUPTED, RecordError, find_records, read_record

FINAL = (*FINISHED, FAILED)  # a job that ends so gets its numbered line
# INTERRUPTED: a job stopped by a signal; under Slurm it may run again (requeued) or wait for resume


class SweepLines:
    """Polls ``sweep_dir`` every ``interval`` seconds in a daemon thread; prints a line for each record that
    reaches a final status, numbered in order of completion, with an ETA from the pace so far. Records already
    final before the sweep started (``resume=true`` skips them) are counted and marked as done earlier. A job that
    ends ``interrupted`` (a Slurm job cancelled, preempted or out of time) gets an unnumbered line ``[-/N]``: it is
    not done, and may still continue (Slurm's requeue) and then get its numbered line."""

    def __init__(self, sweep_dir: Path, expected: int | None, varying: list[str], interval: float = 1.0,
                 out=print):
        self.sweep_dir, self.expected, self.varying, self.interval, self.out = sweep_dir, expected, varying, \
            interval, out
        self.started = time.time()
        self.seen: set[Path] = set()
        self.interrupted: set[tuple[Path, str | None]] = set()
        self.done_here = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="rnnbench-sweep-lines", daemon=True)

    def start(self) -> "SweepLines":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.poll()  # whatever finished since the last look

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        with self._lock:
            for path in find_records(self.sweep_dir) if self.sweep_dir.is_dir() else []:
                if path in self.seen:
                    continue
                try:
                    record = read_record(path)
                except RecordError:
                    continue  # being replaced, or not a record: look again next time
                if record.get("status") == INTERRUPTED:
                    self._interrupted(path, record)
                if record.get("status") not in FINAL:
                    continue
                self.seen.add(path)
                self.out(self.line(record), flush=True)

    def _interrupted(self, path: Path, record: dict[str, Any]) -> None:
        key = (path, record.get("finished_at"))
        if key in self.interrupted or (parse_timestamp(record.get("finished_at")) or 0.0) < self.started:
            return
        self.interrupted.add(key)
        total = f"/{self.expected}" if self.expected else ""
        self.out(f"[-{total}] {job_label(record, self.varying)}: {outcome(record)}", flush=True)

    def line(self, record: dict[str, Any]) -> str:
        finished = parse_timestamp(record.get("finished_at"))
        earlier = finished is not None and finished < self.started
        if not earlier:
            self.done_here += 1
        count = len(self.seen)
        total = f"/{self.expected}" if self.expected else ""
        text = f"[{count}{total}] {job_label(record, self.varying)}: {outcome(record)}"
        if earlier:
            return text + " (done before this sweep started)"
        remaining = (self.expected or 0) - count
        if remaining > 0 and self.done_here:
            text += f"; ETA {format_duration((time.time() - self.started) / self.done_here * remaining)}"
        return text
