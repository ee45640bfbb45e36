"""Sequence classification on scikit-learn's bundled 8x8 handwritten digits (real data, no download)."""

from __future__ import annotations

import math

import numpy as np
import torch

from rnnbench.data.base import InMemoryDataModule, Split
from rnnbench.data.task import Task
from rnnbench.errors import require

LAYOUTS = {"rows": (8, 8), "pixels": (64, 1)}  # name -> (steps, features per step)
SAMPLES, PIXELS = 1797, 64  # scikit-learn's digits


class Digits(InMemoryDataModule):
    """1,797 grey-level 8x8 images of digits 0-9, scaled to [0, 1], read as a sequence.

    ``layout="rows"`` reads the 8 rows as 8 steps of 8 features, ``"pixels"`` the 64 pixels as 64
    steps of 1 feature (a small sequential-MNIST). Inputs (B, T, F) float, targets (B,) int64 classes.
    The stratified split gives ``val_fraction`` and ``test_fraction`` of every class to val and test.
    """

    def __init__(self, layout: str = "rows", val_fraction: float = 0.15, test_fraction: float = 0.15,
                 batch_size: int = 64, seed: int = 0):
        super().__init__(batch_size, seed)
        require(layout in LAYOUTS, "layout", layout, f"one of {', '.join(LAYOUTS)}")
        for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            require(isinstance(fraction, float) and 0 < fraction < 0.5, name, fraction, "a fraction in (0, 0.5)")
        self.layout, self.fractions = layout, (val_fraction, test_fraction)

    @property
    def split_samples(self) -> dict[str, int]:
        """What ``build_splits``' two ``train_test_split`` calls give (scikit-learn rounds each test share up)."""
        val_fraction, test_fraction = self.fractions
        test = math.ceil(test_fraction * SAMPLES)
        val = math.ceil(val_fraction / (1 - test_fraction) * (SAMPLES - test))
        return {"train": SAMPLES - test - val, "val": val, "test": test}

    def memory_bytes(self) -> int:
        """scikit-learn's float64 images and their float32 copy."""
        return SAMPLES * PIXELS * 12

    @property
    def task(self) -> Task:
        steps, features = LAYOUTS[self.layout]
        return Task(name="digits", input_kind="real", input_size=features, output_size=10, per_step=False,
                    loss="cross_entropy", metric="accuracy", causal=False, seq_len=steps,
                    baseline_loss=math.log(10), baseline_accuracy=0.1)  # 10 balanced classes

    def build_splits(self) -> dict[str, Split]:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        images, labels = load_digits(return_X_y=True)
        index = np.arange(len(labels))
        val_fraction, test_fraction = self.fractions
        rest, test = train_test_split(index, test_size=test_fraction, stratify=labels, random_state=self.seed)
        train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction),
                                      stratify=labels[rest], random_state=self.seed)
        inputs = torch.tensor(images / 16.0, dtype=torch.float32).reshape(-1, *LAYOUTS[self.layout])
        targets = torch.tensor(labels, dtype=torch.long)
        return {name: (inputs[rows], targets[rows])
                for name, rows in (("train", torch.tensor(train)), ("val", torch.tensor(val)),
                                   ("test", torch.tensor(test)))}

    def reference(self) -> dict:
        """A logistic regression on the same split (rnnbench.data.references)."""
        from rnnbench.data.references import logistic_regression

        self.setup()
        return logistic_regression(self.splits)
