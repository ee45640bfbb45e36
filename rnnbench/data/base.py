"""A Lightning data module that serves whole batches from in-memory tensors."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from rnnbench.data.task import Task
from rnnbench.errors import defaults_of, require_fits, require_int

Split = tuple[Tensor, Tensor]
SEED_LIMIT = 2**32 - 1  # the largest seed numpy, hence Lightning's seed_everything, accepts


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


class ResumableBatches(Sampler[list[int]]):
    """Batches of sample indices in exactly the order of ``BatchSampler(RandomSampler(data, generator=generator),
    batch_size, drop_last=False)`` (sequential without a generator), that can start anywhere: after
    :meth:`skip` ``(n)``, the next iteration begins where a run that had served ``n`` batches stopped, so a run resumed
    from a checkpoint sees the same batches in the same order as one never interrupted.
    """

    def __init__(self, size: int, batch_size: int, generator: torch.Generator | None = None):
        self.size, self.batch_size, self.generator = size, batch_size, generator
        self._skip = 0

    def __len__(self) -> int:
        return math.ceil(self.size / self.batch_size)

    def skip(self, batches: int) -> None:
        self._skip = batches

    def _order(self) -> list[int]:
        if self.generator is None:
            return list(range(self.size))
        order = torch.randperm(self.size, generator=self.generator).tolist()
        torch.randperm(self.size, generator=self.generator)  # RandomSampler draws a second (empty-sliced) one per epoch
        return order

    def __iter__(self) -> Iterator[list[int]]:
        while self._skip >= len(self):  # whole epochs already served: draw their orders to advance the generator
            self._order()
            self._skip -= len(self)
        start, self._skip = self._skip, 0
        order = self._order()
        for batch in range(start, len(self)):
            yield order[batch * self.batch_size:(batch + 1) * self.batch_size]


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
        self.seed = require_int(seed, "seed", 0, SEED_LIMIT)
        self.splits: dict[str, Split] = {}
        self.resume_batches = 0  # training batches a resumed run had served (from its checkpoint)

    @property
    @abstractmethod
    def task(self) -> Task:
        """What this dataset means; known from the constructor's arguments, before any data is built."""

    @abstractmethod
    def build_splits(self) -> dict[str, Split]:
        """Return disjoint ``train``, ``val`` and ``test`` splits, each (inputs, targets)."""

    @property
    def split_samples(self) -> dict[str, int] | None:
        """Samples of the ``train``, ``val`` and ``test`` splits, known from the constructor's arguments (None: not
        known before they are built)."""
        return None

    def memory_bytes(self) -> int:
        """A lower bound on the bytes the splits take once built, known before building them (0: not known)."""
        return 0

    def require_memory(self, **growing: int) -> None:
        """Refuse, before any data is built, splits that cannot fit in this machine's memory, naming the one of
        ``growing`` (constructor arguments the size grows with) furthest above its default."""
        defaults = defaults_of(type(self).__init__)
        require_fits(self.memory_bytes(), f"the {type(self).__name__} splits",
                     {name: (value, defaults.get(name)) for name, value in growing.items()})

    def generator(self, offset: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + offset)

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits = self.build_splits()

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        dataset = _TensorBatches(*self.splits[split])
        batches = ResumableBatches(len(dataset), self.batch_size, self.generator(1) if shuffle else None)
        if shuffle:
            batches.skip(self.resume_batches)
        # batch_size=None: the sampler yields whole index lists and the dataset gathers them.
        return DataLoader(dataset, sampler=batches, batch_size=None)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the data: the training batches served so far (one per optimizer step and
        accumulated batch), from which :class:`ResumableBatches` continues the same order."""
        trainer = self.trainer
        return {"train_batches": trainer.global_step * trainer.accumulate_grad_batches if trainer is not None else 0}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.resume_batches = int(state_dict.get("train_batches", 0))

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
