"""A real single-node Slurm cluster for the tests: munged, slurmctld and slurmd from Debian's packages, started as
root in a temporary dir and torn down afterwards.

:func:`start_cluster` writes a munge key and a ``slurm.conf`` (no accounting, free ports, the sockets, state and
logs all inside the dir), starts the three daemons in the foreground as child processes and waits until the node
is idle (job ids from a random start, so that two clusters, one per pytest-xdist worker, never share one).
The client commands (``sbatch``, ``squeue``, ``scontrol``, ``scancel``) find the cluster through
``SLURM_CONF``, which :attr:`Cluster.env` carries; jobs inherit the submitting environment (``sbatch``'s default
``--export=ALL``), so a job finds the same python, the same virtual environment and ``OMP_NUM_THREADS``.
:func:`missing` says in one line why a cluster cannot start here (not root, packages absent), for a skip.

``.ci/run`` installs ``slurm-wlm`` and ``munge`` when ``slurmctld`` is missing, so CI never skips.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from conftest import PATIENCE

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
# The node's CPUs as Slurm sees them (SlurmdParameters=config_overrides: more than this machine's 2 cores), so that
# in the tests a sweep's array_parallelism, not the cores, limits how many jobs run at once; the tests' jobs are
# tiny, one thread each, and mostly wait.
CPUS = 4


def missing() -> str | None:
    """Why no cluster can start here (one line), or None."""
    if os.geteuid() != 0:
        return "a Slurm test cluster needs root (munged and slurmd run as root)"
    absent = [name for name in DAEMONS if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]
    if absent:
        return f"Slurm is not installed ({', '.join(absent)} missing): apt-get install slurm-wlm munge"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


@dataclass
class Cluster:
    root: Path
    node: str
    partition: str
    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)

    def run(self, *command: str, check: bool = True, timeout: float = PATIENCE) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster (``squeue``, ``scontrol``, ``scancel``, ...)."""
        return subprocess.run(list(command), env=self.env, capture_output=True, text=True, check=check,
                              timeout=timeout)

    def jobs(self) -> list[dict[str, str]]:
        """Every job squeue knows (pending, running, completing), one dict per array task."""
        out = self.run("squeue", "--noheader", "--array", "--states=all", "--format=%i|%T|%j|%N").stdout
        return [dict(zip(("id", "state", "name", "nodes"), line.split("|"))) for line in out.splitlines() if line]

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job -o JOB_ID`` as a dict (JobState, Restarts, ArrayTaskThrottle, ...); {} if unknown."""
        result = self.run("scontrol", "show", "job", "-o", job_id, check=False)
        if result.returncode != 0:
            return {}
        fields: dict[str, str] = {}
        for item in result.stdout.split():
            key, _, value = item.partition("=")
            fields.setdefault(key, value)
        return fields

    def wait_idle(self, timeout: float = PATIENCE) -> None:
        """Until no job is pending, running or completing (so each test starts on an empty node)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not [j for j in self.jobs() if j["state"] in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING",
                                                                "REQUEUED", "SUSPENDED")]:
                return
            time.sleep(0.5)
        raise TimeoutError(f"the cluster's queue did not empty: {self.jobs()}")

    def stop(self) -> None:
        """Cancel every job (waiting up to 60 s for them to end), stop the daemons (SIGTERM, then SIGKILL after
        10 s), kill any job step daemon of this cluster left behind, and remove the cluster's dir."""
        with contextlib.suppress(Exception):
            self.run("scancel", "--full", f"--user={os.geteuid()}", check=False)
            self.wait_idle(timeout=60)
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        for pid in _step_daemons(self.root):  # a slurmstepd whose slurmd is gone waits for it forever
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def _step_daemons(root: Path) -> list[int]:
    """The slurmstepd processes of the cluster in ``root`` (they keep its slurmd log open), with their jobs."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if Path(f"/proc/{entry}/comm").read_text().strip() != "slurmstepd":
                continue
            links = [os.readlink(f"/proc/{entry}/fd/{fd}") for fd in os.listdir(f"/proc/{entry}/fd")]
        except OSError:
            continue
        if any(link.startswith(str(root)) for link in links):
            found.append(int(entry))
    return [*_children(found), *found]


def _children(pids: list[int]) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, frontier = [], list(pids)
    while frontier:
        frontier = [child for pid in frontier for child in parents.get(pid, [])]
        found += frontier
    return found


SLURM_CONF = """\
ClusterName=rnnbench{ctld_port}
FirstJobId={first_job}
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket,cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmUser=root
SlurmdUser=root
ReturnToService=2
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
KillWait=20
MinJobAge=600
InactiveLimit=0
Waittime=0
MessageTimeout=20
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=8000 State=UNKNOWN
PartitionName={partition} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def start_cluster(root: Path, partition: str = "cpu", timeout: float = PATIENCE) -> Cluster:
    """Start munged, slurmctld and slurmd with everything under ``root``; return once the node is idle."""
    node = socket.gethostname().split(".")[0]
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "munge", 0o700)
    key = root / "munge" / "munge.key"
    subprocess.run([_binary("mungekey"), "--create", f"--keyfile={key}", "--force"], check=True, capture_output=True)
    os.chmod(key, 0o400)
    conf = root / "slurm.conf"
    conf.write_text(SLURM_CONF.format(node=node, root=root, cpus=CPUS, partition=partition,
                                      ctld_port=_free_port(), slurmd_port=_free_port(),
                                      first_job=random.randrange(1, 900) * 1000))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    env.pop("SLURM_JOB_ID", None)
    cluster = Cluster(root=root, node=node, partition=partition, env=env)
    log = (root / "log" / "daemons.log").open("w")

    def start(*command: str) -> None:
        cluster.processes.append(subprocess.Popen(list(command), env=env, stdout=log, stderr=subprocess.STDOUT,
                                                  start_new_session=True))

    try:
        start(_binary("munged"), "--foreground", "--force", f"--key-file={key}",
              f"--socket={root}/munge/munge.socket", f"--pid-file={root}/munge/munged.pid",
              f"--log-file={root}/log/munged.log", f"--seed-file={root}/munge/munged.seed")
        _wait_for(lambda: (root / "munge" / "munge.socket").exists(), timeout, "munged's socket", cluster)
        start(_binary("slurmctld"), "-D", "-i", "-f", str(conf))
        _wait_for(lambda: cluster.run("scontrol", "ping", check=False).returncode == 0, timeout, "slurmctld", cluster)
        start(_binary("slurmd"), "-D", "-f", str(conf), "-N", node)
        _wait_for(lambda: cluster.run("sinfo", "--noheader", "--format=%T", check=False).stdout.strip()
                  == "idle", timeout, "the node to become idle", cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_for(ready, timeout: float, what: str, cluster: Cluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in cluster.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{Path(str(process.args[0])).name} exited ({process.returncode}) while waiting "
                                   f"for {what}: {_logs(cluster.root)}")
        if ready():
            return
        time.sleep(0.2)
    raise TimeoutError(f"waited {timeout:.0f} s for {what}: {_logs(cluster.root)}")


def _logs(root: Path) -> str:
    return " | ".join(f"{p.name}: {p.read_text()[-1500:]}" for p in sorted((root / "log").glob("*.log"))
                      if p.is_file())
