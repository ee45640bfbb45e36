"""MNIST-1D (Greydanus and Kobak 2020/2024): ten digit templates in 40-step 1-D signals, generated offline."""

from __future__ import annotations

import math
import random

import numpy as np
import torch

from rnnbench.data.base import InMemoryDataModule, Split, step_permutation
from rnnbench.data.task import Task
from rnnbench.errors import SEED_LIMIT, require, require_int

STEPS, TRAIN, TEST, CLASSES = 40, 4000, 1000, 10  # the published set: get_dataset_args()'s defaults


class MNIST1D(InMemoryDataModule):
    """The published MNIST-1D set, regenerated offline by the ``mnist1d`` package:
    ``make_dataset(get_dataset_args())`` (5,000 signals of 40 steps, template padding, translation, shear,
    correlated and i.i.d. noise, seed 42) gives the authors' ``mnist1d_data.pkl`` to within 1e-15, with its
    4,000 / 1,000 train / test split.

    Inputs (B, 40, 1) float32 (the signal, about zero mean and unit variance), targets (B,) int64 digits 0-9.
    ``val_size`` signals of the 4,000 training ones, stratified by digit and drawn from ``seed``, are the
    validation split (the authors train on all 4,000 and have none), so a model here trains on 4,000 -
    ``val_size``. ``permute=true`` reads the 40 steps in one fixed order drawn from ``permutation_seed``, the
    same for every signal, split and seed: the README's "shuffle" row (Zhang et al. 2017's shuffled pixels),
    where the temporal structure a recurrent cell could use is gone.
    """

    def __init__(self, val_size: int = 400, permute: bool = False, permutation_seed: int = 0, batch_size: int = 100,
                 seed: int = 0):
        super().__init__(batch_size, seed)
        self.val_size = require_int(val_size, "val_size", CLASSES, TRAIN // 2)
        require(isinstance(permute, bool), "permute", permute, "true or false")
        self.permute = permute
        self.permutation_seed = require_int(permutation_seed, "permutation_seed", 0, SEED_LIMIT)

    @property
    def split_samples(self) -> dict[str, int]:
        return {"train": TRAIN - self.val_size, "val": self.val_size, "test": TEST}

    def memory_bytes(self) -> int:
        """The generated float64 signals and their float32 copy."""
        return (TRAIN + TEST) * STEPS * 12

    @property
    def task(self) -> Task:
        return Task(name="mnist1d", input_kind="real", input_size=1, output_size=CLASSES, per_step=False,
                    loss="cross_entropy", metric="accuracy", causal=False, seq_len=STEPS,
                    baseline_loss=math.log(CLASSES), baseline_accuracy=1 / CLASSES)  # balanced by construction

    def build_splits(self) -> dict[str, Split]:
        from mnist1d.data import get_dataset_args, make_dataset
        from sklearn.model_selection import train_test_split

        states = random.getstate(), np.random.get_state()
        try:
            data = make_dataset(get_dataset_args())
        finally:  # it seeds Python's and numpy's global generators (42): the run's own seeding stays as it was
            random.setstate(states[0])
            np.random.set_state(states[1])
        inputs = {name: torch.tensor(data[key], dtype=torch.float32)[..., None]
                  for name, key in (("train", "x"), ("test", "x_test"))}
        targets = {name: torch.tensor(data[key], dtype=torch.long) for name, key in (("train", "y"), ("test", "y_test"))}
        if self.permute:
            order = step_permutation(STEPS, self.permutation_seed)
            inputs = {name: values[:, order] for name, values in inputs.items()}
        train, val = train_test_split(np.arange(TRAIN), test_size=self.val_size, stratify=targets["train"].numpy(),
                                      random_state=self.seed)
        return {"train": (inputs["train"][train], targets["train"][train]),
                "val": (inputs["train"][val], targets["train"][val]),
                "test": (inputs["test"], targets["test"])}

    def reference(self) -> dict:
        """A logistic regression on the same split (rnnbench.data.references): the README's 32% row."""
        from rnnbench.data.references import logistic_regression

        self.setup()
        return logistic_regression(self.splits)
