"""SIGINT and SIGTERM end a job as ``interrupted``, and a job whose sweep parent died stops too.

:func:`interrupt_on_signals` turns both signals into :class:`Interrupted` while a job runs. It derives from
``BaseException`` (like ``KeyboardInterrupt``) so that no ``except Exception`` on the way swallows it; Lightning's
fit catches it, calls its ``on_exception`` hooks and re-raises it, and the job records ``status: interrupted`` with
the steps done and the last validation's metrics, then re-raises it so that the launcher stops. (Lightning's own
SIGTERM handling only stops the fit loop at the next batch and exits 0; Ctrl-C there ends in ``sys.exit(1)``.)

:class:`ParentWatch` is for worker processes (joblib's loky workers): when the process that launched the sweep
dies (``kill -9``), the worker's parent changes and the watch sends the worker a SIGTERM, so no orphan keeps
training and writing beside a ``resume=true`` that follows.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
LAUNCHER_PID = "RNNBENCH_LAUNCHER_PID"  # set by the launch path: the pid of the process that launched the jobs


class Interrupted(BaseException):
    """A job was asked to stop by ``signum``; the exit status of a process that stops for it is ``128 + signum``."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


@contextlib.contextmanager
def interrupt_on_signals(*extra: int) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM (and the ``extra`` signals) raise :class:`Interrupted` (main thread
    only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (*SIGNALS, *extra)
    previous = {signum: signal.getsignal(signum) for signum in signals}
    raised: list[int] = []

    def _raise(signum: int, frame: object) -> None:
        if raised:  # the stop is already on its way (Slurm's srun and slurmstepd both send SIGTERM): once is enough
            return
        raised.append(signum)
        raise Interrupted(signum)

    for signum in signals:
        signal.signal(signum, _raise)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


class ParentWatch:
    """A daemon thread that sends this process SIGTERM once its parent process is gone (checked every second)."""

    def __init__(self, interval: float = 1.0):
        self.parent = os.getppid()
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="rnnbench-parent-watch", daemon=True)

    def start(self) -> "ParentWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            if os.getppid() != self.parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return


def descendants(pid: int | None = None) -> list[int]:
    """Every live descendant of ``pid`` (default: this process), children first, from ``/proc`` (Linux)."""
    pid = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, frontier = [], [pid]
    while frontier:
        nxt = [c for p in frontier for c in children.get(p, [])]
        found += nxt
        frontier = nxt
    return found


def stop_descendants(signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    """Send ``signum`` to every descendant of this process and wait up to ``timeout`` s for them to exit
    (each job writes its ``interrupted`` record first); SIGKILL what is left. Returns how many were signalled."""
    import time

    pids = descendants()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        for pid in list(alive):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    alive.remove(pid)
                    continue
            if not os.path.exists(f"/proc/{pid}") or _zombie(pid):
                alive.remove(pid)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
