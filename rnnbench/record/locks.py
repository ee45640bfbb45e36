"""One writer per sweep dir and per job dir: advisory ``flock`` locks that die with their process.

A lock is a file (``.rnnbench-sweep.lock`` in a sweep or single-run dir, held by the launching process;
``.rnnbench-job.lock`` in a job dir, held by the job) locked with ``flock`` through :mod:`filelock`. The kernel
releases it when its process ends, however it ends, so a lock left by a killed process is stale by construction:
the next taker gets it at once. The file holds the holder's pid, for the refusal message, and is removed on release.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from filelock import Timeout, UnixFileLock

from rnnbench.errors import RnnbenchError

SWEEP_LOCK = ".rnnbench-sweep.lock"
JOB_LOCK = ".rnnbench-job.lock"


class DirLock:
    """An exclusive lock on ``directory/name``; :meth:`acquire` waits up to ``wait`` seconds (0: refuse at once)."""

    def __init__(self, directory: Path, name: str):
        self.path = Path(directory) / name
        # flock only (no soft fallback: a lock a killed process leaves must not be stale); the pid is written once held
        self._lock = UnixFileLock(self.path, thread_local=False, fallback_to_soft=False, poll_interval=0.2,
                                  on_acquired=_write_pid)

    def holder(self) -> str:
        with contextlib.suppress(OSError):
            return self.path.read_text().strip() or "another process"
        return "another process"

    def acquire(self, wait: float = 0.0, what: str = "this dir") -> "DirLock":
        try:
            self._lock.acquire(timeout=wait)
        except Timeout:  # a TimeoutError, hence an OSError: caught first
            raise RnnbenchError(f"{self.path.parent} is in use by {self.holder()}: {what} cannot start "
                                "until it ends (or is stopped)") from None
        except OSError as error:  # a full or read-only disk, a dir we may not write
            raise RnnbenchError(f"cannot write in {self.path.parent}: {error.strerror or error}; {what} "
                                "cannot start there") from None
        return self

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        with contextlib.suppress(OSError):  # while still held: a waiter that locks the old file takes a fresh one
            self.path.unlink()
        self._lock.release(force=True)

    def __enter__(self) -> "DirLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}\n".encode())
