"""The model every run trains: encoder -> layer stack of any cell -> a head shaped by the task."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from rnnbench.data.task import Task
from rnnbench.errors import ConfigError, require, require_int
from rnnbench.models.cells.registry import accepts_option, cell_options_problem, resolve_cell
from rnnbench.models.budget import hidden_size_for_budget
from rnnbench.models.encoders import build_encoder
from rnnbench.models.initialization import init_recurrent, set_forget_bias
from rnnbench.models.stack import LayerStack


class SequenceModel(nn.Module):
    """A recurrent network for any :class:`~rnnbench.data.task.Task`.

    Args:
        task: what the data means; fixes the input encoder's and the head's sizes.
        cell: a registered cell name (``rnn``, ``lstm``, ``gru``, ``lstm_cifg``, ``mingru``, ...;
            :data:`rnnbench.models.cells.CELLS`) or the dotted path ``package.module.ClassName`` of a
            :class:`~rnnbench.models.cells.Cell` subclass.
        hidden_size: H, features of each direction's hidden state.
        num_layers: L, stacked recurrent layers.
        bidirectional: run a second, time-reversed direction in every layer (D = 2).
        dropout: dropout between recurrent layers (on every layer's output but the last).
        nonlinearity: passed to cells that take one (``rnn``: tanh/relu, ``indrnn``); ``None`` keeps
            the cell's default.
        embedding_size: ``None`` feeds inputs as they are (one-hot tokens); an int learns an
            embedding (tokens) or a linear projection (real inputs) of that size.
        forget_bias: the forget gate's total initial bias, for cells with a forget gate (the LSTM
            family); ``None`` keeps the cell's init.
        recurrent_init: ``default``, ``orthogonal`` or ``identity`` (IRNN) ``weight_hh`` blocks.
        cell_options: keyword arguments of the cell's constructor (``model.cell_options``).
        param_budget: the whole model's parameter count (encoder, stack, head): ``hidden_size`` is then
            chosen to meet it within 5% (:mod:`rnnbench.models.budget`); ``self.hidden_size`` and
            ``self.parameters_count`` say what was chosen.
        compile: ``torch.compile`` the step-by-step stack for training (one graph for all T steps, the
            batch size dynamic): a cell without a fused twin trains faster after a one-off compilation of
            about a minute on a CPU core (``results/performance/cells.md``); evaluation, the probes and the
            fused built-ins, already one kernel, run uncompiled.

    Shapes, with B batch, T steps, C = ``task.output_size``:
        input: (B, T) int64 token ids, or (B, T, task.input_size) floats.
        output: per-step tasks (B, T, C); once-per-sequence tasks (B, C), or (B,) for regression
        (C = 1). Once-per-sequence heads read the last layer's final ``h`` of every direction
        (the forward direction after step T, the backward one after step 1), concatenated.
    """

    def __init__(self, task: Task, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, nonlinearity: str | None = None,
                 embedding_size: int | None = None, forget_bias: float | None = None,
                 recurrent_init: str = "default", cell_options: Mapping[str, Any] | None = None,
                 compile: bool = False, param_budget: int | None = None):
        super().__init__()
        if param_budget is not None:
            settings = dict(cell=cell, num_layers=num_layers, bidirectional=bidirectional, dropout=dropout,
                            nonlinearity=nonlinearity, embedding_size=embedding_size, cell_options=cell_options)
            hidden_size, _ = hidden_size_for_budget(param_budget, lambda h: SequenceModel(task, hidden_size=h,
                                                                                          **settings))
        cell_class = resolve_cell(cell)
        options = _plain(cell_options)
        problem = cell_options_problem(cell_class, options)
        if problem:
            key, allowed = problem
            raise ConfigError(f"cell_options.{key}", options[key], allowed)
        if nonlinearity is not None:
            require(accepts_option(cell_class, "nonlinearity") and "nonlinearity" not in options, "nonlinearity",
                    nonlinearity, f"null for cell {cell} (it takes no nonlinearity, or cell_options sets it)")
            options["nonlinearity"] = nonlinearity
        if embedding_size is not None:
            require_int(embedding_size, "embedding_size", 1)
        require(forget_bias is None or (isinstance(forget_bias, (int, float)) and not isinstance(forget_bias, bool)),
                "forget_bias", forget_bias, "null, or a number")
        require(isinstance(bidirectional, bool), "bidirectional", bidirectional, "true or false")
        require(isinstance(compile, bool), "compile", compile, "true or false")
        task.validate_model(bidirectional)

        self.task = task
        self.encoder, input_size = build_encoder(task, embedding_size)
        try:
            self.stack = LayerStack(cell_class, input_size, hidden_size, num_layers, bidirectional, dropout,
                                    name=str(cell), **options)
        except ConfigError as error:  # a cell's own argument check: name the option as the user gave it
            given_as_model_key = {"nonlinearity"} if nonlinearity is not None else set()
            if error.setting in options and error.setting not in given_as_model_key:
                raise error.under("cell_options") from None
            raise
        init_recurrent(self.stack, recurrent_init)
        if forget_bias is not None:
            set_forget_bias(self.stack, forget_bias)
        self.num_directions = self.stack.num_directions
        # kept out of the module tree: the compiled wrapper shares the stack's parameters, not a copy
        self.__dict__["compiled_stack"] = (torch.compile(self.stack, dynamic=True)
                                           if compile and self.stack.fused_kind is None else None)
        self.head = nn.Linear(hidden_size * self.num_directions, task.output_size)
        self.hidden_size, self.param_budget = hidden_size, param_budget
        self.parameters_count = sum(p.numel() for p in self.parameters())

    def encode(self, inputs: Tensor) -> Tensor:
        """Raw inputs -> the (B, T, input_size) float sequence the layer stack reads."""
        return self.encoder(inputs)

    def readout(self, output: Tensor, h_n: Tensor) -> Tensor:
        """Predictions from the stack's ``output`` (B, T, D * H) and final hidden state ``h_n`` (L * D, B, H)."""
        if self.task.per_step:
            return self.head(output)
        final = h_n[-self.num_directions:].transpose(0, 1).flatten(1)  # (B, D * H)
        prediction = self.head(final)
        return prediction.squeeze(-1) if self.task.output_size == 1 and self.task.loss == "mse" else prediction

    def forward(self, inputs: Tensor) -> Tensor:
        stack = self.compiled_stack if self.compiled_stack is not None and self.training else self.stack
        output, final = stack(self.encode(inputs))
        return self.readout(output, final[0])


def _plain(options: Mapping[str, Any] | None) -> dict[str, Any]:
    if options is None:
        return {}
    if isinstance(options, DictConfig):
        return OmegaConf.to_container(options, resolve=True)  # type: ignore[return-value]
    require(isinstance(options, Mapping), "cell_options", options, "a mapping of the cell's keyword arguments")
    return dict(options)
