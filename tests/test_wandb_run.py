"""What W&B receives of a small sweep, read from its offline files (what `wandb sync` would upload; checking the
workspace itself needs a server): groups and job types, the run's own files, aligned steps, the summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rnnbench.job.wandb_offline import read_offline_run
from rnnbench.launch.train import train

TINY = ["data.seq_len=10", "model.hidden_size=8", "trainer.max_steps=20", "trainer.val_check_interval=10",
        "trainer.log_every_n_steps=5", "diagnostics.probe_every=10", "threads=1", "data.num_train=256",
        "data.num_val=64", "data.num_test=64", "logger=wandb"]


def steps_of(history: list[dict], key: str) -> list[int]:
    return [row["trainer/global_step"] for row in history if key in row]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import wandb

    try:  # a W&B service that an earlier test of this process stopped (an in-process job interrupted with its
        wandb.teardown()  # workers) is dropped: the sweep below starts a new one
    except (ConnectionError, OSError):
        pass
    root = tmp_path_factory.mktemp("wandb")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("WANDB_MODE", "offline")
        assert train(["-m", "model.cell=rnn,gru", "seed=0,1", *TINY, "hydra.sweep.dir=sweep"]) == 0
    return root / "sweep"


def runs_of(sweep: Path) -> list[tuple[dict, Path]]:
    found = []
    for record_path in sorted(sweep.glob("[0-9]*/result.json")):
        record = json.loads(record_path.read_text())
        found.append((record, Path(record["wandb"]["dir"]).parent))
    return found


def test_seeds_of_a_configuration_share_a_group_and_every_job_is_typed(sweep):
    runs = runs_of(sweep)
    assert len(runs) == 4
    groups = {}
    for record, _ in runs:
        groups.setdefault(record["wandb"]["group"], []).append(record["seed"])
        assert record["wandb"]["job_type"] == "sweep"
        assert record["wandb"]["name"] == f"model.cell={record['config']['model']['cell']},seed={record['seed']}"
    assert groups == {"sweep@sweep/model.cell=rnn": [0, 1], "sweep@sweep/model.cell=gru": [0, 1]}


def test_the_run_holds_its_record_config_overrides_and_log(sweep):
    for record, segment in runs_of(sweep):
        files = segment / "files"
        assert json.loads((files / "result.json").read_text()) == record
        assert (files / ".hydra" / "config.yaml").is_file() and (files / ".hydra" / "overrides.yaml").is_file()
        log = (files / "output.log").read_text()  # the Logs tab
        assert "`Trainer.fit` stopped" in log and log == (Path(record["output_dir"]) / "rnnbench.log").read_text()[:len(log)]


def test_every_series_counts_steps_alike(sweep):
    """Step k's loss at k, the validation after k steps at k, beside the probe of the same weights."""
    for record, segment in runs_of(sweep):
        history = read_offline_run(segment)["history"]
        assert steps_of(history, "train/loss") == [5, 10, 15, 20]
        assert steps_of(history, "val/mse") == [10, 20]
        assert steps_of(history, "test/mse") == [20]
        probes = steps_of(history, "grad_flow/layer0/forward/vanishing_log10")
        assert {10, 20} <= set(probes)
        assert record["metrics"]["best/val/mse_step"] in steps_of(history, "val/mse")
        assert record["history_steps"] == "completed"


def test_the_summary_is_the_headline_without_duplicates(sweep):
    for record, segment in runs_of(sweep):
        summary = {k: v for k, v in read_offline_run(segment)["summary"].items() if not k.startswith("_")}
        layer = record["gradients"]["layers"][0]
        assert summary["run/status"] == "completed" and summary["run/steps"] == 20
        assert summary["model/parameters"] == record["parameters"]
        assert summary["gradients/vanishing_log10_first"] == layer["vanishing_log10_first"]
        assert summary["gradients/vanishing_log10"] == layer["vanishing_log10"]
        assert summary["baseline/mse"] == pytest.approx(1 / 6)
        assert summary["val/mse"] == record["metrics"]["val/mse"] and summary["test/mse"] == record["metrics"]["test/mse"]
        assert not {"status", "steps", "parameters", "test/loss", "grad/norm_preclip"} & set(summary)
        assert not any(isinstance(v, dict) and "min" in v for v in summary.values())  # no val/loss.min beside best
        assert summary["grad_flow/table/_type"] == "table-file"  # a chart's table stays: its panel shows


def test_the_sweeps_table_is_a_wandb_table_in_a_run_of_its_own(sweep):
    (segment,) = (sweep / "wandb").glob("offline-run-*")
    run = read_offline_run(segment)
    assert run["config"]["sweep_dir"] == str(sweep.resolve())
    (table,) = [row for row in run["history"] if "table/_type" in row]
    assert table["table/_type"] == "table-file" and table["table/ncols"] >= 5 and table["table/nrows"] == 2
    saved = json.loads((segment / "files" / table["table/path"]).read_text())
    assert saved["columns"][0] == "model.cell" and sorted(r[0] for r in saved["data"]) == ["gru", "rnn"]
    assert not any((sweep / "wandb").rglob("result.json"))  # the readers' records stay the jobs' own


def test_a_run_file_cut_short_in_its_last_record_reads_up_to_it(sweep, tmp_path):
    """A job killed while W&B wrote its last record: the rows before it are still read (and a resume replays them)."""
    (segment,) = (sweep / "0" / "wandb").glob("offline-run-*")
    (whole,) = segment.glob("run-*.wandb")
    cut = tmp_path / "offline-run-cut" / whole.name
    cut.parent.mkdir()
    cut.write_bytes(whole.read_bytes()[:-20])
    rows, complete = read_offline_run(cut)["history"], read_offline_run(segment)["history"]
    assert 0 < len(rows) <= len(complete) and rows == complete[:len(rows)]


def test_a_resumed_run_replays_numbers_never_a_charts_file_reference(sweep, tmp_path):
    """The earlier segment's history holds the gradient-flow table as flat keys (``grad_flow/table/path``, ...)
    beside ``grad_flow/table/_type``: replayed, they would become text series pointing at another segment's file."""
    from types import SimpleNamespace

    from rnnbench.job.wandb_offline import continue_offline_run

    (segment,) = (sweep / "0" / "wandb").glob("offline-run-*")
    wandb_dir = tmp_path / "wandb"
    shutil.copytree(segment, wandb_dir / "offline-run-20260101_000000-abc123")
    (wandb_dir / "offline-run-20260101_000100-abc123" / "files").mkdir(parents=True)
    logged: list[dict] = []
    run = SimpleNamespace(id="abc123", dir=str(wandb_dir / "offline-run-20260101_000100-abc123" / "files"),
                          log=logged.append)
    assert any("grad_flow/table/_type" in row for row in read_offline_run(segment)["history"])
    assert continue_offline_run(run, resume_step=20) == len(logged) > 0
    assert not any(key.startswith("grad_flow/table") or key.startswith("_") for row in logged for key in row)
    assert [row["train/loss"] for row in logged if "train/loss" in row] == \
        [row["train/loss"] for row in read_offline_run(wandb_dir / "superseded" / "offline-run-20260101_000000-abc123")
         ["history"] if "train/loss" in row]


def test_a_segment_started_within_the_same_second_is_still_the_runs():
    """wandb names a second segment of one run started within a second ``...-<id>-1``: a later resume must find it."""
    from rnnbench.job.wandb_offline import segment_run_id

    assert segment_run_id(Path("offline-run-20261205_201222-eskvb4m4")) == "eskvb4m4"
    assert segment_run_id(Path("offline-run-20261205_201222-eskvb4m4-1")) == "eskvb4m4"
    assert segment_run_id(Path("superseded")) is None and segment_run_id(Path("latest-run")) is None
