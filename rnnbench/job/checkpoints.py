"""Checkpoints that let ``resume=true`` continue a run to the very numbers an uninterrupted run reaches.

A run keeps one checkpoint, ``checkpoints/last.ckpt`` in its dir, rewritten after every validation (every
``trainer.val_check_interval`` steps; ``checkpoint=false`` turns it off), with Lightning's
:class:`~pytorch_lightning.callbacks.ModelCheckpoint`. Besides the model, optimizer and loop state that Lightning
keeps, it holds what makes the continuation exact on CPU:

- the data order: :class:`rnnbench.data.base.InMemoryDataModule` saves the training batches served and continues
  the same shuffled order from there;
- every random generator (torch, numpy, python): :class:`RandomState`;
- the state of each rnnbench callback (best validation values, gradient counts, probe curves): callbacks that
  derive from :class:`rnnbench.diagnostics.base.CallbackState` list the attributes a checkpoint keeps.

Checkpoints hold only tensors and plain Python values, so they load with ``torch.load(weights_only=True)``.
The checkpoint is deleted when a run ends ``completed`` or ``diverged``: a result needs no continuation.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

CHECKPOINT_DIR = "checkpoints"
LAST_NAME = "last"
BEST_NAME = "best"  # with early_stopping: the best validation's weights, which the test measures


def checkpoint_path(output_dir: Path) -> Path:
    return output_dir / CHECKPOINT_DIR / f"{LAST_NAME}.ckpt"


def last_checkpoint(output_dir: Path) -> ModelCheckpoint:
    """The callback that rewrites ``checkpoints/last.ckpt`` at the end of every validation during training (so a
    resumed run does not repeat or skip a validation)."""
    return ModelCheckpoint(dirpath=output_dir / CHECKPOINT_DIR, filename=LAST_NAME, monitor=None, save_top_k=1,
                           save_on_train_epoch_end=False, enable_version_counter=False, save_weights_only=False)


def checkpoint_step(path: Path) -> int | None:
    """The global step a checkpoint was taken at; None if it is missing or unreadable (a kill mid-write)."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return int(state["global_step"])
    except Exception:  # noqa: BLE001 - any damage means: no usable checkpoint
        return None


class RandomState(pl.Callback):
    """Keeps torch's, numpy's and python's random generators in checkpoints, as plain values and tensors."""

    def state_dict(self) -> dict[str, Any]:
        kind, keys, position, has_gauss, cached = np.random.get_state()
        return {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position,
                                                          has_gauss, cached],
                "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        kind, keys, position, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
        python = state_dict["python"]
        random.setstate((python[0], tuple(python[1]), python[2]))
        if state_dict.get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
