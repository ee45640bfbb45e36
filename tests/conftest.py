"""Shared fixtures: one torch thread per test process, composed configs, the shared text, CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from rnnbench.config import config_dir

REPO = Path(__file__).resolve().parent.parent
SHARED_TEXT = REPO.parent / "shared" / "data" / "timemachine.txt"

torch.set_num_threads(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run the end-to-end sweeps marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow end-to-end sweep: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def choices(group: str) -> str:
    """A config group's choices as rnnbench lists them in its messages: the names of ``conf/<group>/*.yaml``,
    sorted, comma-separated (tests read them from conf/, never from a copy)."""
    return ", ".join(sorted(path.stem for path in (config_dir() / group).glob("*.yaml")))


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

    def _run(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
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
