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
    weights. The noise comes from a generator of its own, seeded with ``seed`` and kept in checkpoints: nothing
    else that draws random numbers (a data loader's iterator draws one from torch's global generator each time it
    starts) shifts it, so a resumed run draws the very noise an uninterrupted one does.

    Args:
        std: the noise's standard deviation (> 0).
        seed: seeds the noise's generator (the run's seed).
    """

    def __init__(self, std: float, seed: int = 0):
        self.std, self.seed = float(std), int(seed)
        self._clean: list[torch.Tensor] | None = None
        self._generator: torch.Generator | None = None
        self._restored_state: torch.Tensor | None = None

    def generator(self, device: torch.device) -> torch.Generator:
        if self._generator is None:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
            if self._restored_state is not None:
                self._generator.set_state(self._restored_state)
        return self._generator

    def state_dict(self) -> dict[str, Any]:
        state = self._generator.get_state() if self._generator is not None else self._restored_state
        return {"seed": self.seed, "generator": state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored_state, self._generator = state_dict.get("generator"), None

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        with torch.no_grad():
            parameters = [p for p in pl_module.parameters() if p.requires_grad]
            self._clean = [p.detach().clone() for p in parameters]
            for parameter in parameters:
                noise = torch.randn(parameter.shape, generator=self.generator(parameter.device),
                                    device=parameter.device, dtype=parameter.dtype)
                parameter.add_(noise, alpha=self.std)

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
