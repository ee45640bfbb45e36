"""SIGINT and SIGTERM end a job as ``interrupted``, and a job whose sweep parent died stops too.

:func:`interrupt_on_signals` turns both signals into :class:`Interrupted` while a job runs. It derives from
``BaseException`` (like ``KeyboardInterrupt``) so that no ``except Exception`` on the way swallows it; Lightning's
fit catches it, calls its ``on_exception`` hooks and re-raises it, and the job records ``status: interrupted`` with
the steps done and the last validation's metrics, then re-raises it so that the launcher stops. (Lightning's own
SIGTERM handling only stops the fit loop at the next batch and exits 0; Ctrl-C there ends in ``sys.exit(1)``.)

:class:`ParentWatch` is for worker processes (joblib's loky workers): when the process that launched the sweep
dies (``kill -9``), the worker's parent changes and the watch sends the worker a SIGTERM, so no orphan keeps
training and writing beside a ``resume=true`` that follows; once the job has written its ``interrupted`` record,
the worker process exits (it would otherwise wait for its next task from a parent that is gone).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

import psutil

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
def interrupt_on_signals(*extra: int, stop_workers: bool = False) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM (and the ``extra`` signals) raise :class:`Interrupted` (main thread
    only; elsewhere a no-op). With ``stop_workers`` (the process that launched a sweep), every descendant process
    is stopped first: its workers get SIGTERM and write their ``interrupted`` records before this process unwinds
    (a launcher that sees the exception would otherwise kill them first: joblib's does)."""
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
        if stop_workers:
            stop_descendants()
        raise Interrupted(signum)

    for signum in signals:
        signal.signal(signum, _raise)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


class ParentWatch:
    """One daemon thread per worker process that watches its parent (every ``interval`` s). Once the parent is
    gone, a running job is sent SIGTERM (it writes its ``interrupted`` record, then :meth:`job_ended` says to exit)
    and an idle worker exits at once: it would otherwise wait for a next task from a parent that is gone."""

    _this_process: "ParentWatch | None" = None

    def __init__(self, interval: float = 1.0):
        self.parent = os.getppid()
        self.interval = interval
        self.orphaned = False
        self._running = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="rnnbench-parent-watch", daemon=True)

    @classmethod
    def for_this_process(cls) -> "ParentWatch":
        if cls._this_process is None or cls._this_process.parent != os.getppid():
            cls._this_process = cls()
            cls._this_process._thread.start()
        return cls._this_process

    def job_started(self) -> None:
        with self._lock:
            self._running = True

    def job_ended(self) -> bool:
        """Whether the parent died during the job (the worker should exit now that the job's record is written)."""
        with self._lock:
            self._running = False
            return self.orphaned

    def _watch(self) -> None:
        while True:
            time.sleep(self.interval)
            if os.getppid() == self.parent:
                continue
            with self._lock:
                self.orphaned = True
                if not self._running:
                    os._exit(128 + signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            return


def descendants(pid: int | None = None) -> list[int]:
    """Every live descendant of ``pid`` (default: this process), each listed before its own descendants."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:  # gone already
        return []


def stop_descendants(signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    """Send ``signum`` to every descendant of this process and wait up to ``timeout`` s for them to exit
    (each job writes its ``interrupted`` record first); SIGKILL what is left. Returns how many were signalled."""
    try:
        processes = [p for p in psutil.Process().children(recursive=True) if not _bookkeeper(p)]
    except psutil.Error:
        return 0
    for process in processes:
        with contextlib.suppress(psutil.Error):  # gone already, or not ours to signal
            process.send_signal(signum)
    deadline = time.monotonic() + timeout
    alive = processes
    while alive and time.monotonic() < deadline:
        # reaps this process's own children; a zombie grandchild counts as ended (a container's init may never reap it)
        _, alive = psutil.wait_procs(alive, timeout=min(0.1, max(deadline - time.monotonic(), 0.0)))
        alive = [process for process in alive if not _zombie(process)]
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    return len(processes)


BOOKKEEPERS = ("resource_tracker", "semaphore_tracker")  # loky's and multiprocessing's: they end with their parent


def _bookkeeper(process: psutil.Process) -> bool:
    """A helper process of a launcher that cleans up after the others and exits when its parent does (signalled,
    it would print a traceback and leak what it tracks)."""
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return False
    return any(name in command for name in BOOKKEEPERS)


def _zombie(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:  # gone
        return True
