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


def valid_steps(lengths: Tensor | None, steps: int, device: torch.device | None = None) -> Tensor | None:
    """``(B, T)`` bool, True at the steps ``t < lengths[b]`` of each sequence; None when ``lengths`` is None
    (every sequence has all ``steps``)."""
    if lengths is None:
        return None
    return torch.arange(steps, device=device or lengths.device) < lengths.to(device or lengths.device)[:, None]


@dataclass(frozen=True)
class Task:
    """The one place that knows a dataset's meaning; model, module and diagnostics ask it.

    Attributes:
        name: dataset name, as in ``data=<name>``.
        input_kind: ``"tokens"`` (inputs are int64 ids, (B, T)) or ``"real"`` (float, (B, T, input_size)).
        input_size: vocabulary size for tokens, feature count for real inputs.
        output_size: classes (or vocabulary) for cross-entropy, 1 for regression, the number of independent
            binary outputs (88 piano keys) for ``bernoulli``.
        per_step: True if the model predicts at every step (targets (B, T), or (B, T, C) for ``bernoulli``);
            False if once per sequence from its final state (targets (B,) for classes, (B,) floats for regression).
        loss: ``"mse"``, ``"cross_entropy"`` or ``"bernoulli"`` (C independent Bernoulli outputs given as logits:
            ``binary_cross_entropy_with_logits`` summed over the C outputs, averaged over steps).
        metric: ``"mse"``, ``"accuracy"``, ``"perplexity"`` or ``"nll"`` (negative log-likelihood per step, natural
            log, summed over the outputs and averaged over every predicted step of the split: frame-weighted);
            logged as ``val/<metric>``, ``test/<metric>``. ``nll`` tasks also log ``frame_accuracy``
            (Bay et al. 2009, as Boulanger-Lewandowski et al. 2012 report it: TP / (TP + FP + FN) summed over
            every step and output, at threshold 0.5).
        causal: True if predictions at step t may use only inputs up to t (language modelling):
            a bidirectional model would read the future.
        seq_len: number of steps T the model reads (variable-length data: the longest sequence of any split).
        baseline_loss: the loss of the best input-blind predictor, the bar a model must beat.
        metric_steps: for per-step tasks, the (start, stop) steps the metric reads; None = all.
        baseline_accuracy: for accuracy tasks, the input-blind predictor's accuracy (chance).
    """

    name: str
    input_kind: Literal["tokens", "real"]
    input_size: int
    output_size: int
    per_step: bool
    loss: Literal["mse", "cross_entropy", "bernoulli"]
    metric: Literal["mse", "accuracy", "perplexity", "nll"]
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
        if self.metric in ("mse", "nll"):
            return self.baseline_loss
        if self.metric == "perplexity":
            return math.exp(self.baseline_loss)
        return float("nan") if self.baseline_accuracy is None else self.baseline_accuracy

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Every metric logged as ``val/<name>`` and ``test/<name>``, the task's :attr:`metric` first."""
        return (self.metric, "frame_accuracy") if self.metric == "nll" else (self.metric,)

    def mode_of(self, name: str) -> Literal["min", "max"]:
        """Whether a smaller or larger value of the metric ``name`` (one of :attr:`metric_names`) is better."""
        return self.metric_mode if name == self.metric else "max"  # frame_accuracy

    def _elementwise(self, predictions: Tensor, targets: Tensor, reduction: str = "none") -> Tensor:
        """The task's loss function with PyTorch's ``reduction`` (``none``: every element's loss)."""
        if self.loss == "mse":
            return F.mse_loss(predictions, targets, reduction=reduction)
        if self.loss == "bernoulli":
            return F.binary_cross_entropy_with_logits(predictions, targets, reduction=reduction)
        return F.cross_entropy(predictions.flatten(0, -2), targets.flatten(), reduction=reduction)

    def step_losses(self, predictions: Tensor, targets: Tensor) -> Tensor:
        """A per-step task's loss at every step of every sequence, (B, T): averaged over a regression's features,
        summed over a ``bernoulli`` task's outputs (the negative log-likelihood of the step)."""
        batch, steps = targets.shape[:2]
        losses = self._elementwise(predictions, targets).reshape(batch, steps, -1)
        return losses.mean(dim=-1) if self.loss == "mse" else losses.sum(dim=-1)

    def compute_loss(self, predictions: Tensor, targets: Tensor, reduction: str = "mean",
                     lengths: Tensor | None = None) -> Tensor:
        """Loss of ``predictions`` (model output: (B, T, C) per step, (B, C) or (B,) once) against targets.

        With ``lengths`` (variable-length data, per-step tasks), the mean is over every valid step of the batch
        (steps ``t < lengths[b]``), padding ignored. A ``bernoulli`` loss is summed over its outputs."""
        if self.per_step and (lengths is not None or self.loss == "bernoulli"):
            losses = self.step_losses(predictions, targets)
            if lengths is not None:
                valid = valid_steps(lengths, losses.shape[1], losses.device)
                losses = losses * valid
                count = valid.sum()
            else:
                count = losses.numel()
            if reduction == "none":
                return losses
            return losses.sum() if reduction == "sum" else losses.sum() / count
        return self._elementwise(predictions, targets, reduction)

    def probe_loss(self, predictions: Tensor, targets: Tensor, lengths: Tensor | None = None) -> Tensor:
        """What gradient probes differentiate: for a once-per-sequence task the batch's summed loss (a scalar);
        for a per-step task the loss at every step of every sequence, (B, T), zero at padding, of which the
        probe takes, for each direction, the position that direction reaches last in each sequence."""
        if not self.per_step:
            return self.compute_loss(predictions, targets, reduction="sum")
        losses = self._elementwise(predictions, targets).reshape(*targets.shape[:2], -1).sum(dim=-1)
        if lengths is not None:
            losses = losses * valid_steps(lengths, losses.shape[1], losses.device)
        return losses

    def make_metrics(self) -> dict[str, torchmetrics.Metric]:
        """One fresh torchmetrics metric per name of :attr:`metric_names`."""
        metrics = {self.metric: self.make_metric()}
        if self.metric == "nll":
            metrics["frame_accuracy"] = torchmetrics.classification.MultilabelJaccardIndex(
                num_labels=self.output_size, threshold=0.5, average="micro")
        return metrics

    def update_metrics(self, metrics: dict[str, torchmetrics.Metric], predictions: Tensor, targets: Tensor,
                       lengths: Tensor | None = None) -> None:
        """Feed one batch to the metrics of :meth:`make_metrics` (padding left out)."""
        if lengths is not None and self.per_step:
            valid = valid_steps(lengths, targets.shape[1], targets.device)
            predictions, targets = predictions[valid].unsqueeze(0), targets[valid].unsqueeze(0)  # (1, N, ...)
        metrics[self.metric].update(*self.metric_inputs(predictions, targets))
        if "frame_accuracy" in metrics:
            metrics["frame_accuracy"].update(torch.sigmoid(predictions).flatten(0, -2),
                                             targets.flatten(0, -2).to(torch.long))

    def make_metric(self) -> torchmetrics.Metric:
        if self.metric == "nll":  # the mean over steps of each step's NLL, in float64 like perplexity's
            return torchmetrics.MeanMetric().set_dtype(torch.float64)
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
        if self.metric == "nll":  # one value per step: the mean is frame-weighted
            return (self.step_losses(predictions.double(), targets.double()).flatten(),)
        if self.metric == "accuracy":
            return predictions.reshape(-1, predictions.shape[-1]), targets.reshape(-1)
        return predictions, targets

    def validate_model(self, bidirectional: bool) -> None:
        require(not (bidirectional and self.causal), "bidirectional", bidirectional,
                f"false for the causal task '{self.name}' (a backward direction would read the future)")

