"""The copy-memory task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): recall 10 symbols after a delay."""

from __future__ import annotations

import math

import torch

from rnnbench.data.base import InMemoryDataModule, Split, partition, split_sizes
from rnnbench.data.task import Task
from rnnbench.errors import require_int

BLANK, DELIMITER, NUM_SYMBOLS, RECALL = 0, 9, 8, 10


class CopyMemory(InMemoryDataModule):
    """Sequences of length T + 20 with T = ``seq_len``, as in Arjovsky et al. (2016):

    inputs (B, T + 20) int64: 10 symbols drawn from 1..8, then T - 1 blanks (0), the delimiter (9)
    and 10 more blanks; so the delimiter comes T steps after the last symbol.
    targets (B, T + 20) int64: blank everywhere except the last 10 steps, which hold the 10 symbols.

    Cross-entropy over all steps; the memoryless baseline (blanks, then uniform guesses over the 8
    symbols) scores 10 ln 8 / (T + 20). Accuracy is measured on the 10 recall steps.
    """

    lengths_generated = True  # data.test_seq_len: tested at other lengths too

    def __init__(self, seq_len: int = 20, num_train: int = 10_000, num_val: int = 1_000,
                 num_test: int = 1_000, batch_size: int = 64, seed: int = 0,
                 test_seq_len: list[int] | None = None):
        super().__init__(batch_size, seed)
        self.seq_len = require_int(seq_len, "seq_len", 1)
        self.sizes = split_sizes(num_train, num_val, num_test)
        self.require_memory(seq_len=self.seq_len, **dict(zip(("num_train", "num_val", "num_test"), self.sizes)))
        self.set_test_lengths(test_seq_len, shortest=1)

    def at_length(self, length: int) -> CopyMemory:
        """This data at ``seq_len=length``, its test split as large as this one's (the others of one sample)."""
        return CopyMemory(length, 1, 1, self.sizes[2], self.batch_size, self.seed)

    @property
    def split_samples(self) -> dict[str, int]:
        return dict(zip(("train", "val", "test"), self.sizes))

    def memory_bytes(self) -> int:
        """Inputs and targets, (N, T + 20) int64 each: 16 bytes per sample and step."""
        return 16 * sum(self.sizes) * (self.seq_len + 2 * RECALL)

    @property
    def task(self) -> Task:
        length = self.seq_len + 2 * RECALL
        return Task(name="copy", input_kind="tokens", input_size=DELIMITER + 1, output_size=NUM_SYMBOLS + 1,
                    per_step=True, loss="cross_entropy", metric="accuracy", causal=False, seq_len=length,
                    baseline_loss=RECALL * math.log(NUM_SYMBOLS) / length, metric_steps=(length - RECALL, length),
                    baseline_accuracy=1 / NUM_SYMBOLS)

    def build_splits(self) -> dict[str, Split]:
        n, length = sum(self.sizes), self.seq_len + 2 * RECALL
        symbols = torch.randint(1, NUM_SYMBOLS + 1, (n, RECALL), generator=self.generator())
        inputs = torch.full((n, length), BLANK, dtype=torch.long)
        inputs[:, :RECALL] = symbols
        inputs[:, length - RECALL - 1] = DELIMITER
        targets = torch.full((n, length), BLANK, dtype=torch.long)
        targets[:, -RECALL:] = symbols
        return partition(inputs, targets, self.sizes)
