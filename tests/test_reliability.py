"""Divergence is this tool's subject: a run or a sweep that diverged is summarised, tabulated and reported like any
other, in the same words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnbench.cli import main
from rnnbench.record.schema import find_records

DIVERGES = ["optim=sgd", "optim.lr=1", "model.cell=rnn", "model.hidden_size=32", "trainer.max_steps=100",
            "trainer.log_every_n_steps=1",
            "logger=csv", "threads=1", "data.num_train=512", "data.num_val=128", "data.num_test=128"]


def test_a_diverged_run_is_summarised_tabulated_and_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *DIVERGES, "hydra.run.dir=run"]) == 0
    out = capsys.readouterr().out
    assert "rnnbench: diverged, " in out and "val/mse not finite" in out and "Traceback" not in out
    assert main(["table", "run"]) == 0  # no metric asked for: the table of fates, the test columns blank
    table = capsys.readouterr().out
    assert "| 0/1 | 1/1 | 0/1 |" in table and "in no completed run's record (blank column)" in table
    assert main(["report", "run", "-o", "page.html"]) == 0 and (tmp_path / "page.html").stat().st_size > 0
    assert main(["table", "run", "--metric", "test/mse"]) == 2  # asked for by name, it must exist
    assert "--metric='test/mse' is not allowed: no record holds it" in capsys.readouterr().err


TINY = ["model.hidden_size=8", "trainer.max_steps=4", "trainer.val_check_interval=2", "logger=csv", "threads=1",
        "trainer.log_every_n_steps=1",
        "data.num_train=64", "data.num_val=32", "data.num_test=32", "diagnostics=none"]


def hostile_records(root: Path, good: dict) -> dict[str, Path]:
    """Beside a real record, the files a reader may meet in place of one; returns their dirs by name."""
    import os

    def with_mse(digits: str) -> str:  # the JSON text itself: Python's int() refuses 5,000 digits
        return json.dumps({**good, "metrics": {**good["metrics"], "val/mse": "NUMBER"}}).replace('"NUMBER"', digits)

    cases = {
        "long_int": with_mse("9" * 5000),
        "huge_int": with_mse("1" + "0" * 400),
        "deep": "[" * 100_000 + "]" * 100_000,
        "list": json.dumps([good]),
        "latin1": json.dumps(good).replace("}", ', "note": "caf\u00e9"}', 1).encode("latin-1"),
    }
    dirs = {}
    for name, content in cases.items():
        (root / name).mkdir(parents=True)
        path = root / name / "result.json"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        dirs[name] = root / name
    (root / "fifo").mkdir()
    os.mkfifo(root / "fifo" / "result.json")  # a reader that opened it would wait forever for a writer
    dirs["fifo"] = root / "fifo"
    return dirs


def test_no_file_in_place_of_a_record_crashes_or_hangs_a_reader(tmp_path, monkeypatch, capsys):
    from rnnbench.launch.sweep_lines import SweepLines
    from rnnbench.record.schema import RecordError, read_record
    from rnnbench.report.records import read_records

    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY, "hydra.run.dir=sweep/good"]) == 0
    good = json.loads((tmp_path / "sweep" / "good" / "result.json").read_text())
    dirs = hostile_records(tmp_path / "sweep", good)
    capsys.readouterr()
    # numbers too long or too large for Python's int and float read as measurements: inf
    assert read_record(dirs["long_int"] / "result.json")["metrics"]["val/mse"] == float("inf")
    assert read_record(dirs["huge_int"] / "result.json")["metrics"]["val/mse"] == float("inf")
    for name in ("deep", "list", "fifo", "latin1"):
        with pytest.raises(RecordError, match=f"{name}/result.json: (unreadable|not an rnnbench record)"):
            read_record(dirs[name] / "result.json")
    records, skipped, duplicates = read_records(sorted(find_records(tmp_path / "sweep")))
    assert (len(records), duplicates, len(skipped)) == (1, 2, 4)  # the two copies are the same run
    for command in (["table", "sweep"], ["status", "sweep"], ["report", "sweep", "-o", "page.html"]):
        assert main(command) == 0, command
    assert "Traceback" not in capsys.readouterr().err
    lines = []
    SweepLines(tmp_path / "sweep", 7, [], out=lambda text, **_: lines.append(text)).poll()
    assert len(lines) == 3  # the three readable records; the rest skipped, nothing blocked


def test_a_published_csv_with_a_byte_order_mark_or_in_latin_1(tmp_path):
    from rnnbench.report.published import read_published
    from rnnbench.report.records import ReportError

    (tmp_path / "bom.csv").write_bytes("\ufeffmodel.cell,published\ngru,8.54\n".encode("utf-8"))
    assert read_published(tmp_path / "bom.csv").keys == ("model.cell",)
    (tmp_path / "latin1.csv").write_bytes("model.cell,published\ngru,8.54 (Chung \u00e9t al.)\n".encode("latin-1"))
    with pytest.raises(ReportError, match=r"^--published .*latin1.csv: not UTF-8 text \(byte \d+\); save it as UTF-8"):
        read_published(tmp_path / "latin1.csv")


@pytest.mark.parametrize("override,setting", [("hydra.run.dir=run_${oc.env:HF_TOKEN}", "hydra.run.dir"),
                                              ("logger.csv.name=${oc.env:HF_TOKEN}", "logger.csv.name")])
def test_a_credential_in_a_path_is_refused_redacted(override, setting, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_TOKEN", "hf_dummy0123456789")
    assert main(["train", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rnnbench: error: {setting}=") and "<redacted>" in err and "hf_dummy" not in err
    assert "a path without a credential from the environment" in err and list(tmp_path.iterdir()) == []


def test_a_credential_literal_travels_in_the_environment_and_is_never_swept(monkeypatch, tmp_path, capsys):
    from rnnbench.launch.train import hide_secret_literals
    from rnnbench.record.secrets import SECRET_LITERAL_PREFIX

    monkeypatch.chdir(tmp_path)
    for index in range(2):  # hide_secret_literals sets them; monkeypatch restores the environment after
        monkeypatch.setenv(f"{SECRET_LITERAL_PREFIX}{index}", "")
    lines = hide_secret_literals(["seed=1", "+extra.api_key=sekrit-one", "+extra.password='sekrit-two'",
                                  "+extra.token=${oc.env:HOME}"])
    assert lines == ["seed=1", f"+extra.api_key=${{oc.env:{SECRET_LITERAL_PREFIX}0}}",
                     f"+extra.password=${{oc.env:{SECRET_LITERAL_PREFIX}1}}", "+extra.token=${oc.env:HOME}"]
    import os
    assert [os.environ[f"{SECRET_LITERAL_PREFIX}{i}"] for i in range(2)] == ["sekrit-one", "sekrit-two"]
    assert main(["train", "-m", "+extra.api_key=sekrit-a,sekrit-b"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("rnnbench: error: extra.api_key='<redacted>' is not allowed: one value: a credential is "
                           "not swept (one job per value would write it into the sweep's files)")
    assert list(tmp_path.iterdir()) == []


def test_a_key_swept_below_a_null_node_and_ctrl_c_at_start_up_are_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "-m", "hydra.sweeper.params.model.cell=rnn,foo"]) == 2
    assert capsys.readouterr().err.strip() == (
        "rnnbench: error: hydra.sweeper.params.model.cell='rnn,foo' is not allowed: a key below hydra.sweeper.params, "
        "which is null here (to sweep a key, give it its values on the command line: KEY=A,B)")

    def interrupted(arguments):
        raise KeyboardInterrupt

    monkeypatch.setattr("rnnbench.launch.train.train", interrupted)
    assert main(["train", "seed=1"]) == 130
    assert capsys.readouterr().err == "rnnbench: interrupted\n"


def test_a_deleted_model_setting_trains_with_its_default(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "~model.cell", *TINY, "hydra.run.dir=run"]) == 0
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["status"] == "completed" and "cell" not in record["config"]["model"]


def test_a_cache_dir_that_is_a_file_is_refused_before_any_job(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")
    for data in ("timemachine", "jsb_chorales"):
        assert main(["train", f"data={data}", f"data.cache_dir={tmp_path / 'a_file'}"]) == 2
        assert capsys.readouterr().err.strip() == (f"rnnbench: error: data.cache_dir='{tmp_path / 'a_file'}' is not "
                                                   "allowed: a directory, or where one can be made (it is a file)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_status_shows_no_impossible_speed_or_percentage_from_a_damaged_heartbeat(tmp_path, monkeypatch):
    from rnnbench.record.lines import parse_timestamp
    from rnnbench.report.status import describe

    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY, "hydra.run.dir=run"]) == 0
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    running = {**record, "status": "running", "steps": 50, "finished_at": None,
               "progress": {"max_steps": 20, "steps_per_second": -3.0, "updated_at": record["started_at"]}}
    (tmp_path / "run" / "result.json").write_text(json.dumps(running))
    lines = describe(tmp_path / "run", now=parse_timestamp(record["started_at"]) + 1)
    assert lines[1].endswith("step 50, 0 steps/s") and "-" not in lines[1].split(":", 1)[1] and "%" not in lines[1]


def test_two_executions_of_one_sweep_are_flagged_and_the_seed_is_not_a_comparison(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for execution in ("first", "second"):
        assert main(["train", "-m", "model.cell=rnn,gru", *TINY, f"hydra.sweep.dir=sweeps/{execution}"]) == 0
    capsys.readouterr()
    assert main(["table", "sweeps"]) == 0
    table = capsys.readouterr().out
    assert "2 run(s) repeat the configuration and seed of another run" in table and "(2) |" in table
    assert main(["table", "sweeps/first"]) == 0
    assert "repeat the configuration" not in capsys.readouterr().out
    assert main(["table", "sweeps/first", "--compare", "seed=*", "seed=0"]) == 2
    assert "the seeds are each side's samples, not a setting to compare" in capsys.readouterr().err


def test_a_user_cell_without_parameters_or_with_integer_states_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "odd_cells.py").write_text(
        "import torch\n"
        "from rnnbench.models.cells.simple import ElmanRNN\n"
        "from rnnbench.models.cells.base import Cell\n\n\n"
        "class NoWeights(Cell):\n"
        "    def step(self, x_t, state):\n"
        "        return (torch.tanh(state[0]),), {}\n\n\n"
        "class IntegerState(ElmanRNN):\n"
        "    def initial_state(self, batch, device=None, dtype=None):\n"
        "        return (torch.zeros(batch, self.hidden_size, dtype=torch.long, device=device),)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for cell, why in (("odd_cells.NoWeights", "it has no parameters"),
                      ("odd_cells.IntegerState", "state 'h' must be a floating-point tensor, got torch.int64")):
        assert main(["train", f"model.cell={cell}"]) == 2
        announced, refused = capsys.readouterr().err.splitlines()  # the user cell's check says so, then refuses
        assert announced.startswith(f"rnnbench: checking the user cell {cell} (import, constructor, one step")
        assert refused.startswith(f"rnnbench: error: model.cell='{cell}' is not allowed") and why in refused
