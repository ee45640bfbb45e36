"""One writer per sweep dir and per job dir: advisory ``flock`` locks that die with their process.

A lock is a file (``.rnnbench-sweep.lock`` in a sweep or single-run dir, held by the launching process;
``.rnnbench-job.lock`` in a job dir, held by the job) locked with ``fcntl.flock``. The kernel releases it when its
process ends, however it ends, so a lock left by a killed process is stale by construction: the next taker gets
it at once. The file holds the holder's pid and command, for the refusal message, and is removed on release.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from rnnbench.errors import RnnbenchError

SWEEP_LOCK = ".rnnbench-sweep.lock"
JOB_LOCK = ".rnnbench-job.lock"


class DirLock:
    """An exclusive lock on ``directory/name``; :meth:`acquire` waits up to ``wait`` seconds (0: refuse at once)."""

    def __init__(self, directory: Path, name: str):
        self.path = Path(directory) / name
        self._fd: int | None = None

    def holder(self) -> str:
        with contextlib.suppress(OSError):
            return self.path.read_text().strip() or "another process"
        return "another process"

    def acquire(self, wait: float = 0.0, what: str = "this dir") -> "DirLock":
        try:
            return self._acquire(wait, what)
        except OSError as error:  # a full or read-only disk, a dir we may not write
            raise RnnbenchError(f"cannot write in {self.path.parent}: {error.strerror or error}; {what} "
                                "cannot start there") from None

    def _acquire(self, wait: float, what: str) -> "DirLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    raise RnnbenchError(f"{self.path.parent} is in use by {self.holder()}: {what} cannot start "
                                        "until it ends (or is stopped)") from None
                time.sleep(0.2)
                continue
            if os.fstat(fd).st_ino != _inode(self.path):  # released and removed while we waited: take a fresh one
                os.close(fd)
                continue
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"pid {os.getpid()}\n".encode())
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
            return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "DirLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None
