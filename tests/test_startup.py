"""Small commands start fast: `rnnbench status`, `table`, `--help` and `--version` import neither torch nor
Lightning; a value that its own rule judges (`seed=abc`) is refused before either is imported, in the line the
validation would print; `train --help` lists the registered cells; a sweep says at once that it started."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rnnbench.errors import ConfigError
from rnnbench.launch.train import announce_sweep, refuse_a_value_alone
from rnnbench.launch.validate import check_every_job
from rnnbench.models.cells.registry import CELLS

from conftest import PATIENCE, cli_env
from test_record_faults import valid_sweep

HEAVY = ("torch", "pytorch_lightning", "lightning", "lightning_fabric")
# `python -m rnnbench ARGS`, reporting at exit (whichever way it exits: Hydra's --help calls sys.exit) the heavy
# packages it imported, and those it had imported when a sweep announced itself.
PROBE = f"""
import atexit, json, sys
HEAVY = {HEAVY!r}
def heavy():
    return sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
atexit.register(lambda: print("HEAVY " + json.dumps(heavy()), file=sys.stderr))
import rnnbench.launch.train as launch
announce = launch.announce_sweep
def spy(*args):
    print("HEAVY-AT-ANNOUNCE " + json.dumps(heavy()), file=sys.stderr)
    announce(*args)
launch.announce_sweep = spy
from rnnbench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def probe(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict[str, list[str]]]:
    """Run ``rnnbench ARGS`` in a fresh process; (the process, {"HEAVY": [...], "HEAVY-AT-ANNOUNCE": [...]})."""
    result = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, env=cli_env(), capture_output=True,
                            text=True, timeout=PATIENCE)
    found, lines = {}, []
    for line in result.stderr.splitlines():
        name, _, payload = line.partition(" ")
        if name in ("HEAVY", "HEAVY-AT-ANNOUNCE"):
            found[name] = json.loads(payload)
        else:
            lines.append(line)
    assert "HEAVY" in found, result.stderr[-2000:]
    result.stderr = "\n".join(lines) + ("\n" if lines else "")
    return result, found


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "multirun" / "sweep"
    valid_sweep(root)
    return root


@pytest.mark.parametrize("command", [["--version"], ["--help"], ["train", "--version"], ["status"], ["table"]])
def test_small_commands_import_neither_torch_nor_lightning(command, sweep, tmp_path):
    args = [*command, str(sweep)] if command[0] in ("status", "table") else command
    result, found = probe(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert found["HEAVY"] == [], found
    assert "Traceback" not in result.stderr
    first = result.stdout.splitlines()[0]
    if command[0] == "status":
        assert first.startswith(f"{sweep}: 5 job(s): 3 completed, 1 diverged, 1 interrupted"), result.stdout
    elif command[0] == "table":
        assert first.startswith("| model.cell | test/mse |"), result.stdout
    elif command == ["--help"]:
        assert first.startswith("usage: rnnbench") and "status" in result.stdout
    else:
        assert first.startswith("rnnbench ") and "torch" in first  # the versions, read from metadata


def test_train_help_lists_the_registered_cells_and_the_config_groups_without_torch(tmp_path):
    result, found = probe(tmp_path, "train", "--help")
    assert result.returncode == 0, result.stderr
    assert found["HEAVY"] == [], found  # the cells are read from the registry's source, not imported
    lines = result.stdout.splitlines()
    assert f"model.cell: {', '.join(CELLS)}" in lines
    assert any(line.startswith("data: adding,") for line in lines) and any(line.startswith("model: ") for line in lines)
    # the cells sit between the config groups and the config
    order = [lines.index(header) for header in ("== Configuration groups ==", "== Cells ==", "== Config ==")]
    assert order == sorted(order), order


@pytest.mark.parametrize("arguments,line", [
    (["seed=abc"], "seed='abc' is not allowed: an integer >= 0 and <= 4294967295"),
    (["threads=0"], "threads=0 is not allowed: auto, null (torch's default: every core) or an integer in [1, 1024]"),
    (["verbose=maybe"], "verbose='maybe' is not allowed: true or false"),
    (["-m", "seed=0,abc"], "seed='abc' is not allowed: an integer >= 0 and <= 4294967295"),
])
def test_a_value_its_rule_judges_alone_is_refused_before_torch_or_lightning(arguments, line, tmp_path):
    result, found = probe(tmp_path, "train", *arguments)
    assert result.returncode == 2
    assert result.stderr == f"rnnbench: error: {line}\n" and result.stdout == ""
    assert found["HEAVY"] == [], found
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("arguments", [
    ["seed=abc"], ["threads=0"], ["verbose=maybe"], ["resume=1"], ["checkpoint=sometimes"], ["threads=null", "seed=-1"],
    ["seed=nan"], ["threads=inf"],  # a single value: the finite check comes first, as in the validation
    ["-m", "seed=0,nan"],  # a swept value: its rule alone, as in the validation's grid
    ["threads=1.5", "seed=abc"],  # two: the validation's order (rnnbench.config.ROOT_RULES), not the command's
    ["-m", "seed=0,1", "threads=2,0", "verbose=maybe"],  # swept values before single ones, as in the validation
])
def test_the_early_refusal_is_the_line_the_validation_gives(arguments):
    with pytest.raises(ConfigError) as early:
        refuse_a_value_alone(arguments)
    with pytest.raises(ConfigError) as validated:
        check_every_job(arguments)
    assert str(early.value) == str(validated.value)


@pytest.mark.parametrize("arguments", [
    ["seed=3", "threads=auto", "verbose=true", "resume=false", "checkpoint=keep"],  # fine
    ["-m", "seed=0,1,2", "threads=1,2"],
    ["seed=0,abc"],  # a sweep without -m: Hydra's own refusal, from the validation
    ["seed=${oc.env:RNNBENCH_TEST_UNSET}"],  # an interpolation: resolved (or refused) where it resolves
    ["+seed=abc"], ["~seed"], ["seed=1", "seed=abc"],  # what Hydra decides about, in the validation
    ["seed=[unclosed"],  # a line Hydra's parser refuses: its own message, from the validation
    ["model.cell=abc", "data.seq_len=-1"],  # the rest is the validation's
])
def test_what_a_rule_cannot_judge_alone_is_left_to_the_validation(arguments):
    refuse_a_value_alone(arguments)


def test_a_sweep_says_at_once_how_many_jobs_it_validates(tmp_path):
    """The first line comes once the grid is composed, before any job is validated (torch not yet imported);
    a bad value found then still ends the command with one line and nothing written."""
    result, found = probe(tmp_path, "train", "-m", "seed=0,1", "model.cell=rnn,gru", "data.seq_len=abc")
    assert result.returncode == 2
    assert result.stdout == "rnnbench: validating 4 jobs before any starts\n"
    assert result.stderr.startswith("rnnbench: error: data.seq_len='abc' is not allowed") and \
        len(result.stderr.splitlines()) == 1
    assert found["HEAVY-AT-ANNOUNCE"] == [], found
    assert list(tmp_path.iterdir()) == []


def test_the_first_line_counts_a_searchs_trials(capsys):
    def root(**sweeper):
        return OmegaConf.create({"hydra": {"sweeper": sweeper}})

    announce_sweep(6, root(_target_="hydra._internal.core_plugins.basic_sweeper.BasicSweeper"))
    announce_sweep(1, root(n_trials=20, sampler={"_target_": "optuna.samplers.TPESampler"}))
    announce_sweep(1, root(n_trials=20, sampler={"_target_": "optuna.samplers.GridSampler"}))
    announce_sweep(60_000, root())
    assert capsys.readouterr().out.splitlines() == [
        "rnnbench: validating 6 jobs before any starts", "rnnbench: validating a search of 20 jobs before any starts",
        "rnnbench: validating 1 job before any starts", "rnnbench: validating 60,000 jobs before any starts"]
