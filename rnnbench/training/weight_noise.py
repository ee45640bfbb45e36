"""Weight noise (Graves 2011; Chung et al. 2014, sigma 0.075): every training forward sees noisy weights, every
update applies to the clean ones."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch


class WeightNoise(pl.Callback):
    """Adds fresh Gaussian noise N(0, ``std``^2) to every parameter before each training batch's forward and
    restores the clean values once its gradients are computed, before clipping and the optimizer step: the
    gradient is taken at the noisy weights, the update made to the clean ones (Graves 2011, "Practical
    variational inference for neural networks", the fixed-variance form). Validation and test see the clean
    weights. The noise is drawn from torch's global generator, which checkpoints keep, so a resumed run draws
    the same noise.

    Args:
        std: the noise's standard deviation (> 0).
    """

    def __init__(self, std: float):
        self.std = float(std)
        self._clean: list[torch.Tensor] | None = None

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        with torch.no_grad():
            parameters = [p for p in pl_module.parameters() if p.requires_grad]
            self._clean = [p.detach().clone() for p in parameters]
            for parameter in parameters:
                parameter.add_(torch.randn_like(parameter), alpha=self.std)

    def on_after_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore(pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._restore(pl_module)  # a step that skipped backward (a non-finite loss) still leaves clean weights

    def _restore(self, pl_module: pl.LightningModule) -> None:
        if self._clean is None:
            return
        with torch.no_grad():
            for parameter, clean in zip((p for p in pl_module.parameters() if p.requires_grad), self._clean):
                parameter.copy_(clean)
        self._clean = None
