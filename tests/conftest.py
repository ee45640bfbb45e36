"""Shared fixtures: one torch thread per test process, composed configs, the shared text, CLI runs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from rnnbench.config import config_dir

REPO = Path(__file__).resolve().parent.parent
SHARED_TEXT = REPO.parent / "shared" / "data" / "timemachine.txt"

torch.set_num_threads(1)


def _cache_the_shared_text() -> None:
    """The shared copy of The Time Machine, verified, in the cache where a download would put it: this machine is
    offline, and a Time Machine module without a path fetches its text as it is built (as the launch validates)."""
    import hashlib
    import shutil

    from rnnbench.data.files import default_cache_dir
    from rnnbench.data.timemachine import D2L_SHA256

    cached = Path(default_cache_dir()).expanduser() / "timemachine.txt"
    if SHARED_TEXT.is_file() and not cached.is_file() \
            and hashlib.sha256(SHARED_TEXT.read_bytes()).hexdigest() == D2L_SHA256:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f".timemachine.{os.getpid()}.part")
        shutil.copyfile(SHARED_TEXT, partial)
        os.replace(partial, cached)


_cache_the_shared_text()

# The ceiling of every wait on a subprocess or an event: generous, so that a busy machine makes a test slow, never
# failing; a hang still ends in a clear failure (and pytest-timeout's default ends a test that hangs elsewhere).
PATIENCE = 600


def wait_until(condition: Callable[[], object], what: str, timeout: float = PATIENCE,
               process: subprocess.Popen | None = None, interval: float = 0.1) -> None:
    """Poll ``condition`` until it holds; fail the test naming ``what`` after ``timeout`` seconds, or as soon as
    ``process`` (if given) ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            out, err = process.communicate() if process.stdout or process.stderr else ("", "")
            pytest.fail(f"the process ended (exit status {process.returncode}) while waiting for {what}: "
                        f"{str(out or '')[-2000:]}{str(err or '')[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}")
        time.sleep(interval)


@pytest.fixture(autouse=True)
def _root_logging_as_it_was():
    """A test that launches in-process (Hydra's job logging) leaves handlers on the root logger that write to that
    test's captured streams, closed once it ends; a later test's log line would then print a logging error instead
    of its one-line refusal. Every test ends with the root logger's handlers and level as they were."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run the end-to-end sweeps marked slow")
    parser.addoption("--device", default="cpu", help="the torch device of the tests that take the `device` fixture "
                                                     "(tests/test_gpu_check.py): cpu (default) or cuda")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow end-to-end sweep: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> torch.device:
    """The device of ``--device`` (cpu unless given); ``--device cuda`` on a machine where torch sees no GPU fails."""
    chosen = torch.device(request.config.getoption("--device"))
    if chosen.type == "cuda" and not torch.cuda.is_available():
        pytest.fail(f"--device {chosen} asked for, but torch {torch.__version__} sees no CUDA device")
    return chosen


def choice_names(group: str) -> list[str]:
    """A config group's choices: the names of ``conf/<group>/*.yaml``, sorted (tests read them from conf/, never
    from a copy, so that adding a choice breaks no test)."""
    return sorted(path.stem for path in (config_dir() / group).glob("*.yaml"))


def choices(group: str) -> str:
    """A config group's choices as rnnbench lists them in its messages: :func:`choice_names`, comma-separated."""
    return ", ".join(choice_names(group))


@pytest.fixture
def compose_config():
    """compose_config(*overrides) -> the DictConfig `rnnbench train OVERRIDES` would run (no Hydra run context)."""

    def _compose(*overrides: str):
        with initialize_config_dir(str(config_dir()), version_base="1.3"):
            return compose("train", overrides=list(overrides))

    return _compose


@pytest.fixture(scope="session")
def timemachine_text() -> Path:
    if not SHARED_TEXT.is_file():
        pytest.skip(f"the shared copy of The Time Machine is not at {SHARED_TEXT}")
    return SHARED_TEXT


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "HYDRA_"))}
    env.update(PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **extra)
    return env


@pytest.fixture
def rnnbench_cli(tmp_path: Path):
    """rnnbench_cli(*args, env=None) runs `python -m rnnbench ARGS` in tmp_path; returns the CompletedProcess."""

    def _run(*args: str, env: dict[str, str] | None = None, timeout: float = PATIENCE) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "rnnbench", *args], cwd=tmp_path, env=env or cli_env(),
                              capture_output=True, text=True, timeout=timeout)

    return _run


FAILING_CELL = "faulty_cells.FailsWhileTraining"


@pytest.fixture
def failing_cell(tmp_path: Path) -> str:
    """A user cell (saved in tmp_path, the runs' working directory) that passes every check before a job starts
    and raises once training begins: a real failure inside a job. Returns its ``model.cell`` name."""
    (tmp_path / "faulty_cells.py").write_text(
        "import torch\n"
        "from rnnbench.models.cells.simple import ElmanRNN\n\n\n"
        "class FailsWhileTraining(ElmanRNN):\n"
        "    def step_projected(self, p_t, state):\n"
        "        if self.training and torch.is_grad_enabled():\n"
        "            raise RuntimeError('injected fault: this cell fails in training')\n"
        "        return super().step_projected(p_t, state)\n")
    return FAILING_CELL


# Tiny but real: enough steps for every task to learn something, small enough for seconds per run.
FAST = ("threads=1", "trainer.max_steps=40", "trainer.val_check_interval=20", "model.hidden_size=16",
        "data.num_train=512", "data.num_val=128", "data.num_test=128", "data.batch_size=32")
