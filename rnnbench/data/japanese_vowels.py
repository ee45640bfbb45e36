"""Japanese Vowels (Kudo, Toyama & Shimbo 1999): which of 9 male speakers uttered a vowel, from 12 LPC cepstrum
coefficients per frame, 7 to 29 frames per utterance. A small real variable-length classification set, as the UEA
multivariate archive (Bagnall et al. 2018) holds it: 270 training utterances (30 per speaker) and the standard
370 test ones (24 to 88 per speaker), shipped inside the ``aeon`` wheel (``pip install 'rnnbench[vowels]'``).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import numpy as np
import torch

from rnnbench.data.base import InMemoryDataModule, SequenceSplit
from rnnbench.data.task import Task
from rnnbench.errors import DataError, is_int_in, require

SPEAKERS, FEATURES = 9, 12
SEQUENCES = {"train": 270, "test": 370}  # as the UEA archive splits them
FILES = {"train": "JapaneseVowels_TRAIN.ts", "test": "JapaneseVowels_TEST.ts"}
INSTALL = "data=japanese_vowels needs the optional package aeon: pip install 'rnnbench[vowels]'"


def data_dir() -> Path:
    """Where the aeon wheel keeps the set's two .ts files, found without importing aeon (whose import pulls in
    numba and pandas); a one-line DataError where aeon is not installed."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(INSTALL)
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "JapaneseVowels"


@functools.lru_cache(maxsize=2)
def load(folder: str) -> dict[str, tuple[tuple[np.ndarray, ...], np.ndarray]]:
    """Each split's utterances, (T_i, 12) float64 arrays, and their speakers, (N,) int64 0-8, read with aeon's
    own .ts reader (``aeon.datasets.load_from_ts_file``: a list of (12, T_i) arrays for unequal lengths) and
    checked against the archive's sizes."""
    try:
        from aeon.datasets import load_from_ts_file
    except ImportError as error:  # aeon missing, or a version without the reader
        raise DataError(f"{INSTALL} (importing aeon.datasets.load_from_ts_file failed: {error})") from None
    splits = {}
    for split, file in FILES.items():
        path = Path(folder) / file
        if not path.is_file():
            raise DataError(f"{INSTALL}: aeon is installed but holds no {path}")
        series, labels = load_from_ts_file(str(path))
        sequences = tuple(np.asarray(x, dtype=np.float64).T for x in series)
        speakers = np.asarray(labels).astype(np.int64) - 1
        problems = [what for what, bad in (
            (f"{len(sequences)} utterances, expected {SEQUENCES[split]}", len(sequences) != SEQUENCES[split]),
            ("utterances that are not (T, 12) arrays", any(x.ndim != 2 or x.shape[1] != FEATURES for x in sequences)),
            ("values that are not finite", any(not np.isfinite(x).all() for x in sequences)),
            (f"speakers other than 1-{SPEAKERS}", not set(speakers.tolist()) <= set(range(SPEAKERS))))
                    if bad]
        if problems:
            raise DataError(f"{path} is not the JapaneseVowels set of the UEA archive: it holds {problems[0]}")
        splits[split] = (sequences, speakers)
    return splits


class JapaneseVowels(InMemoryDataModule):
    """Speaker identification from an utterance (``data=japanese_vowels``): inputs a list of (T_i, 12) float32
    sequences of 7-29 frames (batches padded to their longest, with the lengths), targets (N,) int64 speakers 0-8,
    predicted once from each sequence's last real step.

    ``val`` is ``val_size`` of the 270 training utterances, stratified by speaker (scikit-learn's
    ``train_test_split``, ``random_state=seed``); ``train`` the rest; ``test`` the standard 370. The features are
    standardised with the mean and standard deviation of each of the 12 coefficients over every frame of the
    ``train`` split (``val`` and ``test`` with the same statistics, so nothing is learned from them).

    Args:
        val_size: training utterances held out for validation, from 9 to 261 (each speaker on both sides); the
            default 45 is 5 per speaker, leaving 25 per speaker (225) to train on.
        batch_size: utterances per batch, batched by similar length.
        seed: seeds the validation draw and the training shuffle.
    """

    def __init__(self, val_size: int = 45, batch_size: int = 32, seed: int = 0):
        super().__init__(batch_size, seed)
        train = SEQUENCES["train"]
        require(is_int_in(val_size, SPEAKERS, train - SPEAKERS), "val_size", val_size,
                f"an integer from {SPEAKERS} to {train - SPEAKERS} (of the {train} training utterances, at least one "
                f"per speaker in val and in train)")
        self.val_size = val_size
        self.raw = load(str(data_dir()))
        self.feature_mean: torch.Tensor | None = None  # (12,) the standardisation, set by build_splits
        self.feature_std: torch.Tensor | None = None

    @property
    def split_samples(self) -> dict[str, int]:
        return {"train": SEQUENCES["train"] - self.val_size, "val": self.val_size, "test": SEQUENCES["test"]}

    def memory_bytes(self) -> int:
        """The float32 inputs: 48 bytes per frame."""
        return 4 * FEATURES * sum(len(x) for sequences, _ in self.raw.values() for x in sequences)

    @property
    def max_length(self) -> int:
        """The longest utterance of any split (29 frames)."""
        return max(len(x) for sequences, _ in self.raw.values() for x in sequences)

    @property
    def task(self) -> Task:
        return Task(name="japanese_vowels", input_kind="real", input_size=FEATURES, output_size=SPEAKERS,
                    per_step=False, loss="cross_entropy", metric="accuracy", causal=False, seq_len=self.max_length,
                    # the training set's speakers are balanced (30 each): chance is 1/9 (the test set's largest
                    # speaker is 88 of 370 utterances, 0.24, which a blind predictor cannot know)
                    baseline_loss=math.log(SPEAKERS), baseline_accuracy=1 / SPEAKERS)

    def build_splits(self) -> dict[str, SequenceSplit]:
        from sklearn.model_selection import train_test_split

        sequences, speakers = self.raw["train"]
        train, val = train_test_split(np.arange(len(speakers)), test_size=self.val_size, stratify=speakers,
                                      random_state=self.seed)
        rows = {"train": np.sort(train), "val": np.sort(val)}
        frames = np.concatenate([sequences[i] for i in rows["train"]])
        mean, std = frames.mean(axis=0), frames.std(axis=0)
        self.feature_mean, self.feature_std = torch.from_numpy(mean).float(), torch.from_numpy(std).float()

        def split(source: tuple[tuple[np.ndarray, ...], np.ndarray], rows: np.ndarray) -> SequenceSplit:
            inputs = [torch.from_numpy((source[0][i] - mean) / std).to(torch.float32) for i in rows]
            return inputs, torch.from_numpy(source[1][rows])

        test = self.raw["test"]
        return {"train": split(self.raw["train"], rows["train"]), "val": split(self.raw["train"], rows["val"]),
                "test": split(test, np.arange(len(test[1])))}
