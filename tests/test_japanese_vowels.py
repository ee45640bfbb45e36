"""Japanese Vowels: the UEA set from aeon's wheel, read with aeon's own .ts reader: 270 training utterances (a
stratified validation draw held out) and the standard 370 test ones, 12 features, 7-29 frames, 9 speakers;
standardised with the training split's statistics; variable-length batches; refused in one line without aeon or with
a bad val_size; a short training run learns."""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from rnnbench.cli import main
from rnnbench.config import build
from rnnbench.data import JapaneseVowels
from rnnbench.data.base import unpack_batch
from rnnbench.data.japanese_vowels import FILES, INSTALL, data_dir, load
from rnnbench.errors import ConfigError, DataError
from rnnbench.job.module import SequenceTaskModule

import test_bad_input
from test_bad_input import assert_refused

empty_cwd = test_bad_input.empty_cwd  # the fixture: an empty working dir no job may write to

torch.set_num_threads(1)
TEST_SPEAKERS = [31, 35, 88, 44, 29, 24, 40, 50, 29]  # the test set's utterances per speaker (UEA archive)


@pytest.fixture(scope="module")
def aeon_files():
    """aeon's copy of the two .ts files, read with aeon's reader: skipped without aeon, a failure under CI (the test
    extra installs it)."""
    try:
        folder = data_dir()
        from aeon.datasets import load_from_ts_file
    except (DataError, ImportError):
        if os.environ.get("CI"):
            pytest.fail("CI has no aeon: pip install -e '.[test]' installs it (the vowels extra)")
        pytest.skip("aeon is not installed (pip install 'rnnbench[vowels]')")
    return {split: load_from_ts_file(str(folder / file)) for split, file in FILES.items()}


def test_the_uea_splits_sizes_lengths_and_speakers(aeon_files):
    for split, count in (("train", 270), ("test", 370)):
        series, labels = aeon_files[split]
        assert isinstance(series, list) and len(series) == len(labels) == count  # unequal lengths: a list
        assert {x.shape[0] for x in series} == {12}  # each (12, T_i)
    lengths = {split: [x.shape[1] for x in aeon_files[split][0]] for split in FILES}
    assert (min(lengths["train"]), max(lengths["train"])) == (7, 26) and (min(lengths["test"]), max(lengths["test"])) \
        == (7, 29)
    module = JapaneseVowels()
    assert module.split_samples == {"train": 225, "val": 45, "test": 370}
    task = module.task
    assert (task.name, task.input_kind, task.input_size, task.output_size, task.seq_len) == \
        ("japanese_vowels", "real", 12, 9, 29)
    assert (task.per_step, task.loss, task.metric, task.causal) == (False, "cross_entropy", "accuracy", False)
    assert task.baseline_accuracy == pytest.approx(1 / 9) and task.baseline_loss == pytest.approx(math.log(9))
    module.setup()
    splits = module.splits
    for split, (inputs, targets) in splits.items():
        assert isinstance(inputs, list) and len(inputs) == len(targets) == module.split_samples[split]
        assert all(x.dtype == torch.float32 and x.shape[1] == 12 for x in inputs) and targets.dtype == torch.int64
    # stratified: 5 of each speaker's 30 in val, 25 in train; the test set as the archive has it
    assert torch.bincount(splits["val"][1]).tolist() == [5] * 9
    assert torch.bincount(splits["train"][1]).tolist() == [25] * 9
    assert torch.bincount(splits["test"][1]).tolist() == TEST_SPEAKERS
    every = [len(x) for inputs, _ in splits.values() for x in inputs]
    assert (min(every), max(every)) == (7, 29)


def test_features_are_standardised_with_the_training_splits_statistics(aeon_files):
    module = JapaneseVowels(val_size=90, seed=2)
    module.setup()
    (train, train_y), (val, val_y), (test, test_y) = (module.splits[s] for s in ("train", "val", "test"))
    assert (len(train), len(val)) == (180, 90) and torch.bincount(val_y).tolist() == [10] * 9
    frames = torch.cat(train).double()
    torch.testing.assert_close(frames.mean(0), torch.zeros(12, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(frames.std(0, unbiased=False), torch.ones(12, dtype=torch.float64), atol=1e-6, rtol=0)
    # every split is the file's values, (x - mean) / std with the training split's mean and std, in the file's order
    raw_train = [torch.from_numpy(x.T) for x in aeon_files["train"][0]]
    speakers = torch.tensor(aeon_files["train"][1].astype(np.int64)) - 1
    used = []
    for inputs, targets in ((train, train_y), (val, val_y)):
        rows = [next(i for i, raw in enumerate(raw_train) if raw.shape == x.shape and torch.allclose(
            (raw - module.feature_mean.double()) / module.feature_std.double(), x.double(), atol=1e-5)) for x in inputs]
        assert rows == sorted(rows) and torch.equal(targets, speakers[rows])
        used += rows
    assert sorted(used) == list(range(270))  # train and val: disjoint, every training utterance once
    for x, raw in zip(test, aeon_files["test"][0]):
        torch.testing.assert_close(x * module.feature_std + module.feature_mean, torch.from_numpy(raw.T).float(),
                                   atol=1e-5, rtol=1e-5)
    assert torch.equal(test_y, torch.tensor(aeon_files["test"][1].astype(np.int64)) - 1)
    assert test[0].abs().mean() < 2  # and the test split is on the training split's scale


def test_the_seed_draws_another_validation_split_and_the_same_seed_the_same(aeon_files):
    first, again, other = (JapaneseVowels(seed=seed) for seed in (0, 0, 1))
    for module in (first, again, other):
        module.setup()
    assert all(torch.equal(a, b) for a, b in zip(first.splits["val"][0], again.splits["val"][0]))
    assert [len(x) for x in first.splits["val"][0]] != [len(x) for x in other.splits["val"][0]]


def test_batches_are_padded_with_the_lengths(aeon_files):
    module = JapaneseVowels(batch_size=16)
    inputs, targets, lengths = unpack_batch(next(iter(module.val_dataloader())))
    assert inputs.shape == (16, int(lengths.max()), 12) and targets.shape == (16,) and lengths.dtype == torch.int64
    for b, length in enumerate(lengths.tolist()):
        assert not inputs[b, length:].any() and inputs[b, length - 1].any()
    assert int(lengths[0]) == max(len(x) for x in module.splits["val"][0])  # evaluation: longest first


def test_a_bad_val_size_is_refused_naming_what_is_allowed(aeon_files):
    for value in (8, 262, 45.0, True):
        with pytest.raises(ConfigError) as error:
            JapaneseVowels(val_size=value)
        assert str(error.value) == (f"val_size={value!r} is not allowed: an integer from 9 to 261 (of the 270 "
                                    f"training utterances, at least one per speaker in val and in train)")


def test_without_aeon_the_launch_says_which_extra_to_install(monkeypatch, empty_cwd, capsys):
    monkeypatch.setitem(sys.modules, "aeon", None)  # as if not installed: find_spec gives None, import fails
    load.cache_clear()
    with pytest.raises(DataError) as error:
        JapaneseVowels()
    assert str(error.value) == INSTALL == \
        "data=japanese_vowels needs the optional package aeon: pip install 'rnnbench[vowels]'"
    code = main(["train", "data=japanese_vowels"])
    out, err = capsys.readouterr()
    assert (code, err) == (2, f"rnnbench: error: {INSTALL}\n") and "Traceback" not in out
    assert list(empty_cwd.iterdir()) == []


def test_the_launch_refuses_a_bad_val_size_before_any_job(aeon_files, empty_cwd, capsys):
    code = main(["train", "data=japanese_vowels", "data.val_size=300"])
    out, err = capsys.readouterr()
    assert_refused(code, out, err, "data.val_size", empty_cwd)
    assert "an integer from 9 to 261" in err


def mean_loss(module: SequenceTaskModule, loader) -> float:
    training = module.training
    with torch.no_grad():
        losses = []
        for batch in loader:
            inputs, targets, lengths = unpack_batch(batch)
            losses.append(module.task.compute_loss(module.eval()(inputs, lengths), targets, reduction="sum").item())
    module.train(training)
    return sum(losses) / len(loader.sampler.lengths)


def test_a_short_training_run_learns_the_speakers(aeon_files, compose_config):
    cfg = compose_config("data=japanese_vowels", "model.cell=gru", "model.hidden_size=32", "optim.lr=0.01",
                         "threads=1")
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule = build(cfg.data, "data")
    datamodule.setup()
    module = SequenceTaskModule(build(cfg.model, "model", task=datamodule.task), instantiate(cfg.optim))
    trainer = pl.Trainer(max_steps=60, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, accelerator="cpu")
    before = mean_loss(module, datamodule.val_dataloader())
    trainer.fit(module, datamodule=datamodule)
    after = mean_loss(module, datamodule.val_dataloader())
    trainer.test(module, datamodule=datamodule, verbose=False)
    accuracy = float(trainer.callback_metrics["test/accuracy"])
    assert before == pytest.approx(math.log(9), abs=0.3) and after < 0.5 * before, (before, after)
    assert accuracy > 0.8, accuracy  # far above chance (1/9) after 60 steps of 32 utterances (0.957 here)
