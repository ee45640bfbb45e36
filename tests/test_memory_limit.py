"""The memory a job may use (rnnbench.errors.memory_limit) and the refusal of a job that needs more (require_fits)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnbench import errors
from rnnbench.errors import ConfigError, memory_limit, physical_memory, require_fits

GIB = 2**30
V1_NONE = 9223372036854771712  # what cgroup v1's memory.limit_in_bytes holds when no limit is set


@pytest.fixture
def no_rlimits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ignore whatever ulimit -v / -d the test runner has, so that only the faked cgroup and physical memory count."""
    monkeypatch.setattr(errors, "rlimit_memory", lambda: [])


def cgroups(tmp_path: Path, files: dict[str, str | bytes], proc: str = "0::/\n") -> tuple[str, str]:
    """A fake cgroup mount in ``tmp_path`` holding ``files`` (path under the mount -> text) and a fake
    /proc/self/cgroup holding ``proc``: the two arguments of memory_limit."""
    root = tmp_path / "cgroup"
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    (tmp_path / "proc_cgroup").write_text(proc)
    return str(root), str(tmp_path / "proc_cgroup")


def test_physical_memory_is_the_limit_when_nothing_else_is_known(tmp_path: Path, no_rlimits: None) -> None:
    assert physical_memory() > 0
    assert memory_limit(*cgroups(tmp_path, {})) == (physical_memory(), "this machine's physical memory")


def test_cgroup_v2_root_memory_max(tmp_path: Path, no_rlimits: None) -> None:
    root, proc = cgroups(tmp_path, {"memory.max": "1073741824\n"})
    assert memory_limit(root, proc) == (GIB, f"the cgroup's memory limit ({root}/memory.max)")


def test_cgroup_v2_path_of_this_process(tmp_path: Path, no_rlimits: None) -> None:
    # The process's own cgroup (from /proc/self/cgroup) and the ones above it count; the smallest wins.
    root, proc = cgroups(tmp_path, {"memory.max": "max\n", "user.slice/memory.max": "3221225472\n",
                                    "user.slice/job/memory.max": "1073741824\n"}, proc="0::/user.slice/job\n")
    assert memory_limit(root, proc) == (GIB, f"the cgroup's memory limit ({root}/user.slice/job/memory.max)")
    # A parent's smaller limit binds the child too.
    root, proc = cgroups(tmp_path / "b", {"user.slice/memory.max": "536870912\n", "user.slice/job/memory.max": "max"},
                         proc="0::/user.slice/job\n")
    assert memory_limit(root, proc) == (GIB // 2, f"the cgroup's memory limit ({root}/user.slice/memory.max)")


def test_cgroup_v2_path_not_mounted_here_falls_back_to_the_root(tmp_path: Path, no_rlimits: None) -> None:
    # A container sees the host's path in /proc/self/cgroup, but its own cgroup at the mount's root.
    root, proc = cgroups(tmp_path, {"memory.max": "1073741824"}, proc="0::/docker/0123abcd\n")
    assert memory_limit(root, proc) == (GIB, f"the cgroup's memory limit ({root}/memory.max)")


def test_cgroup_v2_max_means_no_limit(tmp_path: Path, no_rlimits: None) -> None:
    root, proc = cgroups(tmp_path, {"memory.max": "max\n", "job/memory.max": "max\n"}, proc="0::/job\n")
    assert memory_limit(root, proc) == (physical_memory(), "this machine's physical memory")


def test_cgroup_v1(tmp_path: Path, no_rlimits: None) -> None:
    proc = "5:cpu,cpuacct:/x\n4:memory:/process_api/job\n1:name=systemd:/\n"
    root, proc_file = cgroups(tmp_path, {"memory/memory.limit_in_bytes": f"{V1_NONE}\n",
                                         "memory/process_api/job/memory.limit_in_bytes": "2147483648\n"}, proc)
    assert memory_limit(root, proc_file) == (
        2 * GIB, f"the cgroup's memory limit ({root}/memory/process_api/job/memory.limit_in_bytes)")


def test_cgroup_v1_huge_value_means_no_limit(tmp_path: Path, no_rlimits: None,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    root, proc = cgroups(tmp_path, {"memory/memory.limit_in_bytes": f"{V1_NONE}\n"}, proc="4:memory:/\n")
    assert memory_limit(root, proc) == (physical_memory(), "this machine's physical memory")
    # Ignored even where the physical memory is not known: the huge value is no limit, not a small one.
    monkeypatch.setattr(errors, "physical_memory", lambda: 0)
    assert memory_limit(root, proc) == (0, "")


@pytest.mark.parametrize("text", ["", "garbage\n", "12 GiB", "-1", "0", "1e9", b"\xff\xfe1"])
def test_garbage_cgroup_file_is_ignored(tmp_path: Path, no_rlimits: None, text: str | bytes) -> None:
    root, proc = cgroups(tmp_path, {"memory.max": text, "memory/memory.limit_in_bytes": text})
    assert memory_limit(root, proc) == (physical_memory(), "this machine's physical memory")


def test_garbage_proc_cgroup_is_ignored(tmp_path: Path, no_rlimits: None) -> None:
    # Odd lines, and a path climbing out of the mount, leave the root's file as the limit.
    root, proc = cgroups(tmp_path, {"memory.max": "1073741824", "job/memory.max": "1024"},
                         proc="nonsense\n0::relative\n0::/../job\n::\n")
    assert memory_limit(root, proc) == (GIB, f"the cgroup's memory limit ({root}/memory.max)")


def test_unreadable_files_are_ignored(tmp_path: Path, no_rlimits: None) -> None:
    # A directory where the file should be reads as an error on every system, root or not.
    root, proc = cgroups(tmp_path, {"memory.max/x": "1"})
    assert memory_limit(root, proc) == (physical_memory(), "this machine's physical memory")
    assert memory_limit(root, str(tmp_path / "missing")) == (physical_memory(), "this machine's physical memory")
    assert memory_limit(str(tmp_path / "missing"), str(tmp_path)) == (physical_memory(),
                                                                      "this machine's physical memory")


@pytest.mark.parametrize("name, words", [("RLIMIT_AS", "the process's address-space limit (ulimit -v)"),
                                         ("RLIMIT_DATA", "the data-segment limit (ulimit -d)")])
def test_rlimit_in_a_subprocess(tmp_path: Path, name: str, words: str) -> None:
    # The limit is set in a child process: lowering it here would break the test run. 8 GiB: above what the
    # interpreter needs to start, below any physical memory a test machine has, and the cgroup faked as none.
    pytest.importorskip("resource")
    root, proc = cgroups(tmp_path, {})
    limit = 8 * GIB
    if physical_memory() <= limit:
        pytest.skip("this machine has no more than 8 GiB")
    code = (f"import resource; resource.setrlimit(resource.{name}, ({limit}, resource.getrlimit(resource.{name})[1]))\n"
            f"from rnnbench.errors import memory_limit\nprint(memory_limit({root!r}, {proc!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr((limit, words))


SETTINGS = {"model.hidden_size": (4096, 256), "model.num_layers": (2, 2), "data.seq_len": (100, 50)}


def test_require_fits_refuses_more_than_an_explicit_limit() -> None:
    with pytest.raises(ConfigError) as refused:
        require_fits(3.1 * GIB, "training", SETTINGS, limit=(2 * GIB, "the process's address-space limit (ulimit -v)"))
    # The setting furthest above its default is named, with the source of the limit.
    assert refused.value.setting == "model.hidden_size" and refused.value.value == 4096
    assert str(refused.value) == ("model.hidden_size=4096 is not allowed: a smaller value: training would need at "
                                  "least 3.1 GiB, more than the process's address-space limit (ulimit -v) of 2 GiB")


def test_require_fits_takes_an_explicit_limit_over_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    # A Slurm job's mem_gb: larger than this machine's memory, so what this machine has does not refuse ...
    monkeypatch.setattr(errors, "memory_limit", lambda: (GIB, "this machine's physical memory"))
    require_fits(3 * GIB, "training", SETTINGS, limit=(4 * GIB, "the Slurm job's memory (mem_gb=4)"))
    require_fits(4 * GIB, "training", SETTINGS, limit=(4 * GIB, "the Slurm job's memory (mem_gb=4)"))  # just fits
    require_fits(10**15, "training", SETTINGS, limit=(0, ""))  # no limit known: nothing refused
    # ... and without one, this process's limit refuses.
    with pytest.raises(ConfigError, match=r"training would need at least 3 GiB, more than this machine's physical "
                                          r"memory of 1 GiB"):
        require_fits(3 * GIB, "training", SETTINGS)
    with pytest.raises(ConfigError, match=r"more than the Slurm job's memory \(mem_gb=4\) of 4 GiB"):
        require_fits(4 * GIB + 1, "training", SETTINGS, limit=(4 * GIB, "the Slurm job's memory (mem_gb=4)"))


def test_require_fits_uses_the_process_limit(tmp_path: Path, no_rlimits: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Without an explicit limit, a cgroup limit smaller than the physical memory refuses.
    root, proc = cgroups(tmp_path, {"memory.max": "1073741824"})
    monkeypatch.setattr(errors, "CGROUP_ROOT", root)
    monkeypatch.setattr(errors, "PROC_CGROUP", proc)
    require_fits(GIB, "the splits", {"data.num_train": (10**6, 1000)})
    with pytest.raises(ConfigError) as refused:
        require_fits(1.5 * GIB, "the splits", {"data.num_train": (10**6, 1000)})
    assert str(refused.value) == ("data.num_train=1000000 is not allowed: a smaller value: the splits would need at "
                                  f"least 1.5 GiB, more than the cgroup's memory limit ({root}/memory.max) of 1 GiB")


def test_a_slurm_sweep_is_checked_against_its_jobs_memory_not_this_machines(monkeypatch):
    """Slurm's jobs run on the cluster: hydra.launcher.mem_gb is their limit, whatever this machine has (here a
    machine of 128 MiB, smaller than the model's ~270 MB of weights, gradients and Adam's state)."""
    from rnnbench.launch.validate import check_every_job

    monkeypatch.setattr(errors, "memory_limit", lambda: (128 * 2**20, "this machine's physical memory"))
    model = ["model.hidden_size=2048", "model.cell=lstm"]
    with pytest.raises(ConfigError, match=r"more than this machine's physical memory of 128 MiB"):
        check_every_job(["-m", *model])
    slurm = ["-m", "hydra/launcher=slurm"]
    assert check_every_job([*slurm, *model, "hydra.launcher.mem_gb=1"]).jobs == 1
    assert check_every_job([*slurm, *model]).jobs == 1  # the cluster's default memory: not known here, not refused
    with pytest.raises(ConfigError) as refused:  # ~4 GiB of weights, gradients and Adam's state
        check_every_job([*slurm, "model.hidden_size=8192", "model.cell=lstm", "hydra.launcher.mem_gb=1"])
    assert refused.value.setting == "model.hidden_size" and refused.value.value == 8192
    assert "more than the Slurm job's memory (hydra.launcher.mem_gb=1) of 1 GiB" in str(refused.value)
