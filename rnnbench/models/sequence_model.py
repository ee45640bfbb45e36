"""The model every run trains: encoder -> layer stack of any cell -> a head shaped by the task."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from rnnbench.data.task import Task, valid_steps
from rnnbench.errors import ConfigError, defaults_of, require, require_fits, require_int
from rnnbench.models.cells.base import Cell
from rnnbench.models.cells.registry import accepts_option, cell_options_problem, resolve_cell
from rnnbench.models.budget import hidden_size_for_budget
from rnnbench.models.encoders import build_encoder
from rnnbench.models.initialization import init_recurrent, set_forget_bias
from rnnbench.models.stack import LayerStack

BYTES_PER_PARAMETER = 8  # float32 weights and their gradients: the least training holds per parameter
BYTES_PER_VALUE = 4      # float32 activations
READOUTS = ("last", "all", "mean")  # what a once-per-sequence head reads (SequenceModel's readout)


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
        state_budget: the floats the recurrent state carries per sequence, ``len(cell.state_names) * L * D * H``
            (h for an RNN or GRU; h and c for an LSTM): ``hidden_size`` is then chosen to meet it within 5%, as
            for ``param_budget`` (one of the two at most); ``self.state_size`` says what was met.
        readout: what a once-per-sequence head reads: ``last``, the last layer's final ``h`` of every direction;
            ``all``, the last layer's output at every step, flattened (T * D * H features, T = ``task.seq_len``;
            steps past a sequence's length read as zeros), as the MNIST-1D GRU of Greydanus and Kobak does;
            ``mean``, that output averaged over each sequence's own steps. Per-step tasks read every step's
            output whatever it says, so they take ``last`` only.
        compile: ``torch.compile`` the step-by-step stack for training (one graph for all T steps, the
            batch size dynamic): a cell without a fused twin trains faster after a one-off compilation of
            about a minute on a CPU core (``results/performance/cells.md``); evaluation, the probes and the
            fused built-ins, already one kernel, run uncompiled.

    Shapes, with B batch, T steps, C = ``task.output_size``:
        input: (B, T) int64 token ids, or (B, T, task.input_size) floats.
        lengths (optional): (B,) int64, each sequence's own number of steps (variable-length data).
        output: per-step tasks (B, T, C); once-per-sequence tasks (B, C), or (B,) for regression
        (C = 1). Once-per-sequence heads read what ``readout`` says; ``last``: the last layer's final ``h``
        of every direction (the forward direction after each sequence's own last step, the backward one after
        step 1), concatenated.
    """

    def __init__(self, task: Task, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, nonlinearity: str | None = None,
                 embedding_size: int | None = None, forget_bias: float | None = None,
                 recurrent_init: str = "default", cell_options: Mapping[str, Any] | None = None,
                 compile: bool = False, param_budget: int | None = None, state_budget: int | None = None,
                 readout: str = "last"):
        super().__init__()
        settings = plan(task, cell, hidden_size, num_layers, bidirectional, dropout, nonlinearity, embedding_size,
                        forget_bias, cell_options, compile, param_budget, state_budget, readout)
        hidden_size = settings.hidden_size
        self.task = task
        self.encoder, input_size = build_encoder(task, embedding_size)
        with cell_option_errors(settings.options, nonlinearity):
            self.stack = LayerStack(settings.cell_class, input_size, hidden_size, num_layers, bidirectional,
                                    dropout, name=str(cell), **settings.options)
        init_recurrent(self.stack, recurrent_init)
        if forget_bias is not None:
            set_forget_bias(self.stack, forget_bias)
        self.num_directions = self.stack.num_directions
        # kept out of the module tree: the compiled wrapper shares the stack's parameters, not a copy
        self.__dict__["compiled_stack"] = (torch.compile(self.stack, dynamic=True)
                                           if compile and self.stack.fused_kind is None else None)
        self.readout_kind = readout
        self.head = nn.Linear(head_features(task, hidden_size, self.num_directions, readout), task.output_size)
        self.hidden_size, self.param_budget, self.state_budget = hidden_size, param_budget, state_budget
        self.state_size = settings.state_size
        self.parameters_count = sum(p.numel() for p in self.parameters())

    @classmethod
    def footprint(cls, task: Task, batch_size: int, settings: Mapping[str, Any]) -> int:
        """A lower bound on the bytes one training step of the model ``settings`` (``model.*``, without
        ``_target_``) takes on batches of ``batch_size``: its weights and gradients, and the activations
        backpropagation keeps (every layer-direction's states at every step, the encoded input, the head's
        outputs). Checks the settings as the constructor does, and builds nothing but two small meta models."""
        bound = inspect.signature(cls.__init__).bind(None, task, **settings)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        for unused in ("self", "recurrent_init"):  # applied to the built cells; checked by the constructor
            del arguments[unused]
        counted = plan(**arguments)
        per_step = counted.input_size + counted.state_size + (task.output_size if task.per_step else 0)
        return BYTES_PER_PARAMETER * counted.parameters + BYTES_PER_VALUE * batch_size * task.seq_len * per_step

    def encode(self, inputs: Tensor) -> Tensor:
        """Raw inputs -> the (B, T, input_size) float sequence the layer stack reads."""
        return self.encoder(inputs)

    def readout(self, output: Tensor, h_n: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Predictions from the stack's ``output`` (B, T, D * H) and final hidden state ``h_n`` (L * D, B, H);
        ``lengths`` (B,) or None as in :meth:`forward`."""
        if self.task.per_step:
            return self.head(output)
        if self.readout_kind == "last":
            features = h_n[-self.num_directions:].transpose(0, 1).flatten(1)  # (B, D * H)
        else:
            valid = valid_steps(lengths, output.shape[1], output.device)
            if valid is not None:
                output = output * valid[..., None]  # steps past a sequence's end read as zeros
            if self.readout_kind == "mean":
                steps = lengths.to(output.device)[:, None] if lengths is not None else output.shape[1]
                features = output.sum(dim=1) / steps  # (B, D * H)
            else:  # all: (B, T * D * H), a batch shorter than the task's T padded with zeros
                features = F.pad(output, (0, 0, 0, self.task.seq_len - output.shape[1])).flatten(1)
        prediction = self.head(features)
        return prediction.squeeze(-1) if self.task.output_size == 1 and self.task.loss == "mse" else prediction

    def probe_output(self, output: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``output`` (B, T, D * H) with its gradient kept only at the step each direction reaches last in each
        sequence (forward: its own last step, backward: step 1), the value unchanged: what the gradient probes
        read under ``readout=all`` or ``mean``, whose loss reads every step's output directly. So the probes
        measure, for every readout, how the gradient from the loss position fades back through time (as with
        ``last``, where only the final state reaches the loss), not the head's direct path to each step."""
        if self.task.per_step or self.readout_kind == "last":
            return output
        batch, steps, features = output.shape
        last = (lengths.to(output.device) - 1 if lengths is not None
                else torch.full((batch,), steps - 1, device=output.device))
        keep = torch.zeros(batch, steps, self.num_directions, dtype=torch.bool, device=output.device)
        keep[torch.arange(batch, device=output.device), last, 0] = True
        if self.num_directions == 2:
            keep[:, 0, 1] = True
        keep = keep.repeat_interleave(features // self.num_directions, dim=2)
        return torch.where(keep, output, output.detach())

    def probe_loss(self, targets: Tensor, lengths: Tensor | None = None) -> Callable[[Tensor, Tensor], Tensor]:
        """What the gradient probes differentiate, as ``readout_loss(output, h_n)`` for
        :func:`~rnnbench.diagnostics.measures.gradient_flow.gradient_through_time`: the task's probe loss of this
        model's readout of the stack's ``output`` (B, T, D * H) and ``h_n`` (L * D, B, H), the head's direct path
        to every step but the loss position cut (:meth:`probe_output`)."""
        return lambda output, h_n: self.task.probe_loss(
            self.readout(self.probe_output(output, lengths), h_n, lengths), targets, lengths)

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``inputs`` as above; ``lengths`` (B,) int64 or None: sequence ``b`` is its first ``lengths[b]`` steps
        (padding after them changes nothing; per-step outputs there are the head's bias, which losses and
        metrics skip)."""
        stack = self.compiled_stack if self.compiled_stack is not None and self.training else self.stack
        output, final = stack(self.encode(inputs), lengths)
        return self.readout(output, final[0], lengths)


@dataclass(frozen=True)
class Plan:
    """What a model's settings come to, checked and counted before anything is allocated."""

    cell_class: type[Cell]
    options: dict[str, Any]   # the cell's constructor arguments, nonlinearity included
    hidden_size: int          # as given, or as param_budget chose it
    input_size: int           # features the layer stack reads
    parameters: int
    state_size: int           # floats the state carries per sequence: state tensors (h; h, c) * L * D * hidden_size


def plan(task: Task, cell: str, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float,
         nonlinearity: str | None, embedding_size: int | None, forget_bias: float | None,
         cell_options: Mapping[str, Any] | None, compile: bool, param_budget: int | None,
         state_budget: int | None = None, readout: str = "last") -> Plan:
    """Check a SequenceModel's settings (a ConfigError names the first bad one) and count its parameters.

    A model whose weights and gradients alone exceed this machine's memory is refused here, before any
    weight is allocated or any layer looped over (the count comes from 1- and 2-layer stacks on the meta
    device). ``recurrent_init`` is checked where it is applied, to the built cells.
    """
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
    require_int(num_layers, "num_layers", 1)
    require(readout in READOUTS, "readout", readout, f"one of {', '.join(READOUTS)}")
    require(readout == "last" or not task.per_step, "readout", readout,
            f"last for the per-step task '{task.name}' (its head reads every step's output already)")
    require(param_budget is None or state_budget is None, "state_budget", state_budget,
            f"null beside param_budget={param_budget} (each chooses the hidden size: give one of the two)")
    task.validate_model(bidirectional)
    states_per_unit = len(cell_class.state_names) * num_layers * (2 if bidirectional else 1)

    def count(size: int) -> int:
        with cell_option_errors(options, nonlinearity):
            return parameter_estimate(task, cell_class, size, num_layers, bidirectional, dropout, embedding_size,
                                      options, str(cell), readout)

    if param_budget is not None:
        hidden_size, parameters = hidden_size_for_budget(param_budget, count)
    else:
        if state_budget is not None:
            hidden_size, _ = hidden_size_for_budget(state_budget, lambda size: states_per_unit * size,
                                                    "state_budget")
        parameters = count(hidden_size)
    defaults = defaults_of(SequenceModel.__init__)
    size = next(((name, value) for name, value in (("param_budget", param_budget), ("state_budget", state_budget))
                 if value is not None), ("hidden_size", hidden_size))
    growing = {name: (value, defaults[name]) for name, value in
               (size, ("num_layers", num_layers), ("embedding_size", embedding_size)) if value is not None}
    require_fits(BYTES_PER_PARAMETER * parameters, f"the weights and gradients of {parameters:.3g} parameters",
                 growing)
    input_size = embedding_size if embedding_size is not None else task.input_size
    return Plan(cell_class, options, hidden_size, input_size, parameters, states_per_unit * hidden_size)


def head_features(task: Task, hidden_size: int, directions: int, readout: str) -> int:
    """The features the head reads: D * H per step, times T for a once-per-sequence ``readout=all``."""
    return hidden_size * directions * (task.seq_len if readout == "all" and not task.per_step else 1)


def parameter_estimate(task: Task, cell_class: type[Cell], hidden_size: int, num_layers: int, bidirectional: bool,
                       dropout: float, embedding_size: int | None, options: Mapping[str, Any], name: str,
                       readout: str = "last") -> int:
    """The whole model's parameter count (encoder, stack, head), from its 1- and 2-layer stacks on the meta
    device: every layer above the first reads the same D*H features, so each has the second layer's count."""
    with torch.device("meta"):
        encoder, input_size = build_encoder(task, embedding_size)
        one, two = (LayerStack(cell_class, input_size, hidden_size, layers, bidirectional, dropout, name=name,
                               **options) for layers in (1, 2))
        head = nn.Linear(head_features(task, hidden_size, one.num_directions, readout), task.output_size)
    first, second = _count(one), _count(two) - _count(one)
    return _count(encoder) + first + (num_layers - 1) * second + _count(head)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@contextmanager
def cell_option_errors(options: Mapping[str, Any], nonlinearity: str | None) -> Iterator[None]:
    """A cell's own argument check names the option as the user gave it: ``cell_options.KEY`` (``nonlinearity``
    is a model key when given as one)."""
    try:
        yield
    except ConfigError as error:
        given_as_model_key = {"nonlinearity"} if nonlinearity is not None else set()
        if error.setting in options and error.setting not in given_as_model_key:
            raise error.under("cell_options") from None
        raise


def _plain(options: Mapping[str, Any] | None) -> dict[str, Any]:
    if options is None:
        return {}
    if isinstance(options, DictConfig):
        return OmegaConf.to_container(options, resolve=True)  # type: ignore[return-value]
    require(isinstance(options, Mapping), "cell_options", options, "a mapping of the cell's keyword arguments")
    return dict(options)
