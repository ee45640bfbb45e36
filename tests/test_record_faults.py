"""Faults in the records: `rnnbench table`, `plot` and `status` skip what they cannot trust (one warning line per
file, no traceback) and count every run once, however often its record is found."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rnnbench.cli import main
from rnnbench.report import plot as plot_module
from rnnbench.report.records import load_runs
from rnnbench.report.status import describe
from rnnbench.record.schema import COMPLETED, DIVERGED, INTERRUPTED, RUNNING, Record

from conftest import PATIENCE, cli_env

LENGTH = 8
# (cell, seed, status, test/mse) of the valid records: gru 2 completed; rnn 1 completed, 1 diverged, 1 interrupted.
VALID = [("gru", 0, COMPLETED, 0.125), ("gru", 1, COMPLETED, 0.25), ("rnn", 0, COMPLETED, 0.5),
         ("rnn", 1, DIVERGED, None), ("rnn", 2, INTERRUPTED, None)]


def make_record(run_dir: Path, cell: str, seed: int, status: str, test_mse: float | None, index: int) -> dict:
    """A record of the schema (rnnbench.record.schema.Record), as a tiny adding-problem run writes it."""
    config = {"seed": seed, "threads": 1, "logger": None, "model": {"cell": cell, "hidden_size": 4},
              "data": {"name": "adding", "seq_len": LENGTH},
              "trainer": {"max_steps": 2, "gradient_clip_val": 1.0}}
    record = Record(config=config, config_hash=f"{cell}-{seed}", overrides=[f"model.cell={cell}", f"seed={seed}"],
                    choices={"data": "adding", "logger": "none"}, output_dir=str(run_dir), seed=seed,
                    versions={"python": "3.11.7", "torch": "2.13.0"}, git=None,
                    started_at=f"2026-01-01T00:00:{index:02d}.000+00:00").to_json()
    curve = [10.0 ** -(LENGTH - 1 - k) for k in range(LENGTH)]
    record.update(
        status=status, steps=2, wall_seconds=3.0,
        task={"name": "adding", "metric": "mse", "metric_mode": "min", "seq_len": LENGTH,
              "baseline_loss": 1 / 6, "baseline_metric": 1 / 6, "reference": None},
        metrics={"train/loss": 0.5, "val/loss": 0.5, "val/mse": 0.5,
                 **({"test/loss": test_mse, "test/mse": test_mse} if test_mse is not None else {})},
        diverged_at_step=2 if status == DIVERGED else None,
        gradients={"final_norm": 0.5, "max_norm": 1.0, "clip_rate": 0.5, "probe_steps": [0, 2],
                   "layers": [{"layer": 0, "direction": "forward", "vanishing_log10": -7.0, "curve_first": curve,
                               "curve_last": curve}]},
        finished_at=None if status == RUNNING else "2026-01-01T00:01:00.000+00:00")
    return record


def write(path: Path, payload: dict | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload, indent=2))
    return path


def valid_sweep(root: Path) -> dict[tuple[str, int], dict]:
    """Run dirs 0-4 of ``root`` with the VALID records."""
    records = {}
    for index, (cell, seed, status, value) in enumerate(VALID):
        record = make_record(root / str(index), cell, seed, status, value, index)
        write(root / str(index) / "result.json", record)
        records[cell, seed] = record
    return records


# Files that are no record a reader can trust, and why each is skipped.
def faulty_files(root: Path, template: dict) -> dict[Path, str]:
    def edited(**changes) -> dict:
        return {**json.loads(json.dumps(template)), **changes}

    text = json.dumps(template, indent=2)
    task = edited()["task"]
    task["metric"] = ["mse"]
    files = {
        write(root / "5" / "result.json", text[: len(text) // 2]): "unreadable (",
        write(root / "6" / "result.json", "not json at all\n"): "unreadable (Expecting value",
        write(root / "7" / "result.json", {"hello": 1}): "not an rnnbench record",
        write(root / "8" / "result.json", {"status": "running", "started_at": "2020-01-01T00:00:00+00:00",
                                           "steps": 3}): "not an rnnbench record",
        write(root / "9" / "result.json", edited(metrics={"val/loss": "x"})): "metrics['val/loss']='x' is not a number",
        write(root / "10" / "result.json", edited(steps="3")): "steps='3' is not a int",
        write(root / "11" / "result.json", edited(gradients={"layers": 5})): "gradients.layers=5 is not a list",
        write(root / "12" / "result.json", edited(task=task)): "task.metric=['mse'] is not a str",
        write(root / "13" / "result.json", edited(schema=2)): "schema 2 is not 1",
    }
    return files


@pytest.fixture
def faulty(tmp_path) -> tuple[Path, dict, dict[Path, str]]:
    sweep = tmp_path / "multirun" / "sweep"
    records = valid_sweep(sweep)
    files = faulty_files(sweep, records["gru", 0])
    return sweep, records, files


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnbench", *map(str, args)], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=PATIENCE)


def table_json(capsys, *args) -> tuple[int, dict[str, dict], str]:
    code = main(["table", *map(str, args), "--by", "model.cell", "--format", "json"])
    captured = capsys.readouterr()
    rows = {row["model.cell"]: row for row in json.loads(captured.out)} if code == 0 else {}
    return code, rows, captured.err


def assert_skipped(err: str, files: dict[Path, str], shown: dict[Path, str]) -> None:
    """One warning line per faulty file, naming it (as ``shown``) and why; nothing else about them."""
    assert "Traceback" not in err
    skipped = [line for line in err.splitlines() if line.startswith("rnnbench: warning: skipped ")]
    assert len(skipped) == len(files), err
    for path, why in files.items():
        (line,) = [line for line in skipped if line.startswith(f"rnnbench: warning: skipped {shown[path]}: ")]
        assert why in line, line


def test_table_skips_faulty_records_and_counts_the_rest(faulty, capsys, monkeypatch):
    sweep, records, files = faulty
    monkeypatch.chdir(sweep.parent.parent)
    relative = {path: str(path.relative_to(sweep.parent.parent)) for path in files}
    code, rows, err = table_json(capsys, "multirun/sweep")
    assert code == 0
    assert_skipped(err, files, relative)
    assert list(rows) == ["gru", "rnn"]
    gru, rnn = rows["gru"], rows["rnn"]
    assert {k: gru["test/mse"][k] for k in ("mean", "n")} == {"mean": pytest.approx(0.1875), "n": 2}
    assert {v["seed"]: v["value"] for v in gru["test/mse"]["values"]} == {0: 0.125, 1: 0.25}
    assert gru["completed"] == {"count": 2, "of": 2} and gru["failed"] == {"count": 0, "of": 2}
    # rnn: the interrupted run counts in the totals, not as completed; only the completed seed has a value.
    assert rnn["test/mse"]["n"] == 1 and rnn["test/mse"]["values"] == [{"seed": 0, "value": 0.5}]
    assert rnn["completed"] == rnn["diverged"] == {"count": 1, "of": 3}
    assert rnn["failed"] == {"count": 0, "of": 3}
    assert "rnnbench: note: 1 run(s) interrupted (SIGINT or SIGTERM) before finishing" in err
    assert load_runs([sweep]).skipped and len(load_runs([sweep]).runs) == 5  # what a future `rnnbench report` reads

    code = main(["table", "multirun/sweep"])  # markdown: the table, and the skipped files in its trailer too
    captured = capsys.readouterr()
    assert code == 0 and "| gru | 0.188 ± 0.088 (2) |" in captured.out and "| 1/3 | 1/3 | 0/3 |" in captured.out
    assert captured.out.count("- **Warning:** skipped ") == len(files)
    assert_skipped(captured.err, files, relative)


def test_the_command_line_exits_0_without_a_traceback(faulty):
    sweep, _, files = faulty
    shown = {path: str(path) for path in files}
    result = run_cli(sweep, "table", sweep, "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert_skipped(result.stderr, files, shown)
    assert result.stdout.splitlines()[1].startswith("gru,0.1875,")
    result = run_cli(sweep, "status", sweep)
    assert result.returncode == 0, result.stderr
    assert_skipped(result.stderr, files, shown)
    assert result.stdout.splitlines()[0] == (f"{sweep}: 5 job(s): 3 completed, 1 diverged, 1 interrupted, "
                                             f"{len(files)} unreadable record(s) skipped")


def test_no_readable_record_is_exit_2_after_the_warnings(faulty, tmp_path):
    sweep, _, files = faulty
    only_faults = tmp_path / "only_faults"
    for path in files:
        destination = only_faults / path.parent.name / path.name
        destination.parent.mkdir(parents=True)
        shutil.copy(path, destination)
    result = run_cli(tmp_path, "table", "only_faults")
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert len(lines) == len(files) + 1 and all(line.startswith("rnnbench: warning: skipped only_faults/")
                                                for line in lines[:-1])
    assert lines[-1] == "rnnbench: error: no readable result.json below only_faults"


def test_plot_draws_the_readable_records(faulty, capsys, monkeypatch, tmp_path):
    sweep, _, files = faulty
    legends: dict[str, list[str]] = {}
    real_save = plot_module._save

    def save(fig, output, kind):
        legends[kind] = [label for ax in fig.axes for label in ax.get_legend_handles_labels()[1]]
        return real_save(fig, output, kind)

    monkeypatch.setattr(plot_module, "_save", save)
    for kind in ("gradient-flow", "clip-rate"):
        code = main(["plot", str(sweep), "--kind", kind, "--output", str(tmp_path / "figures")])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert_skipped(captured.err, files, {path: str(path) for path in files})
        assert [Path(line).name for line in captured.out.split()] == [f"{kind}.png", f"{kind}.svg"]
    # gradient flow: the completed runs (gru 2, rnn 1), two panels; clip rate: one line per cell, both panels.
    assert legends["gradient-flow"] == ["gru (n=2)", "rnn (n=1)"] * 2
    assert legends["clip-rate"] == ["gru", "rnn"] * 2


def test_status_counts_records_not_foreign_files(faulty):
    sweep, records, files = faulty
    warnings: list[str] = []
    lines = describe(sweep, warn=warnings.append)
    # The foreign {"status": "running"} of 2020 is no killed run; the interrupted one is its own state.
    assert lines[0] == f"{sweep}: 5 job(s): 3 completed, 1 diverged, 1 interrupted, {len(files)} unreadable " \
                       "record(s) skipped"
    assert "killed" not in "\n".join(lines)
    assert lines[1:] == ["  diverged  model.cell=rnn seed=1: diverged at step 2, 3 s",
                         "  interrupted model.cell=rnn seed=2: at step 2, val/mse 0.5, 3 s; resume=true continues it"]
    assert sorted(line.split(": ", 1)[0] for line in warnings) == sorted(f"skipped {path}" for path in files)


# --- one run, counted once ---------------------------------------------------------------------------------------

def test_a_run_found_through_two_dirs_counts_once(tmp_path, capsys, monkeypatch):
    valid_sweep(tmp_path / "A")
    monkeypatch.chdir(tmp_path)
    code, once, err = table_json(capsys, "A")
    assert code == 0 and "duplicate" not in err
    for args, duplicates in ((("A", "A/0"), 1), (("A", "A"), len(VALID)),
                             (("A/0", "A", str(tmp_path / "A" / "0" / "result.json")), 2)):
        code, rows, err = table_json(capsys, *args)
        assert code == 0 and rows == once, args
        assert rows["gru"]["test/mse"]["n"] == 2 and [v["seed"] for v in rows["gru"]["test/mse"]["values"]] == [0, 1]
        assert rows["gru"]["completed"] == {"count": 2, "of": 2}
        (line,) = [line for line in err.splitlines() if "duplicate" in line]
        assert line.startswith(f"rnnbench: warning: dropped {duplicates} duplicate record(s) of runs already counted")
    code = main(["table", "A", "A/0"])  # the markdown says so too
    assert code == 0 and "- **Warning:** dropped 1 duplicate record(s)" in capsys.readouterr().out


def test_distinct_runs_that_share_a_wandb_id_are_both_counted(tmp_path, capsys):
    """Two jobs given one W&B id (by hand, or before the launch refused it) are two runs, not a run and its copy."""
    records = valid_sweep(tmp_path / "A")
    for seed in (0, 1):
        (tmp_path / "A" / str(seed) / "result.json").write_text(json.dumps(
            {**records["gru", seed], "wandb": {"run_id": "shared", "mode": "offline", "dir": None}}))
    code, rows, err = table_json(capsys, tmp_path / "A")
    assert code == 0 and "duplicate" not in err
    assert rows["gru"]["test/mse"]["n"] == 2 and rows["gru"]["completed"] == {"count": 2, "of": 2}


def test_a_budgeted_run_is_grouped_by_the_hidden_size_it_trained():
    from rnnbench.report.records import settings_of

    record = {"config": {"model": {"hidden_size": 64, "param_budget": 5000}},
              "model_size": {"hidden_size": 33, "parameters": 4980, "param_budget": 5000}}
    assert settings_of(record)["model.hidden_size"] == 33
    unbudgeted = {"config": {"model": {"hidden_size": 64}},
                  "model_size": {"hidden_size": 64, "parameters": 17000, "param_budget": None}}
    assert settings_of(unbudgeted)["model.hidden_size"] == 64


def test_a_copy_of_a_record_counts_once(tmp_path, capsys):
    records = valid_sweep(tmp_path / "A")
    # A verbatim copy (same output_dir and started_at) in another dir, and a moved copy whose output_dir was
    # rewritten but whose W&B run id is the same run's.
    shutil.copy(tmp_path / "A" / "0" / "result.json", write(tmp_path / "B" / "copy" / "result.json", ""))
    (tmp_path / "A" / "1" / "result.json").write_text(json.dumps(
        {**records["gru", 1], "wandb": {"run_id": "abc123", "mode": "offline", "dir": None}}))
    write(tmp_path / "C" / "moved" / "result.json",
          {**records["gru", 1], "output_dir": str(tmp_path / "C" / "moved"),
           "wandb": {"run_id": "abc123", "mode": "offline", "dir": None}})
    code, rows, err = table_json(capsys, tmp_path / "B", tmp_path / "C", tmp_path / "A")
    assert code == 0
    gru = rows["gru"]["test/mse"]
    assert gru["n"] == 2 and {v["seed"]: v["value"] for v in gru["values"]} == {0: 0.125, 1: 0.25}
    assert rows["gru"]["completed"] == {"count": 2, "of": 2}
    assert "dropped 2 duplicate record(s)" in err
    # Of two copies, the one in the run's own dir is kept (its learning curves lie beside it), else the first.
    runs = load_runs([tmp_path / "B", tmp_path / "C", tmp_path / "A"])
    assert runs.duplicates == 2 and sorted(str(run.directory.relative_to(tmp_path)) for run in runs.runs) == \
        ["A/0", "A/2", "A/3", "A/4", "C/moved"]
    # status of a dir holding a run and a copy of its record: one job.
    shutil.copy(tmp_path / "A" / "0" / "result.json", write(tmp_path / "A" / "backup" / "result.json", ""))
    warnings: list[str] = []
    lines = describe(tmp_path / "A", warn=warnings.append)
    assert lines[0].startswith(f"{tmp_path / 'A'}: 5 job(s): 3 completed") and len(warnings) == 1
    assert warnings[0].startswith("dropped 1 duplicate record(s)")


def test_repeats_of_a_config_are_not_duplicates(tmp_path, capsys):
    """Two runs of the same config (seed included) are two samples: another start time, another run."""
    records = valid_sweep(tmp_path / "A")
    write(tmp_path / "A" / "again" / "result.json",
          {**records["gru", 0], "output_dir": str(tmp_path / "A" / "again"), "started_at": "2026-01-02T00:00:00+00:00",
           "metrics": {**records["gru", 0]["metrics"], "test/mse": 0.375}})
    code, rows, err = table_json(capsys, tmp_path / "A")
    assert code == 0 and "duplicate record" not in err
    assert rows["gru"]["test/mse"]["n"] == 3 and "1 run(s) repeat the exact config" in err


def test_settings_added_later_leave_the_hash_of_a_config_without_them_unchanged(compose_config):
    """A record written before weight_noise and early_stopping existed hashes like today's config at their
    defaults (so resume=true across the upgrade still skips its finished jobs); set, they change the hash."""
    from rnnbench.record.schema import ADDED_WITH_DEFAULT, config_hash

    default = compose_config()
    assert {key: default[key] for key in ADDED_WITH_DEFAULT} == ADDED_WITH_DEFAULT  # conf/train.yaml's "off"
    older = {"seed": 0, "model": {"cell": "gru"}, "optim": {"lr": 0.01}}
    today = {**older, **ADDED_WITH_DEFAULT}
    assert config_hash(today) == config_hash(older)
    for key in ADDED_WITH_DEFAULT:
        changed = {**today, key: 0.075 if key == "weight_noise" else 10}
        assert config_hash(changed) != config_hash(older)
