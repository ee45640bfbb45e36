"""A Lightning data module that serves whole batches from in-memory tensors."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset, Sampler

from rnnbench.data.task import Task
from rnnbench.errors import SEED_LIMIT, ConfigError, defaults_of, require, require_fits, require_int

Split = tuple[Tensor, Tensor]
# variable-length data: a list of (T_i, ...) sequences, and per-step target sequences or one tensor of targets
SequenceSplit = tuple[list[Tensor], list[Tensor] | Tensor]


Batch = tuple[Tensor, ...]  # (inputs, targets), or (inputs, targets, lengths) for variable-length data


def unpack_batch(batch: Batch) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(inputs, targets, lengths)`` of a batch; ``lengths`` (B,) int64, or None where every sequence of the batch
    has all its steps (fixed-length data)."""
    inputs, targets, *rest = batch
    return inputs, targets, rest[0] if rest else None


def first_samples(batch: Batch, count: int) -> Batch:
    """The first ``count`` samples of ``batch``, cut to the longest sequence kept (variable-length data)."""
    inputs, targets, lengths = unpack_batch(batch)
    if lengths is None:
        return inputs[:count], targets[:count]
    lengths = lengths[:count]
    steps = int(lengths.max())
    per_step = targets.dim() > 1 and targets.shape[1] == inputs.shape[1]
    return inputs[:count, :steps], targets[:count, :steps] if per_step else targets[:count], lengths


class _TensorBatches(Dataset):
    """Indexed by a list of sample indices, returns the whole batch with one gather per tensor.

    A plain ``TensorDataset`` pays a Python call and a collate per sample; RNN benchmarks are full
    of small models where that shows in the step time.
    """

    def __init__(self, inputs: Tensor, targets: Tensor):
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, indices: list[int]) -> Batch:
        index = torch.as_tensor(indices)
        return self.inputs[index], self.targets[index]


class _SequenceBatches(Dataset):
    """Variable-length sequences: indexed by a list of sample indices, returns ``(inputs, targets, lengths)``,
    the batch padded with zeros to its longest sequence.

    Args:
        inputs: one (T_i, ...) tensor per sequence.
        targets: one (T_i, ...) tensor per sequence (per-step targets), or one (N, ...) tensor (once per sequence).
        dtype: what the padded inputs and per-step targets are converted to (the splits may keep a smaller type).
    """

    def __init__(self, inputs: list[Tensor], targets: list[Tensor] | Tensor, dtype: torch.dtype = torch.float32):
        self.inputs, self.targets, self.dtype = inputs, targets, dtype
        self.lengths = torch.tensor([len(sequence) for sequence in inputs], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, indices: list[int]) -> Batch:
        index = torch.as_tensor(indices)
        inputs = pad_sequence([self.inputs[i] for i in indices], batch_first=True).to(self.dtype)
        if isinstance(self.targets, Tensor):
            targets = self.targets[index]
        else:
            targets = pad_sequence([self.targets[i] for i in indices], batch_first=True).to(self.dtype)
        return inputs, targets, self.lengths[index]


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

    def epoch(self) -> list[list[int]]:
        """One epoch's batches, in order (each call draws the next epoch's from the generator)."""
        order = self._order()
        return [order[batch * self.batch_size:(batch + 1) * self.batch_size] for batch in range(len(self))]

    def __iter__(self) -> Iterator[list[int]]:
        while self._skip >= len(self):  # whole epochs already served: draw their orders to advance the generator
            self.epoch()
            self._skip -= len(self)
        start, self._skip = self._skip, 0
        yield from self.epoch()[start:]


class LengthBucketedBatches(ResumableBatches):
    """Batches of sequences of similar length, so that little of a padded batch is padding, in a seeded order
    that a resumed run continues exactly (:meth:`ResumableBatches.skip`).

    With a generator (training), each epoch draws a random permutation, cuts it into pools of ``pool`` batches,
    sorts each pool by length (longest first), cuts it into batches and serves all the epoch's batches in a
    second random order: every batch is a random draw of similar lengths, in a random order of lengths (the
    "sortish" bucketing of torchtext's ``BucketIterator``). Without one (evaluation), the batches are cut from
    the whole split sorted by length, longest first.

    Args:
        lengths: (N,) each sequence's number of steps.
        batch_size: sequences per batch (the last of each pool may be smaller).
        generator: the training shuffle's generator; None for a fixed order.
        pool: batches per sorted pool.
    """

    def __init__(self, lengths: Tensor, batch_size: int, generator: torch.Generator | None = None, pool: int = 50):
        super().__init__(len(lengths), batch_size, generator)
        self.lengths, self.pool = lengths, pool

    def epoch(self) -> list[list[int]]:
        if self.generator is None:
            return self._cut(torch.arange(self.size))
        order = torch.randperm(self.size, generator=self.generator)
        span = self.pool * self.batch_size
        batches = [batch for start in range(0, self.size, span) for batch in self._cut(order[start:start + span])]
        return [batches[i] for i in torch.randperm(len(batches), generator=self.generator).tolist()]

    def _cut(self, indices: Tensor) -> list[list[int]]:
        """``indices`` sorted by length, longest first (ties in the given order), cut into batches."""
        ordered = indices[torch.sort(self.lengths[indices], descending=True, stable=True).indices].tolist()
        return [ordered[i:i + self.batch_size] for i in range(0, len(ordered), self.batch_size)]


def padded_steps(lengths: Tensor, batches: list[list[int]]) -> dict[str, int]:
    """``processed`` (each batch's size times its longest length, summed) and ``useful`` (the sequences' own
    steps) of ``batches`` of sequences of ``lengths``."""
    return {"processed": sum(len(b) * int(lengths[b].max()) for b in batches),
            "useful": sum(int(lengths[b].sum()) for b in batches)}


class InMemoryDataModule(pl.LightningDataModule, ABC):
    """Base of every dataset: subclasses describe their :attr:`task` and build their splits.

    Args:
        batch_size: samples per batch, for every split.
        seed: seeds data generation, splitting and the training shuffle; the same seed gives the
            same batches in the same order.
    """

    lengths_generated: ClassVar[bool] = False  # True: the data can be generated at any length (test_seq_len)

    def __init__(self, batch_size: int, seed: int):
        super().__init__()
        self.batch_size = require_int(batch_size, "batch_size", 1)
        self.seed = require_int(seed, "seed", 0, SEED_LIMIT)
        self.splits: dict[str, Split | SequenceSplit] = {}
        self.resume_batches = 0  # training batches a resumed run had served (from its checkpoint)
        self.test_lengths: tuple[int, ...] = ()  # data.test_seq_len: more lengths the test split is generated at
        self._length_variants: dict[int, InMemoryDataModule] = {}

    def set_test_lengths(self, test_seq_len: Sequence[int] | None, shortest: int) -> None:
        """Check and keep ``data.test_seq_len``: None, or a non-empty list of distinct integers >= ``shortest``,
        each another length (``seq_len``) the trained model is tested at (:meth:`at_length`); each its own
        test split ``test@<T>``, logged as ``test@<T>/loss`` and ``test@<T>/<metric>``."""
        if test_seq_len is None:
            return
        allowed = f"a non-empty list of distinct integers >= {shortest} (lengths to test at, e.g. [100,200])"
        values = list(test_seq_len) if isinstance(test_seq_len, Sequence) and not isinstance(test_seq_len, str) \
            else None
        require(bool(values), "test_seq_len", test_seq_len, allowed)
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int) or value < shortest:
                raise ConfigError("test_seq_len", values, allowed)
        require(len(set(values)) == len(values), "test_seq_len", values, allowed)
        self.test_lengths = tuple(values)

    def at_length(self, length: int) -> InMemoryDataModule:
        """The same data at another ``seq_len`` (only its test split is read): for data modules that set
        :attr:`lengths_generated`."""
        raise NotImplementedError(f"{type(self).__name__} cannot generate other lengths")

    @property
    def test_tasks(self) -> dict[str, Task]:
        """Every test split's name and task: ``test``, then ``test@<T>`` for each length of ``data.test_seq_len``
        (a task of another length: its ``seq_len``, its metric's steps and its baseline are that length's)."""
        return {"test": self.task, **{f"test@{length}": self._variant(length).task for length in self.test_lengths}}

    def _variant(self, length: int) -> InMemoryDataModule:
        if length not in self._length_variants:
            self._length_variants[length] = self.at_length(length)
        return self._length_variants[length]

    @property
    @abstractmethod
    def task(self) -> Task:
        """What this dataset means; known from the constructor's arguments, before any data is built."""

    @abstractmethod
    def build_splits(self) -> dict[str, Split | SequenceSplit]:
        """Return disjoint ``train``, ``val`` and ``test`` splits, each (inputs, targets): tensors with one length
        for every sample, or (variable-length data) a list of (T_i, ...) sequences and the per-step targets as
        such a list (or one tensor of per-sequence targets)."""

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

    def batches(self, split: str, shuffle: bool) -> tuple[Dataset, ResumableBatches]:
        """The dataset of a split and the sampler of its batches: a fixed-length split (tensors) as one
        shuffled or ordered sequence of samples, a variable-length one (lists of sequences) in batches of
        similar length (:class:`LengthBucketedBatches`)."""
        self.setup()
        inputs, targets = self.splits[split]
        generator = self.generator(1) if shuffle else None
        if isinstance(inputs, list):
            dataset = _SequenceBatches(inputs, targets)
            return dataset, LengthBucketedBatches(dataset.lengths, self.batch_size, generator)
        return _TensorBatches(inputs, targets), ResumableBatches(len(inputs), self.batch_size, generator)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset, batches = self.batches(split, shuffle)
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

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        """The test split's loader; with ``data.test_seq_len``, a list: that one, then one per length, in the order
        of :attr:`test_tasks`."""
        if not self.test_lengths:
            return self._loader("test", shuffle=False)
        return [self._loader("test", shuffle=False),
                *(self._variant(length)._loader("test", shuffle=False) for length in self.test_lengths)]


def step_permutation(steps: int, seed: int) -> Tensor:
    """(steps,) int64: one fixed permutation of a sequence's steps, the same for every sample and split, drawn
    from ``seed`` alone (the pMNIST protocol of Le et al. 2015: ``inputs[:, step_permutation(T, seed)]``)."""
    return torch.randperm(steps, generator=torch.Generator().manual_seed(seed))


def split_sizes(num_train: int, num_val: int, num_test: int) -> tuple[int, int, int]:
    return (require_int(num_train, "num_train", 1), require_int(num_val, "num_val", 1),
            require_int(num_test, "num_test", 1))


def partition(inputs: Tensor, targets: Tensor, sizes: tuple[int, int, int]) -> dict[str, Split]:
    """Cut one generated block into consecutive, hence disjoint, train/val/test splits."""
    bounds = torch.tensor((0, *sizes)).cumsum(0).tolist()
    return {name: (inputs[lo:hi], targets[lo:hi])
            for name, lo, hi in zip(("train", "val", "test"), bounds, bounds[1:])}
