"""data=mnist1d: the published MNIST-1D set, regenerated offline, split, and optionally read in a shuffled order."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rnnbench.data import MNIST1D
from rnnbench.data.base import step_permutation
from rnnbench.errors import ConfigError


@pytest.fixture(scope="module")
def published() -> dict:
    from mnist1d.data import get_dataset_args, make_dataset

    return make_dataset(get_dataset_args())


def test_the_published_set_is_regenerated_and_split(published):
    module = MNIST1D(val_size=400, seed=3)
    module.setup()
    splits = module.splits
    assert {name: len(split[0]) for name, split in splits.items()} == module.split_samples == \
        {"train": 3600, "val": 400, "test": 1000}
    assert splits["train"][0].shape[1:] == (40, 1) and splits["train"][0].dtype == torch.float32
    # the authors' numbers: 4,000 / 1,000 signals of 40 steps, roughly 400 of each digit in training
    assert published["x"].shape == (4000, 40) and published["x_test"].shape == (1000, 40)
    np.testing.assert_allclose(splits["test"][0][..., 0].numpy(), published["x_test"], rtol=0, atol=1e-6)
    assert splits["test"][1].tolist() == published["y_test"].tolist()
    # train and val partition the published training signals, stratified: val holds 10% of every digit (±1)
    together = torch.cat([splits["train"][0], splits["val"][0]])[..., 0].double().numpy()
    distances = ((together[:, None, :] - published["x"][None]) ** 2).sum(-1)  # (4000, 4000)
    match = distances.argmin(axis=1)
    assert distances.min(axis=1).max() < 1e-9 and len(set(match.tolist())) == 4000
    labels = torch.cat([splits["train"][1], splits["val"][1]]).numpy()
    assert (published["y"][match] == labels).all()
    counts = np.bincount(published["y"], minlength=10)
    assert np.all(np.abs(np.bincount(splits["val"][1].numpy(), minlength=10) - counts * 0.1) <= 1)


def test_another_seed_draws_another_validation_split_of_the_same_data():
    one, two = MNIST1D(seed=0), MNIST1D(seed=1)
    one.setup(), two.setup()
    assert not torch.equal(one.splits["val"][0], two.splits["val"][0])
    assert torch.equal(one.splits["test"][0], two.splits["test"][0])


def test_permute_reads_every_signal_in_one_fixed_order():
    plain, shuffled, other_seed = MNIST1D(), MNIST1D(permute=True, permutation_seed=5), MNIST1D(permute=True,
                                                                                                permutation_seed=5,
                                                                                                seed=2)
    for module in (plain, shuffled, other_seed):
        module.setup()
    order = step_permutation(40, 5)
    assert sorted(order.tolist()) == list(range(40)) and order.tolist() != list(range(40))
    for split in ("train", "val", "test"):
        torch.testing.assert_close(shuffled.splits[split][0], plain.splits[split][0][:, order], rtol=0, atol=0)
    assert torch.equal(shuffled.splits["test"][0], other_seed.splits["test"][0])  # the order is the data's, not the run's


def test_building_the_data_leaves_the_global_generators_as_the_run_seeded_them():
    random.seed(7)
    np.random.seed(7)
    expected = random.random(), np.random.rand()
    random.seed(7)
    np.random.seed(7)
    MNIST1D().setup()
    assert (random.random(), np.random.rand()) == expected


def test_the_task_is_ten_balanced_classes_read_once_per_sequence():
    task = MNIST1D().task
    assert (task.name, task.input_size, task.output_size, task.seq_len, task.per_step) == ("mnist1d", 1, 10, 40, False)
    assert task.baseline_accuracy == 0.1 and task.baseline_loss == pytest.approx(np.log(10))


@pytest.mark.parametrize("setting, value", [("val_size", 5), ("val_size", 3000), ("permute", "yes"),
                                            ("permutation_seed", -1)])
def test_bad_settings_are_refused_by_name(setting, value):
    with pytest.raises(ConfigError) as error:
        MNIST1D(**{setting: value})
    assert error.value.setting == setting
