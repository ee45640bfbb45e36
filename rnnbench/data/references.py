"""Reference models on a data module's own splits, the bar a recurrent model should be held to beside the
input-blind baseline: a logistic regression for ``digits``, a smoothed character n-gram for ``timemachine``.
Each is computed once per data setting and kept in the cache dir (``$RNNBENCH_CACHE`` or
``~/.cache/rnnbench``, ``references/<sha256 of the settings>.json``)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnbench.data.files import default_cache_dir
from rnnbench.record.schema import write_json_atomic

NGRAM_ORDERS = range(1, 7)


def cache_dir() -> Path:
    return Path(default_cache_dir()).expanduser() / "references"


def cached_reference(datamodule: Any, settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The data module's reference (``datamodule.reference()``), from the cache when these settings were seen."""
    compute = getattr(datamodule, "reference", None)
    if compute is None:
        return None
    # Not joblib.Memory: it keys on the function's source and pickles into its own tree; this cache is one readable
    # JSON per settings (tests/test_data.py pins it), kept across code changes, a damaged one read as a miss.
    key = hashlib.sha256(json.dumps({"class": type(datamodule).__name__, **settings}, sort_keys=True,
                                    default=str).encode()).hexdigest()
    path = cache_dir() / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    reference = compute()
    try:
        write_json_atomic(path, reference)
    except OSError:  # a read-only cache costs a recomputation, nothing else
        pass
    return reference


def logistic_regression(splits: Mapping[str, tuple[Any, Any]]) -> dict[str, Any]:
    """Multinomial logistic regression (scikit-learn, L2, C = 1) on the flattened inputs: val/test accuracy."""
    from sklearn.linear_model import LogisticRegression

    def arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
        inputs, targets = splits[split]
        return inputs.reshape(len(inputs), -1).numpy(), targets.numpy()

    model = LogisticRegression(max_iter=5000).fit(*arrays("train"))
    scores = {f"{split}/accuracy": float(model.score(*arrays(split))) for split in ("val", "test")}
    return {"name": "logistic regression (scikit-learn, L2, C=1) on the flattened inputs", **scores}


def _stretch(inputs: Any, targets: Any) -> np.ndarray:
    """The text a split's windows slide over: the first window and then each window's last target."""
    return np.concatenate([inputs[0].numpy(), targets[:, -1].numpy()]).astype(np.int64)


def _keys(chars: np.ndarray, vocabulary: int) -> np.ndarray:
    """Each row of ``chars`` (N, k) as one integer, base ``vocabulary``."""
    key = np.zeros(len(chars), dtype=np.int64)
    for column in range(chars.shape[1]):
        key = key * vocabulary + chars[:, column]
    return key


def ngram_perplexities(splits: Mapping[str, tuple[Any, Any]], vocabulary: int, order: int) -> dict[str, float]:
    """Add-one smoothed character n-gram of ``order`` counted on the train text, scored on val and test exactly
    as the model is: at every position of every window, from the window's own preceding characters (fewer than
    ``order - 1`` at a window's start, where the model has fewer too)."""
    text = _stretch(*splits["train"])
    counts = {}
    for length in range(order):  # context lengths 0 .. order - 1: the short ones serve window starts
        if len(text) <= length:
            continue
        contexts = np.lib.stride_tricks.sliding_window_view(text, length + 1)
        joint = _keys(contexts, vocabulary)
        context = joint // vocabulary
        counts[length] = (np.unique(joint, return_counts=True), np.unique(context, return_counts=True))

    def lookup(table: tuple[np.ndarray, np.ndarray], keys: np.ndarray) -> np.ndarray:
        values, numbers = table
        where = np.clip(np.searchsorted(values, keys), 0, max(len(values) - 1, 0))
        return np.where((len(values) > 0) & (values[where] == keys), numbers[where], 0)

    result = {}
    for split in ("val", "test"):
        inputs, targets = (t.numpy().astype(np.int64) for t in splits[split])
        total, count = 0.0, 0
        for t in range(inputs.shape[1]):
            length = min(order - 1, t + 1)
            context = inputs[:, t + 1 - length:t + 1] if length else np.zeros((len(inputs), 0), dtype=np.int64)
            joint = _keys(np.concatenate([context, targets[:, t:t + 1]], axis=1), vocabulary)
            joint_table, context_table = counts[length]
            probability = (lookup(joint_table, joint) + 1) / (lookup(context_table, joint // vocabulary) + vocabulary)
            total -= float(np.log(probability).sum())
            count += len(inputs)
        result[f"{split}/perplexity"] = math.exp(total / count)
    return result


def character_ngram(splits: Mapping[str, tuple[Any, Any]], vocabulary: int) -> dict[str, Any]:
    """The add-one n-gram whose order (1-6) has the lowest validation perplexity: its val and test perplexity."""
    scored = {order: ngram_perplexities(splits, vocabulary, order) for order in NGRAM_ORDERS}
    best = min(scored, key=lambda order: scored[order]["val/perplexity"])
    return {"name": f"add-one smoothed character {best}-gram (order chosen by validation among 1-6)",
            **scored[best]}
