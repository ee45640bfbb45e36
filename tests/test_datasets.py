"""Every dataset conf/data ships, tested alike (a new one is covered without editing this file): its splits are what
its task says they are, a model built for the task reads them, and the same seed builds the same data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rnnbench.config import config_dir
from rnnbench.data.base import unpack_batch
from rnnbench.models import SequenceModel

from conftest import REPO, SHARED_TEXT, choice_names

SHARED = REPO.parent / "shared" / "data"
SMALL = {"num_train": 64, "num_val": 16, "num_test": 16}  # for the generated tasks that take them


def data_module(name: str, seed: int = 0):
    node = OmegaConf.load(config_dir() / "data" / f"{name}.yaml")
    node.seed = seed
    for key, value in SMALL.items():
        if key in node:
            node[key] = value
    if node._target_.endswith("PolyphonicMusic"):
        node.path = str(SHARED / "polyphonic" / node.file)
    elif node._target_.endswith("TimeMachine"):
        node.path = str(SHARED_TEXT)
    if "path" in node and node.path is not None and not Path(node.path).exists():
        pytest.skip(f"the shared copy for data={name} is not at {node.path}")
    return instantiate(node, _convert_="all")


@pytest.fixture(scope="module", params=choice_names("data"))
def built(request):
    module = data_module(request.param)
    module.setup()
    return request.param, module


def test_the_splits_are_what_the_task_says(built):
    name, module = built
    task = module.task
    assert task.name == name and set(module.splits) == {"train", "val", "test"}
    if module.split_samples is not None:
        assert {split: len(module.splits[split][0]) for split in module.splits} == module.split_samples
    for split in ("train", "val", "test"):
        dataset, batches = module.batches(split, shuffle=False)
        inputs, targets, lengths = unpack_batch(dataset[next(iter(batches))])
        steps = inputs.shape[1]
        assert steps <= task.seq_len
        assert lengths is None or (lengths.max() == steps and lengths.min() >= 1)
        if task.input_kind == "tokens":
            assert inputs.dtype == torch.long and 0 <= inputs.min() and inputs.max() < task.input_size
        else:
            assert inputs.dtype == torch.float32 and inputs.shape[2] == task.input_size
            assert torch.isfinite(inputs).all()
        if task.per_step:
            assert targets.shape[:2] == inputs.shape[:2]
        else:
            assert targets.shape == (len(inputs),)
        if task.loss == "cross_entropy":
            assert targets.dtype == torch.long and 0 <= targets.min() and targets.max() < task.output_size


def test_a_model_for_the_task_reads_a_batch_and_scores_a_finite_loss(built):
    _, module = built
    task = module.task
    inputs, targets, lengths = unpack_batch(next(iter(module.train_dataloader())))
    model = SequenceModel(task, cell="gru", hidden_size=8)
    loss = task.compute_loss(model(inputs, lengths), targets, lengths=lengths)
    assert torch.isfinite(loss) and loss > 0
    assert task.baseline_loss > 0 and task.metric_mode in ("min", "max")


def test_the_same_seed_builds_the_same_data(built):
    name, module = built
    again = data_module(name)
    again.setup()
    for split in ("train", "val", "test"):
        for ours, theirs in zip(module.splits[split], again.splits[split]):
            if isinstance(ours, list):
                assert len(ours) == len(theirs) and all(torch.equal(a, b) for a, b in zip(ours, theirs))
            else:
                assert torch.equal(ours, theirs)
