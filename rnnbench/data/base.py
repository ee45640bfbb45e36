"""A Lightning data module that serves whole batches from in-memory tensors."""

from __future__ import annotations

from abc import ABC, abstractmethod

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from rnnbench.data.task import Task
from rnnbench.errors import require_int

Split = tuple[Tensor, Tensor]


class _TensorBatches(Dataset):
    """Indexed by a list of sample indices, returns the whole batch with one gather per tensor.

    A plain ``TensorDataset`` pays a Python call and a collate per sample; RNN benchmarks are full
    of small models where that shows in the step time.
    """

    def __init__(self, inputs: Tensor, targets: Tensor):
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, indices: list[int]) -> Split:
        index = torch.as_tensor(indices)
        return self.inputs[index], self.targets[index]


class InMemoryDataModule(pl.LightningDataModule, ABC):
    """Base of every dataset: subclasses describe their :attr:`task` and build their splits.

    Args:
        batch_size: samples per batch, for every split.
        seed: seeds data generation, splitting and the training shuffle; the same seed gives the
            same batches in the same order.
    """

    def __init__(self, batch_size: int, seed: int):
        super().__init__()
        self.batch_size = require_int(batch_size, "batch_size", 1)
        self.seed = require_int(seed, "seed", 0)
        self.splits: dict[str, Split] = {}

    @property
    @abstractmethod
    def task(self) -> Task:
        """What this dataset means; known from the constructor's arguments, before any data is built."""

    @abstractmethod
    def build_splits(self) -> dict[str, Split]:
        """Return disjoint ``train``, ``val`` and ``test`` splits, each (inputs, targets)."""

    def generator(self, offset: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + offset)

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits = self.build_splits()

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        dataset = _TensorBatches(*self.splits[split])
        order = RandomSampler(dataset, generator=self.generator(1)) if shuffle else SequentialSampler(dataset)
        # batch_size=None: the sampler yields whole index lists and the dataset gathers them.
        return DataLoader(dataset, sampler=BatchSampler(order, self.batch_size, drop_last=False), batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


def split_sizes(num_train: int, num_val: int, num_test: int) -> tuple[int, int, int]:
    return (require_int(num_train, "num_train", 1), require_int(num_val, "num_val", 1),
            require_int(num_test, "num_test", 1))


def partition(inputs: Tensor, targets: Tensor, sizes: tuple[int, int, int]) -> dict[str, Split]:
    """Cut one generated block into consecutive, hence disjoint, train/val/test splits."""
    bounds = torch.tensor((0, *sizes)).cumsum(0).tolist()
    return {name: (inputs[lo:hi], targets[lo:hi])
            for name, lo, hi in zip(("train", "val", "test"), bounds, bounds[1:])}
