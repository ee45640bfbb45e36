"""The cells: every registered cell (and README's example) keeps the protocol; the built-ins' fused twins
compute exactly their step loops and PyTorch's modules; Greff's variants and the newer cells compute their
papers' equations; bad cells are refused by name."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnbench.data import AddingProblem
from rnnbench.errors import ConfigError
from rnnbench.models import LayerStack, SequenceModel
from rnnbench.models.cells import CELLS, Cell, protocol_problem
from rnnbench.models.cells.fused import fused_forward
from rnnbench.models.cells.lstm import LSTM

from cells_under_test import all_cells

torch.set_num_threads(1)
ALL = all_cells()
B, T, I, H = 3, 6, 4, 5


def stack_of(cls, layers=1, bidirectional=False, seed=0, **options):
    torch.manual_seed(seed)
    return LayerStack(cls, I, H, layers, bidirectional, **options).double()


@pytest.mark.parametrize("name", list(ALL))
def test_every_cell_keeps_the_protocol_and_runs_every_shape(name):
    cls = ALL[name]
    cell = cls(I, H)
    assert protocol_problem(cell) is None
    assert cell.state_names[0] == "h"
    state = cell.initial_state(B)
    assert len(state) == len(cell.state_names) and all(s.shape == (B, H) and not s.any() for s in state)
    for _ in range(4):  # several steps: gates stay in [0, 1] and states keep their shapes
        state, gates = cell.step(torch.randn(B, I) * 3, state)
        assert all(s.shape == (B, H) and torch.isfinite(s).all() for s in state)
        assert all(g.shape == (B, H) and bool(((g >= 0) & (g <= 1)).all()) for g in gates.values())
    stack = LayerStack(cls, I, H, 2, True)
    output, final = stack(torch.randn(B, T, I))
    assert output.shape == (B, T, 2 * H) and len(final) == len(cell.state_names)
    assert all(f.shape == (4, B, H) for f in final)


@pytest.mark.parametrize("name", list(ALL))
def test_the_stack_runs_each_cell_as_its_step_says(name):
    """The stack's step-by-step forward equals a plain loop over ``cell.step`` (the protocol's form, not the
    speed hooks), every layer and direction, in float64."""
    stack = stack_of(ALL[name], layers=2, bidirectional=True)
    x = torch.randn(B, T, I, dtype=torch.float64)
    layer_input, finals = x, []
    for layer in range(2):
        outputs = []
        for direction in range(2):
            cell = stack.cells[2 * layer + direction]
            state, hidden = cell.initial_state(B, dtype=torch.float64), []
            for t in (range(T - 1, -1, -1) if direction else range(T)):
                state, _ = cell.step(layer_input[:, t], state)
                hidden.append(state[0])
            finals.append(state)
            outputs.append(torch.stack(hidden[::-1] if direction else hidden, dim=1))
        layer_input = torch.cat(outputs, dim=-1)
    output, final = stack(x, step_by_step=True)
    torch.testing.assert_close(output, layer_input, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(final[0], torch.stack([s[0] for s in finals]), rtol=1e-12, atol=1e-12)


FUSED = [("rnn", {"nonlinearity": "tanh"}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {}), ("gru", {})]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("name,options", FUSED, ids=["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_fused_twin_equals_the_step_loop(name, options, layers, bidirectional):
    stack = stack_of(CELLS[name], layers, bidirectional, **options)
    assert stack.fused_kind == (f"rnn_{options['nonlinearity']}" if name == "rnn" else name)
    x = torch.randn(B, T, I, dtype=torch.float64)
    fused_output, fused_final = stack(x)
    loop_output, loop_final = stack(x, step_by_step=True)
    assert (fused_output - loop_output).abs().max() <= 1e-6 * loop_output.abs().max()
    for fused, loop in zip(fused_final, loop_final, strict=True):
        assert (fused - loop).abs().max() <= 1e-6 * loop.abs().max()


@pytest.mark.parametrize("name,module", [("rnn", nn.RNN), ("lstm", nn.LSTM), ("gru", nn.GRU)])
def test_built_ins_start_from_and_compute_what_pytorch_modules_do(name, module):
    """Same seed, same weights as ``nn.LSTM`` & co. (so a seed means what it meant before the cells), and the
    same outputs, the fused kernel called on the cells' own parameters."""
    torch.manual_seed(7)
    reference = module(I, H, 2, batch_first=True, bidirectional=True)
    torch.manual_seed(7)
    stack = LayerStack(CELLS[name], I, H, 2, True)
    theirs = [p for p in reference.parameters()]
    ours = [p for c in stack.cells for p in (c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh)]
    assert all(torch.equal(a, b) for a, b in zip(theirs, ours, strict=True))
    x = torch.randn(B, T, I)
    expected_output, expected_state = reference(x)
    output, final = stack(x)
    torch.testing.assert_close(output, expected_output)
    expected_final = expected_state if isinstance(expected_state, tuple) else (expected_state,)
    for ours_state, theirs_state in zip(final, expected_final, strict=True):
        torch.testing.assert_close(ours_state, theirs_state)
    weights = list(reference._flat_weights)
    kind = "rnn_tanh" if name == "rnn" else name
    torch.testing.assert_close(fused_forward(kind, x, weights, 2, True, 0.0, False)[0], expected_output)


def test_a_subclass_runs_its_own_step_never_the_fused_twin():
    class Doubled(LSTM):
        def step(self, x_t, state):
            (h, c), gates = super().step(x_t, state)
            return (2 * h, c), gates

    stack = stack_of(Doubled)
    assert stack.fused_kind is None and not stack.cells[0].has_input_projection
    x = torch.randn(B, T, I, dtype=torch.float64)
    plain = stack_of(LSTM)
    assert not torch.allclose(stack(x)[0], plain(x)[0])


def copy_shared(source: Cell, target: Cell) -> None:
    """Copy the parameters the two cells share by name and shape."""
    theirs = dict(source.named_parameters())
    with torch.no_grad():
        for name, parameter in target.named_parameters():
            if name in theirs and theirs[name].shape == parameter.shape:
                parameter.copy_(theirs[name])


def one_step(cell, x=None, state=None):
    torch.manual_seed(3)
    x = torch.randn(B, I, dtype=torch.float64) if x is None else x
    if state is None:
        state = tuple(torch.randn(B, H, dtype=torch.float64) for _ in cell.state_names)
    return x, state, *cell.step(x, state)


def test_peephole_lstm_is_pytorchs_lstm_plus_peepholes():
    torch.manual_seed(0)
    vanilla, plain = CELLS["lstm_peephole"](I, H).double(), CELLS["lstm"](I, H).double()
    copy_shared(plain, vanilla)
    x, state, (h, c), gates = one_step(vanilla)
    with torch.no_grad():
        vanilla.weight_ch.zero_()
    assert vanilla.weight_ch.shape == (3 * H,)
    _, _, expected, expected_gates = one_step(plain, x, state)
    _, _, without, _ = one_step(vanilla, x, state)
    torch.testing.assert_close(without[0], expected[0])
    assert not torch.allclose(h, expected[0])  # the peepholes did something
    # PyTorch's own cell agrees with the lstm cell
    reference = nn.LSTMCell(I, H, dtype=torch.float64)
    copy_shared(plain, reference)
    torch.testing.assert_close(reference(x, state)[0], expected[0])


@pytest.mark.parametrize("name,check", [
    ("lstm_nog", lambda s0, s1, g: "output" not in g and torch.allclose(s1[0], torch.tanh(s1[1]))),
    ("lstm_noaf", lambda s0, s1, g: torch.allclose(s1[0], g["output"] * s1[1])),
    ("lstm_cifg", lambda s0, s1, g: torch.allclose(g["forget"], 1 - g["input"])),
    ("lstm_fgr", lambda s0, s1, g: all(torch.equal(s1[2 + k], g[n]) for k, n in enumerate(("input", "forget", "output")))),
])
def test_greff_variants_change_what_their_names_say(name, check):
    cell = CELLS[name](I, H).double()
    _, state, new_state, gates = one_step(cell)
    assert check(state, new_state, gates)


@pytest.mark.parametrize("name,missing", [("lstm_nig", "input"), ("lstm_nfg", "forget"), ("lstm_nog", "output")])
def test_a_removed_gate_is_the_vanilla_lstms_gate_held_open(name, missing):
    """NIG/NFG/NOG equal V (lstm_peephole) with their weights and that gate fixed at 1 (bias 1e3, sigma = 1.0)."""
    torch.manual_seed(0)
    variant, vanilla = CELLS[name](I, H).double(), CELLS["lstm_peephole"](I, H).double()
    assert missing not in variant.blocks and len(variant.blocks) == 3
    with torch.no_grad():
        for parameter in vanilla.parameters():
            parameter.zero_()
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            ours = dict(zip(variant.blocks, getattr(variant, kind).chunk(3)))
            for block, rows in zip(vanilla.blocks, getattr(vanilla, kind).chunk(4)):
                if block in ours:
                    rows.copy_(ours[block])
                elif kind == "bias_ih":
                    rows.fill_(1e3)
        ours = dict(zip(variant.peephole_gates, variant.weight_ch.chunk(2)))
        for gate, rows in zip(vanilla.peephole_gates, vanilla.weight_ch.chunk(3)):
            if gate in ours:
                rows.copy_(ours[gate])
    x, state, expected, _ = one_step(vanilla)
    _, _, actual, gates = one_step(variant, x, state)
    assert missing not in gates
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_no_forget_gate_accumulates_and_no_input_activation_is_unbounded():
    cell = CELLS["lstm_nfg"](I, H).double()
    with torch.no_grad():  # input gate and block input fixed: c grows by i * z every step, never forgets
        cell.weight_ih.zero_(), cell.weight_hh.zero_(), cell.weight_ch.zero_(), cell.bias_hh.zero_()
        cell.bias_ih.copy_(torch.cat([torch.zeros(H), torch.full((H,), 10.0), torch.zeros(H)]))
    state = cell.initial_state(1, dtype=torch.float64)
    for _ in range(5):
        state, _ = cell.step(torch.zeros(1, I, dtype=torch.float64), state)
    torch.testing.assert_close(state[1], torch.full((1, H), 5 * 0.5 * torch.tanh(torch.tensor(10.0)).item(),
                                                    dtype=torch.float64))
    niaf = CELLS["lstm_niaf"](I, H).double()
    _, _, (h, c), gates = one_step(niaf, x=torch.full((B, I), 50.0, dtype=torch.float64))
    assert c.abs().max() > 1.5  # no tanh on the block input: one step can carry |i z| > 1


def test_cifg_and_nfg_refuse_a_forget_bias():
    task = AddingProblem(seq_len=5).task
    for name in ("lstm_cifg", "lstm_nfg", "gru", "mingru"):
        with pytest.raises(ConfigError) as error:
            SequenceModel(task, cell=name, forget_bias=1.0)
        assert error.value.setting == "forget_bias"
    model = SequenceModel(task, cell="lstm_peephole", hidden_size=H, forget_bias=2.0)
    cell = model.stack.cells[0]
    forget = cell.blocks.index("forget")
    torch.testing.assert_close((cell.bias_ih + cell.bias_hh).chunk(4)[forget], torch.full((H,), 2.0))


def test_minimal_and_independent_cells_compute_their_papers_equations():
    torch.manual_seed(0)
    cell = CELLS["mingru"](I, H).double()
    x, (h,), (new_h,), gates = one_step(cell)
    z_pre, candidate = torch.nn.functional.linear(x, cell.weight_ih, cell.bias_ih).chunk(2, -1)
    torch.testing.assert_close(new_h, (1 - torch.sigmoid(z_pre)) * h + torch.sigmoid(z_pre) * candidate)
    cell = CELLS["minlstm"](I, H).double()
    _, _, _, gates = one_step(cell)
    torch.testing.assert_close(gates["forget"] + gates["input"], torch.ones(B, H, dtype=torch.float64))
    cell = CELLS["indrnn"](I, H).double()
    x, (h,), (new_h,), _ = one_step(cell)
    torch.testing.assert_close(new_h, torch.relu(x @ cell.weight_ih.T + cell.bias_ih + cell.weight_hh * h))
    assert cell.weight_hh.shape == (H,) and bool(((cell.weight_hh >= 0) & (cell.weight_hh <= 1)).all())
    cell = CELLS["mgu"](I, H).double()
    x, (h,), (new_h,), gates = one_step(cell)
    x_f, x_h = torch.nn.functional.linear(x, cell.weight_ih, cell.bias_ih).chunk(2, -1)
    w_f, w_h = cell.weight_hh.chunk(2)
    f = torch.sigmoid(x_f + h @ w_f.T)
    torch.testing.assert_close(gates["forget"], f)
    torch.testing.assert_close(new_h, (1 - f) * h + f * torch.tanh(x_h + (f * h) @ w_h.T))


@pytest.mark.parametrize("kind", ["orthogonal", "identity"])
@pytest.mark.parametrize("name", ["rnn", "lstm", "gru", "mgu", "lstm_cifg"])
def test_recurrent_init_acts_on_every_weight_hh_block(name, kind):
    model = SequenceModel(AddingProblem(seq_len=5).task, cell=name, hidden_size=8, recurrent_init=kind)
    cell = model.stack.cells[0]
    for block in cell.weight_hh.chunk(cell.weight_hh.shape[0] // 8):
        if kind == "orthogonal":
            torch.testing.assert_close(block @ block.T, torch.eye(8), atol=1e-5, rtol=0)
        else:
            assert torch.equal(block, torch.eye(8))
    if kind == "identity":
        assert all(not p.any() for n, p in cell.named_parameters() if n.startswith("bias"))


def test_irnn_and_what_recurrent_init_refuses():
    task = AddingProblem(seq_len=5).task
    irnn = SequenceModel(task, cell="rnn", nonlinearity="relu", recurrent_init="identity", hidden_size=4)
    assert irnn.stack.fused_kind == "rnn_relu" and torch.equal(irnn.stack.cells[0].weight_hh, torch.eye(4))
    indrnn = SequenceModel(task, cell="indrnn", recurrent_init="identity", hidden_size=4)
    assert torch.equal(indrnn.stack.cells[0].weight_hh, torch.ones(4))
    for name, kind in (("mingru", "orthogonal"), ("minlstm", "identity"), ("indrnn", "orthogonal")):
        with pytest.raises(ConfigError) as error:
            SequenceModel(task, cell=name, recurrent_init=kind)
        assert error.value.setting == "recurrent_init" and name in error.value.allowed
