"""What a dataset means to the rest of the harness: input and output kinds, loss, metric, causality."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
import torchmetrics
from torch import Tensor

from rnnbench.errors import require


@dataclass(frozen=True)
class Task:
    """The one place that knows a dataset's meaning; model, module and diagnostics ask it.

    Attributes:
        name: dataset name, as in ``data=<name>``.
        input_kind: ``"tokens"`` (inputs are int64 ids, (B, T)) or ``"real"`` (float, (B, T, input_size)).
        input_size: vocabulary size for tokens, feature count for real inputs.
        output_size: classes (or vocabulary) for cross-entropy, 1 for regression.
        per_step: True if the model predicts at every step (targets (B, T)); False if once per
            sequence from its final state (targets (B,) for classes, (B,) floats for regression).
        loss: ``"mse"`` or ``"cross_entropy"``.
        metric: ``"mse"``, ``"accuracy"`` or ``"perplexity"``; logged as ``val/<metric>``, ``test/<metric>``.
        causal: True if predictions at step t may use only inputs up to t (language modelling):
            a bidirectional model would read the future.
        seq_len: number of steps T the model reads.
        baseline_loss: the loss of the best input-blind predictor, the bar a model must beat.
        metric_steps: for per-step tasks, the (start, stop) steps the metric reads; None = all.
        baseline_accuracy: for accuracy tasks, the input-blind predictor's accuracy (chance).
    """

    name: str
    input_kind: Literal["tokens", "real"]
    input_size: int
    output_size: int
    per_step: bool
    loss: Literal["mse", "cross_entropy"]
    metric: Literal["mse", "accuracy", "perplexity"]
    causal: bool
    seq_len: int
    baseline_loss: float
    metric_steps: tuple[int, int] | None = None
    baseline_accuracy: float | None = None

    @property
    def metric_mode(self) -> Literal["min", "max"]:
        """Whether a smaller (``min``) or larger (``max``) metric is better."""
        return "max" if self.metric == "accuracy" else "min"

    @property
    def baseline_metric(self) -> float:
        """The metric's value for the input-blind predictor (``nan`` where it has no closed form)."""
        if self.metric == "mse":
            return self.baseline_loss
        if self.metric == "perplexity":
            return math.exp(self.baseline_loss)
        return float("nan") if self.baseline_accuracy is None else self.baseline_accuracy

    def compute_loss(self, predictions: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        """Loss of ``predictions`` (model output: (B, T, C) per step, (B, C) or (B,) once) against targets."""
        if self.loss == "mse":
            return F.mse_loss(predictions, targets, reduction=reduction)
        return F.cross_entropy(predictions.flatten(0, -2), targets.flatten(), reduction=reduction)

    def probe_loss(self, predictions: Tensor, targets: Tensor) -> Tensor:
        """What gradient probes differentiate, summed over the batch: the sequence's loss (a scalar) for a
        once-per-sequence task; for a per-step task the loss at every output position, (T,), of which the
        probe takes, for each direction, the position that direction reaches last."""
        if not self.per_step:
            return self.compute_loss(predictions, targets, reduction="sum")
        batch, steps = targets.shape[:2]
        return self.compute_loss(predictions, targets, reduction="none").reshape(batch, steps, -1).sum(dim=(0, 2))

    def make_metric(self) -> torchmetrics.Metric:
        if self.metric == "mse":
            return torchmetrics.MeanSquaredError()
        if self.metric == "perplexity":
            # In float64 (its sums here, its inputs in metric_inputs): torchmetrics takes the log of a softmax,
            # which in float32 underflows to log(0) past ~87 nats, and exp(mean loss) overflows past ~88, so a
            # run whose loss blew up would record no perplexity at all; float64 holds up to ~700 nats.
            return torchmetrics.text.Perplexity().set_dtype(torch.float64)
        return torchmetrics.classification.MulticlassAccuracy(num_classes=self.output_size, average="micro")

    def metric_inputs(self, predictions: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """Reshape a batch into what :meth:`make_metric`'s metric takes."""
        if self.metric_steps is not None:
            start, stop = self.metric_steps
            predictions, targets = predictions[:, start:stop], targets[:, start:stop]
        if self.metric == "perplexity":
            return predictions.double(), targets  # (B, T, V) logits, (B, T) ids: see make_metric
        if self.metric == "accuracy":
            return predictions.reshape(-1, predictions.shape[-1]), targets.reshape(-1)
        return predictions, targets

    def validate_model(self, bidirectional: bool) -> None:
        require(not (bidirectional and self.causal), "bidirectional", bidirectional,
                f"false for the causal task '{self.name}' (a backward direction would read the future)")

