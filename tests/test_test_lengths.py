"""data.test_seq_len: a model trained at one length, tested at others (length generalisation)."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rnnbench.config import config_dir
from rnnbench.data import AddingProblem, CopyMemory
from rnnbench.data.base import InMemoryDataModule
from rnnbench.errors import ConfigError
from rnnbench.job.module import SequenceTaskModule
from rnnbench.models import SequenceModel

from conftest import choice_names

GENERATORS = {"adding": AddingProblem, "copy": CopyMemory}


def test_the_configs_that_take_test_lengths_are_those_whose_data_generates_any_length():
    for choice in choice_names("data"):
        node = OmegaConf.load(config_dir() / "data" / f"{choice}.yaml")
        module_class = instantiate({"_target_": "hydra.utils.get_class", "path": node["_target_"]})
        assert ("test_seq_len" in node) == module_class.lengths_generated, choice


@pytest.mark.parametrize("name", list(GENERATORS))
def test_each_length_is_its_own_test_split_with_that_lengths_task(name):
    module = GENERATORS[name](seq_len=6, num_train=32, num_val=8, num_test=16, batch_size=8, test_seq_len=[12, 24])
    tasks = module.test_tasks
    assert list(tasks) == ["test", "test@12", "test@24"]
    for split, length in (("test", 6), ("test@12", 12), ("test@24", 24)):
        assert tasks[split] == GENERATORS[name](seq_len=length).task  # seq_len, metric steps, baseline at that length
    loaders = module.test_dataloader()
    assert len(loaders) == 3
    for loader, task in zip(loaders, tasks.values()):
        inputs, targets = next(iter(loader))
        assert inputs.shape[1] == task.seq_len and len(inputs) == 8
    assert sum(len(batch[0]) for batch in loaders[2]) == 16  # as many test samples as the training length's


def test_a_module_without_test_lengths_has_one_test_loader():
    module = AddingProblem(seq_len=6, num_train=8, num_val=8, num_test=8)
    assert list(module.test_tasks) == ["test"] and not isinstance(module.test_dataloader(), list)


@pytest.mark.parametrize("value", [[], [1], [10, 10], [2.5], "100", 100, [True]])
def test_bad_test_lengths_are_refused_in_one_line(value):
    with pytest.raises(ConfigError) as error:
        AddingProblem(seq_len=6, test_seq_len=value)
    assert error.value.setting == "test_seq_len"
    assert error.value.allowed.startswith("a non-empty list of distinct integers >= 2")


@pytest.mark.parametrize("name", list(GENERATORS))
def test_the_test_at_another_length_is_the_trained_models_metric_on_that_lengths_data(name):
    """After a short training, each ``test@<T>`` value the module logs equals the metric computed by hand on the
    data generated at T."""
    torch.manual_seed(0)
    data = GENERATORS[name](seq_len=5, num_train=64, num_val=16, num_test=40, batch_size=16, test_seq_len=[9, 15])
    model = SequenceModel(data.task, cell="gru", hidden_size=8)
    module = SequenceTaskModule(model, lambda p: torch.optim.Adam(p, lr=0.01), data.test_tasks)
    trainer = pl.Trainer(max_steps=10, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=1)
    trainer.fit(module, datamodule=data)
    trainer.test(module, datamodule=data, verbose=False)
    for length in (9, 15):
        variant = GENERATORS[name](seq_len=length, num_train=1, num_val=1, num_test=40, seed=data.seed)
        variant.setup()
        inputs, targets = variant.splits["test"]
        task = variant.task
        with torch.no_grad():
            predictions = model(inputs)
        metric = task.make_metric()
        metric.update(*task.metric_inputs(predictions, targets))
        logged = trainer.callback_metrics[f"test@{length}/{task.metric}"]
        assert float(logged) == pytest.approx(float(metric.compute()), rel=1e-5)
        assert float(trainer.callback_metrics[f"test@{length}/loss"]) == pytest.approx(
            float(task.compute_loss(predictions, targets)), rel=1e-5)
    assert "test/loss" in trainer.callback_metrics


def test_a_data_module_that_cannot_generate_lengths_says_so():
    assert not InMemoryDataModule.lengths_generated
    with pytest.raises(NotImplementedError):
        InMemoryDataModule.at_length(object(), 10)  # type: ignore[arg-type]
