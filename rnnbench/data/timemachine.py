"""d2l's character-level language model on H. G. Wells' *The Time Machine*."""

from __future__ import annotations

import math
import logging
import re
import string
from pathlib import Path

import torch

from rnnbench.data.base import InMemoryDataModule, Split, split_sizes
from rnnbench.data.files import cache_path, cached_or_downloaded
from rnnbench.data.task import Task
from rnnbench.errors import ConfigError, DataError, defaults_of, require, require_int

log = logging.getLogger(__name__)

D2L_URL = "http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt"
D2L_SHA256 = "8424dbd9532ac81f7e5f0b6add90e6952baea29158309d7d1bf3884f4e12c516"
D2L_CHARACTERS = 173_428  # the preprocessed length of the file with D2L_SHA256
COUNTED_BYTES = 64 << 20  # a local file up to this size is counted when the data module is built
WINDOW_COUNTS = ("num_train", "num_val", "num_test")
# d2l's Vocab sorts its tokens, so ' ' < '<unk>' < 'a' ... 'z'; d2l's preprocessing leaves no unknowns.
VOCABULARY = (" ", "<unk>", *string.ascii_lowercase)
_INDEX = {token: i for i, token in enumerate(VOCABULARY)}


def preprocess(text: str) -> str:
    """d2l's cleaning: every run of non-letters becomes one space, then lower case."""
    return re.sub("[^A-Za-z]+", " ", text).lower()


def encode(text: str) -> torch.Tensor:
    """Token ids (N,) int64 of the preprocessed text, ``<unk>`` for anything outside the vocabulary."""
    unknown = _INDEX["<unk>"]
    return torch.tensor([_INDEX.get(ch, unknown) for ch in preprocess(text)], dtype=torch.long)


def check_text_file(path: Path, setting: str) -> None:
    """Refuse a path that does not exist or does not hold UTF-8 text."""
    if not path.is_file():
        raise ConfigError(setting, str(path), "an existing text file")
    head = path.read_bytes()[: 1 << 16]
    try:
        head.decode("utf-8")
        is_text = bool(head.strip()) and b"\x00" not in head
    except UnicodeDecodeError as error:  # a multi-byte character cut at the 64 KiB boundary is still text
        is_text = error.start >= len(head) - 3 and b"\x00" not in head
    if not is_text:
        raise ConfigError(setting, str(path), "a non-empty UTF-8 text file")


class TimeMachine(InMemoryDataModule):
    """Next-character prediction, as in d2l.ai (chapter 9): vocabulary of 28 (space, ``<unk>``, a-z).

    The preprocessed text is cut into three consecutive, disjoint stretches; each yields windows of
    ``seq_len`` + 1 characters sliding by one (d2l's ``TimeMachine`` dataset), the first ``seq_len``
    as inputs (B, T) int64 and the last ``seq_len`` as targets (B, T) int64.
    ``num_train`` / ``num_val`` / ``num_test`` count windows (d2l: 10,000 train, 5,000 val).

    The text comes from ``path`` when given, else ``cache_dir``/timemachine.txt, else it is
    downloaded from ``url`` as the module is built, and kept only if its SHA-256 equals ``sha256``.
    """

    def __init__(self, seq_len: int = 32, num_train: int = 10_000, num_val: int = 5_000, num_test: int = 5_000,
                 batch_size: int = 1024, seed: int = 0, path: str | None = None,
                 cache_dir: str | None = None, url: str = D2L_URL, sha256: str = D2L_SHA256):
        super().__init__(batch_size, seed)
        self.seq_len = require_int(seq_len, "seq_len", 1)
        self.sizes = split_sizes(num_train, num_val, num_test)
        require(path is None or isinstance(path, str), "path", path, "null (the cache, else a download) or the "
                                                                     "path of a local text file")
        require(isinstance(url, str) and url != "", "url", url, "a non-empty string")
        require(isinstance(sha256, str) and len(sha256) == 64 and all(c in string.hexdigits for c in sha256),
                "sha256", sha256, "64 hexadecimal digits (the SHA-256 of the file at url)")
        self.path = None if path is None else Path(path).expanduser().resolve()
        if self.path is not None:
            check_text_file(self.path, "path")
        self.cache_file = cache_path(cache_dir, "timemachine.txt")
        self.url, self.sha256 = url, sha256
        self.require_long_enough()
        self.require_memory(seq_len=self.seq_len, **dict(zip(WINDOW_COUNTS, self.sizes)))
        # fetched now, as the launch path validates: once before any job, and refused in one line when offline
        self.text_path = self.path or cached_or_downloaded(self.cache_file, self.url, self.sha256,
                                                           "The Time Machine (timemachine.txt)")

    @property
    def split_samples(self) -> dict[str, int]:
        return dict(zip(("train", "val", "test"), self.sizes))

    def memory_bytes(self) -> int:
        """The windows' inputs and targets, int64 each: 16 bytes per window and step."""
        return 16 * sum(self.sizes) * self.seq_len

    def text_length(self) -> int | None:
        """The preprocessed text's length, where known without a download: d2l's file (known by its sha256), or
        ``path`` counted; for a ``path`` over 64 MiB its size in bytes, an upper bound. None: not known."""
        if self.path is None:
            return D2L_CHARACTERS if self.sha256 == D2L_SHA256 else None
        size = self.path.stat().st_size
        if size > COUNTED_BYTES:
            return size
        return len(preprocess(self.path.read_text(encoding="utf-8", errors="replace")))

    def require_long_enough(self) -> None:
        """Refuse, before anything is read into tensors, windows the text cannot hold: the three stretches need
        ``num_train + num_val + num_test + 3 * seq_len`` characters. Names ``seq_len`` if a shorter one would do,
        else ``path`` (a text of one's own) or the window count furthest above its default."""
        available, windows = self.text_length(), sum(self.sizes)
        if available is None or available >= windows + 3 * self.seq_len:
            return
        text = f"the text at {self.path}" if self.path is not None else "d2l's text"
        if available >= windows + 3:
            raise ConfigError("seq_len", self.seq_len, f"an integer in [1, {(available - windows) // 3}]: {text} "
                                                       f"holds {available} characters, for {windows} windows "
                                                       f"(num_train + num_val + num_test)")
        needed = f"{windows + 3 * self.seq_len} characters after preprocessing for num_train + num_val + " \
                 f"num_test = {windows} windows of seq_len={self.seq_len}"
        if self.path is not None:
            raise ConfigError("path", str(self.path), f"a text of at least {needed} (it holds {available})")
        defaults = defaults_of(TimeMachine.__init__)
        name, value = max(zip(WINDOW_COUNTS, self.sizes), key=lambda item: item[1] / defaults[item[0]])
        raise ConfigError(name, value, f"a smaller count: {text} holds {available} characters, {needed} are needed")

    @property
    def task(self) -> Task:
        return Task(name="timemachine", input_kind="tokens", input_size=len(VOCABULARY),
                    output_size=len(VOCABULARY), per_step=True, loss="cross_entropy", metric="perplexity",
                    causal=True, seq_len=self.seq_len, baseline_loss=math.log(len(VOCABULARY)))

    def build_splits(self) -> dict[str, Split]:
        corpus = encode(self.text_path.read_text(encoding="utf-8", errors="replace"))
        needed = sum(self.sizes) + 3 * self.seq_len
        if len(corpus) < needed:
            raise DataError(f"data.path holds {len(corpus)} characters after preprocessing; "
                            f"num_train + num_val + num_test windows of seq_len={self.seq_len} need {needed}")
        splits, start = {}, 0
        for name, windows in zip(("train", "val", "test"), self.sizes):
            stretch = corpus[start:start + windows + self.seq_len]
            start += windows + self.seq_len
            array = stretch.unfold(0, self.seq_len + 1, 1)
            splits[name] = (array[:, :-1].contiguous(), array[:, 1:].contiguous())
        return splits

    def reference(self) -> dict:
        """A smoothed character n-gram on the same windows (rnnbench.data.references)."""
        from rnnbench.data.references import character_ngram

        self.setup()
        return character_ngram(self.splits, len(VOCABULARY))
