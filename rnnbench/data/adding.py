"""The adding problem (Hochreiter & Schmidhuber 1997): add the two marked values of a long sequence."""

from __future__ import annotations

import torch

from rnnbench.data.base import InMemoryDataModule, Split, partition, split_sizes
from rnnbench.data.task import Task
from rnnbench.errors import require_int


class AddingProblem(InMemoryDataModule):
    """Inputs (B, T, 2): channel 0 holds values U[0, 1], channel 1 a marker that is 1 at one step in
    the first half (t < T // 2) and one in the second half, 0 elsewhere. Target (B,): the sum of
    the two marked values. Predicting the constant 1 scores MSE 1/6 (the sum's variance).
    """

    lengths_generated = True  # data.test_seq_len: tested at other lengths too

    def __init__(self, seq_len: int = 50, num_train: int = 10_000, num_val: int = 1_000,
                 num_test: int = 1_000, batch_size: int = 64, seed: int = 0,
                 test_seq_len: list[int] | None = None):
        super().__init__(batch_size, seed)
        self.seq_len = require_int(seq_len, "seq_len", 2)
        self.sizes = split_sizes(num_train, num_val, num_test)
        self.require_memory(seq_len=self.seq_len, **dict(zip(("num_train", "num_val", "num_test"), self.sizes)))
        self.set_test_lengths(test_seq_len, shortest=2)

    def at_length(self, length: int) -> AddingProblem:
        """This data at ``seq_len=length``, its test split as large as this one's (the others of one sample)."""
        return AddingProblem(length, 1, 1, self.sizes[2], self.batch_size, self.seed)

    @property
    def split_samples(self) -> dict[str, int]:
        return dict(zip(("train", "val", "test"), self.sizes))

    def memory_bytes(self) -> int:
        """Values, markers and their (N, T, 2) stack, float32: 16 bytes per sample and step."""
        return 16 * sum(self.sizes) * self.seq_len

    @property
    def task(self) -> Task:
        return Task(name="adding", input_kind="real", input_size=2, output_size=1, per_step=False,
                    loss="mse", metric="mse", causal=False, seq_len=self.seq_len, baseline_loss=1 / 6)

    def build_splits(self) -> dict[str, Split]:
        n, steps, half = sum(self.sizes), self.seq_len, self.seq_len // 2
        g = self.generator()
        values = torch.rand(n, steps, generator=g)
        first = torch.randint(0, half, (n,), generator=g)
        second = torch.randint(half, steps, (n,), generator=g)
        markers = torch.zeros(n, steps)
        rows = torch.arange(n)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        targets = values[rows, first] + values[rows, second]
        return partition(torch.stack([values, markers], dim=-1), targets, self.sizes)
