"""The polyphonic-music task: the four sets load by name from their shared copies, each piece one sequence of its
own length predicting the next step's 88 keys; bad files and settings are refused before any job starts; a real
run records the papers' metric, early stopping's tested checkpoint, weight noise and the padding it processed."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from scipy.io import loadmat, savemat

from rnnbench.cli import main
from rnnbench.config import config_dir
from rnnbench.data import PolyphonicMusic
from rnnbench.launch.validate import preflight
from rnnbench.job.weight_noise import WeightNoise

from conftest import REPO, cli_env
from test_faults import interrupt_after_first_checkpoint, train
from test_bad_input import assert_refused, empty_cwd  # noqa: F401  (the fixture)

SHARED = REPO.parent / "shared" / "data" / "polyphonic"
# every data config whose target is the music module: the sets rnnbench ships, as conf/data names them
MUSIC = {path.stem: OmegaConf.load(path) for path in sorted((config_dir() / "data").glob("*.yaml"))
         if OmegaConf.load(path)._target_.endswith("PolyphonicMusic")}


def shared_copy(name: str) -> Path:
    path = SHARED / MUSIC[name].file
    if not path.is_file():
        pytest.skip(f"the shared copy of {MUSIC[name].file} is not at {path}")
    return path


def settings(name: str, **extra) -> dict:
    return {**{k: v for k, v in OmegaConf.to_container(MUSIC[name]).items() if k not in ("_target_", "cache_dir", "seed", "batch_size")},
            "path": str(shared_copy(name)), **extra}


def test_the_four_sets_of_boulanger_lewandowski_ship():
    assert {"jsb_chorales", "musedata", "nottingham", "piano_midi"} <= set(MUSIC)  # another set may join them


@pytest.mark.parametrize("name", sorted(MUSIC))
def test_each_set_loads_its_pieces_as_sequences_predicting_the_next_step(name):
    data = PolyphonicMusic(**settings(name), batch_size=8)
    raw = loadmat(str(data.path))
    pieces = {split: list(np.ravel(raw[key])) for split, key in (("train", "traindata"), ("val", "validdata"),
                                                                  ("test", "testdata"))}
    assert data.split_samples == {split: len(p) for split, p in pieces.items()}
    task = data.task
    assert (task.name, task.input_size, task.output_size, task.metric, task.causal) == (name, 88, 88, "nll", True)
    assert task.seq_len == max(len(p) for ps in pieces.values() for p in ps) - 1
    data.setup()
    inputs, targets = data.splits["val"]
    for number in (0, len(inputs) - 1):
        roll = torch.from_numpy(np.asarray(pieces["val"][number], dtype=np.uint8))
        assert torch.equal(inputs[number], roll[:-1]) and torch.equal(targets[number], roll[1:])
    # the input-blind baseline is the entropy of each key at its training frequency, summed over the keys
    frames = np.concatenate([np.asarray(p)[1:] for p in pieces["train"]]).astype(np.float64)
    p = frames.mean(axis=0)
    entropy = -np.where((p > 0) & (p < 1), p * np.log(np.where(p > 0, p, 1)) + (1 - p) * np.log(np.where(p < 1, 1 - p, 1)), 0)
    assert task.baseline_loss == pytest.approx(float(entropy.sum()), rel=1e-9)


def test_a_batch_is_padded_to_its_longest_piece_and_carries_the_lengths():
    data = PolyphonicMusic(**settings("jsb_chorales"), batch_size=16)
    inputs, targets, lengths = next(iter(data.val_dataloader()))
    assert inputs.dtype == targets.dtype == torch.float32 and inputs.shape == targets.shape
    assert inputs.shape[:2] == (16, int(lengths.max())) and inputs.shape[2] == 88
    for b, length in enumerate(lengths.tolist()):
        assert not inputs[b, length:].any() and not targets[b, length:].any()
    assert int(lengths[0]) == max(len(x) for x in data.splits["val"][0])  # evaluation: longest first


def write_mat(path: Path, **splits) -> Path:
    def cell(pieces):
        array = np.empty((1, len(pieces)), dtype=object)
        for i, piece in enumerate(pieces):
            array[0, i] = piece
        return array

    savemat(str(path), {key: cell(pieces) for key, pieces in splits.items()})
    return path


GOOD = [np.eye(5, 88, dtype=np.uint8), np.ones((3, 88), dtype=np.uint8)]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """Each bad file, and a word of what its refusal says."""
    folder = tmp_path_factory.mktemp("mat")
    (folder / "text.mat").write_text("not a MATLAB file\n")
    return {
        "not MATLAB": (folder / "text.mat", "MATLAB"),
        "no test split": (write_mat(folder / "nosplit.mat", traindata=GOOD, validdata=GOOD), "testdata"),
        "wrong width": (write_mat(folder / "width.mat", traindata=GOOD, validdata=GOOD,
                                  testdata=[np.ones((4, 12), dtype=np.uint8)]), "shape"),
        "not binary": (write_mat(folder / "values.mat", traindata=[GOOD[0] * 3], validdata=GOOD, testdata=GOOD),
                       "binary"),
    }


@pytest.mark.parametrize("case", ["not MATLAB", "no test split", "wrong width", "not binary"])
def test_a_bad_file_is_refused_before_any_job(case, bad_files, empty_cwd, capsys):  # noqa: F811
    path, word = bad_files[case]
    code = main(["train", "data=jsb_chorales", f"data.path={path}", "data.sha256=null"])
    out, err = capsys.readouterr()
    assert_refused(code, out, err, "data.path", empty_cwd)
    assert word in err


@pytest.mark.parametrize("arguments,setting,word", [
    (("data.path=/no/such/file.mat",), "data.path", "an existing file"),
    (("data.path={text}",), "data.path", "sha256"),  # a file whose SHA-256 is not the set's
    (("data.path={jsb}", "weight_noise=-0.1"), "weight_noise", ">= 0"),
    (("data.path={jsb}", "model.bidirectional=true"), "model.bidirectional", "causal"),
    (("data.path={jsb}", "early_stopping=0"), "early_stopping", "null"),
    (("data.cache_dir={empty}", "data.url=file:///no/such/file.mat"), "data.path", "not in"),
], ids=["missing", "sha256", "weight noise", "bidirectional", "patience", "offline"])
def test_bad_music_settings_are_refused_before_any_job(arguments, setting, word, empty_cwd, capsys, tmp_path):  # noqa: F811
    text = REPO.parent / "shared" / "data" / "timemachine.txt"
    (tmp_path / "empty").mkdir()
    filled = [a.format(jsb=shared_copy("jsb_chorales"), text=text, empty=tmp_path / "empty") for a in arguments]
    code = main(["train", "data=jsb_chorales", *filled])
    out, err = capsys.readouterr()
    assert_refused(code, out, err, setting, empty_cwd)
    assert word in err


def test_an_offline_machine_without_the_file_is_told_which_path_to_give(empty_cwd, capsys, tmp_path):  # noqa: F811
    code = main(["train", "data=nottingham", f"data.cache_dir={tmp_path}", "data.url=file:///no/such/file.mat"])
    out, err = capsys.readouterr()
    assert_refused(code, out, err, "data.path", empty_cwd)
    assert "Nottingham.mat" in err and MUSIC["nottingham"].sha256 in err and str(tmp_path) in err


def test_the_chung_preset_and_its_search_compose_for_every_set():
    for name in MUSIC:
        path = shared_copy(name)
        assert preflight(["-m", "experiment=chung_polyphonic", f"data={name}", f"data.path={path}"]) == 5
        assert preflight(["-m", "experiment=chung_polyphonic", "hparams_search=polyphonic_lr", f"data={name}",
                          f"data.path={path}", "model.cell=lstm_peephole"]) == 1


def test_weight_noise_takes_the_gradient_at_noisy_weights_and_updates_the_clean_ones():
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 1)

    class Module(torch.nn.Module):  # what the callback touches: parameters()
        def __init__(self):
            super().__init__()
            self.layer = layer

    module, noise = Module(), WeightNoise(0.5, seed=7)
    clean = [p.detach().clone() for p in module.parameters()]
    noise.on_train_batch_start(None, module, None, 0)
    noisy = [p.detach().clone() for p in module.parameters()]
    generator = torch.Generator().manual_seed(7)
    drawn = [torch.randn(p.shape, generator=generator) * 0.5 for p in clean]
    for n, c, d in zip(noisy, clean, drawn):
        torch.testing.assert_close(n, c + d)
    x = torch.randn(4, 3)
    layer(x).pow(2).sum().backward()
    expected = [p.grad.clone() for p in module.parameters()]  # the gradient at the noisy weights
    noise.on_after_backward(None, module)
    for p, c, g in zip(module.parameters(), clean, expected):
        assert torch.equal(p.detach(), c) and torch.equal(p.grad, g)


@pytest.mark.slow
def test_a_music_run_records_nll_the_tested_checkpoint_and_its_padding(rnnbench_cli, tmp_path):
    result = rnnbench_cli("train", "data=jsb_chorales", f"data.path={shared_copy('jsb_chorales')}", "logger=csv",
                          "threads=1", "model.cell=gru", "model.param_budget=20000", "optim=rmsprop",
                          "optim.lr=0.003", "weight_noise=0.075", "early_stopping=2", "trainer.gradient_clip_val=1",
                          "trainer.max_steps=120", "trainer.val_check_interval=15", "hydra.run.dir=run",
                          env=cli_env())
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    metrics = record["metrics"]
    assert record["status"] == "completed" and record["model_size"]["parameters"] == pytest.approx(20000, rel=0.05)
    assert metrics["test/nll"] == pytest.approx(metrics["test/loss"], rel=1e-5)  # the loss is the NLL per step
    assert metrics["test/nll"] < record["task"]["reference"]["test/nll"]  # it learned beyond key frequencies
    assert 0 < metrics["test/frame_accuracy"] < 1
    stopping = record["early_stopping"]
    assert stopping["tested_step"] == metrics["best/val/nll_step"] and stopping["monitor"] == "val/nll"
    padding = record["padding"]
    assert 0 < padding["fraction"] < 0.2 and padding["useful_steps"] < padding["processed_steps"]
    assert record["config"]["weight_noise"] == 0.075
    assert not (tmp_path / "run" / "checkpoints").exists()
    history = (tmp_path / "run" / "csv" / "metrics.csv").read_text()
    assert "val/frame_accuracy" in history and "val/nll" in history


@pytest.mark.slow
def test_an_interrupted_music_run_resumes_to_the_numbers_of_an_uninterrupted_one(tmp_path):
    """Same bucketed batches in the same order, the same weight noise, early stopping's state: bit for bit."""
    run = ("data=jsb_chorales", f"data.path={shared_copy('jsb_chorales')}", "logger=csv", "threads=1",
           "model.cell=lstm_peephole", "model.hidden_size=8", "optim=rmsprop", "optim.lr=0.003", "weight_noise=0.075",
           "early_stopping=50", "trainer.gradient_clip_val=1", "trainer.max_steps=200", "trainer.val_check_interval=50")
    whole = train(tmp_path, *run, "hydra.run.dir=whole")
    assert whole.returncode == 0, whole.stderr[-2000:]
    stopped = interrupt_after_first_checkpoint(tmp_path, "cut", signal.SIGTERM, run)
    cut = json.loads((tmp_path / "cut" / "result.json").read_text())
    assert cut["status"] == "interrupted" and 50 <= cut["steps"] < 200, stopped.stderr[-2000:]
    resumed = train(tmp_path, *run, "hydra.run.dir=cut", "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    again, reference = (json.loads((tmp_path / name / "result.json").read_text()) for name in ("cut", "whole"))
    assert again["resumed_from_step"] is not None and again["steps"] == reference["steps"] == 200
    assert again["metrics"] == reference["metrics"] and again["early_stopping"] == reference["early_stopping"]
    assert again["padding"] == reference["padding"]
    assert again["gradients"]["max_norm"] == reference["gradients"]["max_norm"]
