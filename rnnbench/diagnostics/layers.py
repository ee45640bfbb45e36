"""Re-run a fused recurrent network one layer and one direction at a time, exactly.

The fused ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` kernels expose only the top
layer's output sequence and the final states. Here each layer-direction is run
as its own fused single-layer unidirectional module, so that every layer's
hidden sequence is available; gate activations and the LSTM cell sequence are
then recovered with one batched matrix product per layer-direction instead of
a Python loop over cells. :mod:`rnnbench.diagnostics.gates` is built on it;
:mod:`rnnbench.diagnostics.through_time` shares the cell layouts and weights.

Shape conventions used below:

* ``B``: batch size, ``T``: sequence length, ``H``: hidden size,
  ``G``: number of gate chunks stacked in the weights (RNN 1, GRU 3, LSTM 4),
  ``I_l``: input size of layer ``l`` (``input_size`` for layer 0,
  ``D * H`` above it), ``D``: number of directions, ``L``: number of layers.
* Sequences are batch first. A sequence "in processing order" is indexed by
  the step ``k`` in which the direction visits it: position ``t = k`` for the
  forward direction and ``t = T - 1 - k`` for the backward direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

DIRECTION_NAMES: tuple[str, str] = ("forward", "backward")


@dataclass(frozen=True)
class CellLayout:
    """How one recurrent cell type stacks its gates in ``weight_ih`` / ``weight_hh``.

    Attributes:
        module: the ``nn.RNNBase`` subclass that runs this cell fused.
        chunks: names of the ``G`` row blocks of the weights, in PyTorch's order.
        activations: activation applied to each block's pre-activation.
        gates: the blocks reported as gates (plain RNNs have none).
        sigmoid_gates: the gates bounded in (0, 1), whose saturation is reported.
        reset_scaled: GRU only: the block whose recurrent term ``W_h h + b_h`` is
            multiplied by the reset gate before entering the activation, as
            ``(block, scaling gate)``; ``None`` for cells without such a term.
        cell_forget / cell_input / cell_candidate / cell_output: LSTM only:
            the blocks driving ``c_t = f c_{t-1} + i g`` and ``h_t = o tanh(c_t)``.
    """

    module: type[nn.RNNBase]
    chunks: tuple[str, ...]
    activations: tuple[str, ...]
    gates: tuple[str, ...]
    sigmoid_gates: tuple[str, ...]
    reset_scaled: tuple[str, str] | None = None
    cell_forget: str | None = None
    cell_input: str | None = None
    cell_candidate: str | None = None
    cell_output: str | None = None

    @property
    def num_chunks(self) -> int:
        return len(self.chunks)


CELL_LAYOUTS: dict[str, CellLayout] = {
    "RNN_TANH": CellLayout(nn.RNN, ("hidden",), ("tanh",), (), ()),
    "RNN_RELU": CellLayout(nn.RNN, ("hidden",), ("relu",), (), ()),
    "LSTM": CellLayout(
        nn.LSTM,
        ("input", "forget", "cell", "output"),
        ("sigmoid", "sigmoid", "tanh", "sigmoid"),
        ("input", "forget", "cell", "output"),
        ("input", "forget", "output"),
        cell_forget="forget",
        cell_input="input",
        cell_candidate="cell",
        cell_output="output",
    ),
    "GRU": CellLayout(
        nn.GRU,
        ("reset", "update", "new"),
        ("sigmoid", "sigmoid", "tanh"),
        ("reset", "update", "new"),
        ("reset", "update"),
        reset_scaled=("new", "reset"),
    ),
}

_ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


def cell_layout(rnn: nn.RNNBase) -> CellLayout:
    """Return the gate layout of ``rnn`` after checking that it is supported."""
    if rnn.mode not in CELL_LAYOUTS:
        raise ValueError(f"unsupported recurrent mode {rnn.mode!r}")
    if getattr(rnn, "proj_size", 0):
        raise ValueError("LSTM with proj_size > 0 is not supported")
    if not rnn.batch_first:
        raise ValueError("the recurrent module must be built with batch_first=True")
    return CELL_LAYOUTS[rnn.mode]


@dataclass
class LayerRun:
    """One layer-direction of a network re-run on its own.

    Attributes:
        layer: layer index ``l``.
        direction: 0 for forward, 1 for backward.
        inputs: ``(B, T, I_l)``, the layer's input in this direction's
            processing order.
        projected: ``(B, T, G*H)``, ``x'_k = W_ih x_k + b_ih``, the
            input half of the gate pre-activations, in processing order.
        hidden: ``(B, T, H)``, ``h_k`` in processing order (``h_{-1} = 0``).
        weight_hh: ``(G*H, H)``, the layer-direction's ``W_hh`` in the run dtype.
        bias_hh: ``(G*H,)`` ``b_hh``, or ``None`` when the module has no bias.
    """

    layer: int
    direction: int
    inputs: Tensor
    projected: Tensor
    hidden: Tensor
    weight_hh: Tensor
    bias_hh: Tensor | None


def layer_weights(
    rnn: nn.RNNBase, layer: int, direction: int, device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """Detached copies of ``(W_ih, W_hh, b_ih, b_hh)`` of one layer-direction.

    Shapes ``(G*H, I_l)``, ``(G*H, H)``, ``(G*H,)``, ``(G*H,)``; the biases
    are ``None`` for a module built with ``bias=False``.
    """
    suffix = f"_l{layer}" + ("_reverse" if direction else "")
    copies = []
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        value = getattr(rnn, name + suffix, None)
        copies.append(None if value is None else value.detach().to(device, dtype))
    weight_ih, weight_hh, bias_ih, bias_hh = copies
    assert weight_ih is not None and weight_hh is not None
    return weight_ih, weight_hh, bias_ih, bias_hh


def _fused_single_layer(
    rnn: nn.RNNBase,
    layout: CellLayout,
    weights: dict[str, Tensor | None],
    input_size: int,
) -> nn.RNNBase:
    """A single-layer unidirectional fused module holding ``weights`` (no grads)."""
    kwargs = {"nonlinearity": rnn.nonlinearity} if layout.module is nn.RNN else {}
    weight_hh = weights["weight_hh"]
    assert weight_hh is not None
    # Built on the meta device so that its default initialisation neither
    # allocates nor consumes the caller's random number generator.
    module = layout.module(
        input_size,
        rnn.hidden_size,
        num_layers=1,
        bias=rnn.bias,
        batch_first=True,
        device="meta",
        dtype=weight_hh.dtype,
        **kwargs,
    )
    for name, value in weights.items():
        if value is not None:
            setattr(module, f"{name}_l0", nn.Parameter(value, requires_grad=False))
    # cuDNN wants one contiguous weight buffer; a no-op on CPU. With one layer
    # the module's dropout never applies, whatever its mode.
    module.flatten_parameters()
    return module


def run_layers(
    rnn: nn.RNNBase,
    inputs: Tensor,
    dtype: torch.dtype | None = None,
) -> tuple[list[LayerRun], Tensor, Tensor]:
    """Run ``rnn`` layer by layer and direction by direction, without dropout and without autograd.

    Each layer-direction runs as its own fused single-layer module on a copy
    of its weights in ``dtype``; ``rnn`` itself is never touched.

    Args:
        rnn: a batch-first ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``.
        inputs: ``(B, T, input_size)``.
        dtype: computation dtype; defaults to the dtype of ``rnn``'s weights.

    Returns:
        ``(runs, output, h_n)``: ``runs`` has one :class:`LayerRun` per
        layer-direction, ordered ``l * D + d``; ``output`` is ``(B, T, D*H)``,
        the top layer's directions concatenated in natural time order, as
        ``rnn`` returns it; ``h_n`` is ``(L*D, B, H)``, each layer-direction's
        last processed hidden state.
    """
    layout = cell_layout(rnn)
    if dtype is None:
        dtype = rnn.weight_hh_l0.dtype
    num_directions = 2 if rnn.bidirectional else 1

    runs: list[LayerRun] = []
    layer_input = inputs.detach().to(dtype)
    with torch.no_grad():
        for layer in range(rnn.num_layers):
            outputs_in_time_order: list[Tensor] = []
            for direction in range(num_directions):
                weight_ih, weight_hh, bias_ih, bias_hh = layer_weights(rnn, layer, direction, inputs.device, dtype)
                x = layer_input.flip(1) if direction else layer_input
                weights = {"weight_ih": weight_ih, "weight_hh": weight_hh, "bias_ih": bias_ih, "bias_hh": bias_hh}
                hidden = _fused_single_layer(rnn, layout, weights, x.shape[-1])(x)[0]
                runs.append(LayerRun(layer, direction, x, F.linear(x, weight_ih, bias_ih), hidden, weight_hh,
                                     bias_hh))
                outputs_in_time_order.append(hidden.flip(1) if direction else hidden)
            layer_input = torch.cat(outputs_in_time_order, dim=-1)
        h_n = torch.stack([run.hidden[:, -1] for run in runs])
    return runs, layer_input, h_n


def linear_scan(values: Tensor, carry: Tensor, reverse: bool = False) -> Tensor:
    """Solve the elementwise first-order recurrence along dim 1.

    Forward: ``y_k = values_k + carry_k * y_{k-1}`` with ``y_{-1} = 0``.
    Reverse: ``y_k = values_k + carry_{k+1} * y_{k+1}`` with ``y_T = 0``.

    Args:
        values: ``(B, T, H)``.
        carry: ``(B, T, H)``, coefficients aligned with the step they leave
            (forward) or enter from (reverse), as written above.

    Returns:
        ``(B, T, H)``, the sequence ``y``.
    """
    steps = values.shape[1]
    out: list[Tensor] = [values[:, 0]] * steps
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    previous: Tensor | None = None
    for k in order:
        if previous is None:
            previous = values[:, k]
        else:
            coefficient = carry[:, k + 1] if reverse else carry[:, k]
            previous = values[:, k] + coefficient * previous
        out[k] = previous
    return torch.stack(out, dim=1)


def gate_activations(layout: CellLayout, run: LayerRun) -> tuple[dict[str, Tensor], Tensor | None]:
    """Reconstruct the gates of one layer-direction from its hidden sequence.

    The recurrent half of the pre-activations, ``W_hh h_{k-1} + b_hh``, is one
    batched matrix product over the hidden sequence shifted by one step
    (``h_{-1} = 0``); only the LSTM cell state needs an elementwise scan.

    Args:
        layout: the cell's gate layout.
        run: the layer-direction, with ``projected`` and ``hidden`` filled.

    Returns:
        ``(gates, cell)``: ``gates`` maps each name of ``layout.gates`` to its
        ``(B, T, H)`` activations in processing order (empty for plain RNNs);
        ``cell`` is the LSTM cell sequence ``c_k``, ``(B, T, H)``, or ``None``.
    """
    if not layout.gates:
        return {}, None
    hidden = run.hidden
    previous = torch.cat([torch.zeros_like(hidden[:, :1]), hidden[:, :-1]], dim=1)
    recurrent = dict(zip(layout.chunks, F.linear(previous, run.weight_hh, run.bias_hh).chunk(layout.num_chunks, -1)))
    projected = dict(zip(layout.chunks, run.projected.chunk(layout.num_chunks, -1)))
    gates: dict[str, Tensor] = {}
    # Chunks scaled by another gate come after that gate in PyTorch's order,
    # so one pass in chunk order suffices.
    for name, activation in zip(layout.chunks, layout.activations):
        term = recurrent[name]
        if layout.reset_scaled is not None and layout.reset_scaled[0] == name:
            term = gates[layout.reset_scaled[1]] * term
        gates[name] = _ACTIVATIONS[activation](projected[name] + term)

    cell = None
    if layout.cell_forget is not None:
        assert layout.cell_input is not None and layout.cell_candidate is not None
        cell = linear_scan(
            gates[layout.cell_input] * gates[layout.cell_candidate], gates[layout.cell_forget]
        )
    return {name: gates[name] for name in layout.gates}, cell
