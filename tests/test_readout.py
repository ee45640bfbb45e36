"""model.readout: what a once-per-sequence head reads (last, all, mean), and what the gradient probes differentiate
under each: always the loss at the position each direction reaches last, through the recurrence alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rnnbench.data.task import Task
from rnnbench.diagnostics.measures.gradient_flow import state_derivatives
from rnnbench.errors import ConfigError
from rnnbench.models.cells import CELLS
from rnnbench.models.sequence_model import READOUTS, SequenceModel

T, FEATURES, CLASSES, H = 7, 3, 4, 5
CLASSIFY = Task(name="classify", input_kind="real", input_size=FEATURES, output_size=CLASSES, per_step=False,
                loss="cross_entropy", metric="accuracy", causal=False, seq_len=T, baseline_loss=1.0)
PER_STEP = Task(name="per_step", input_kind="real", input_size=FEATURES, output_size=1, per_step=True, loss="mse",
                metric="mse", causal=False, seq_len=T, baseline_loss=1.0)


def batch(seed: int = 0, size: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(size, T, FEATURES, generator=g, dtype=torch.float64)
    return inputs, torch.randint(0, CLASSES, (size,), generator=g), torch.tensor([7, 5, 3, 7, 1, 6][:size])


def model(readout: str, bidirectional: bool = False, cell: str = "gru", seed: int = 0) -> SequenceModel:
    torch.manual_seed(seed)
    return SequenceModel(CLASSIFY, cell, hidden_size=H, bidirectional=bidirectional, readout=readout).double()


def stack_output(net: SequenceModel, inputs: torch.Tensor, lengths: torch.Tensor | None):
    output, final = net.stack(net.encode(inputs), lengths)
    return output, final[0]


@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_heads_read_what_the_readout_says(bidirectional):
    inputs, _, lengths = batch()
    directions = 2 if bidirectional else 1
    for readout in READOUTS:
        net = model(readout, bidirectional)
        features = {"last": directions * H, "all": T * directions * H, "mean": directions * H}[readout]
        assert net.head.in_features == features
        assert net.parameters_count == sum(p.numel() for p in net.parameters())
        output, h_n = stack_output(net, inputs, lengths)
        valid = (torch.arange(T)[None, :] < lengths[:, None]).double()[..., None]
        if readout == "all":  # padding zeroed, then every step flattened
            expected = net.head((output * valid).flatten(1))
        elif readout == "mean":  # over each sequence's own steps
            expected = net.head((output * valid).sum(1) / lengths[:, None].double())
        else:
            expected = net.head(torch.cat([h_n[d] for d in range(-directions, 0)], dim=1))
        torch.testing.assert_close(net(inputs, lengths), expected, rtol=0, atol=1e-12)


def test_a_shorter_batch_reads_as_if_padded_to_the_task_length():
    inputs, _, _ = batch()
    net = model("all")
    short = inputs[:, :4]
    padded = torch.cat([short, torch.zeros(len(short), T - 4, FEATURES, dtype=torch.float64)], dim=1)
    lengths = torch.full((len(short),), 4)
    torch.testing.assert_close(net(short, lengths), net(padded, lengths), rtol=0, atol=1e-12)


def _probe(net: SequenceModel, inputs, targets, lengths):
    return state_derivatives(net.stack, net.encode(inputs), net.probe_loss(targets, lengths), lengths=lengths)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_under_readout_all_the_probe_differentiates_the_loss_position_as_readout_last_does(cell, bidirectional):
    """A readout=all head whose weights are zero but at each direction's last-reached step, there equal to a
    readout=last head's, computes the same logits: its probe must give readout=last's derivatives exactly (a probe
    reading any other step would give zeros there)."""
    inputs, targets, _ = batch()
    last, every = model("last", bidirectional, cell), model("all", bidirectional, cell)
    every.stack.load_state_dict(last.stack.state_dict())
    directions = 2 if bidirectional else 1
    with torch.no_grad():
        weight = torch.zeros(CLASSES, T, directions, H, dtype=torch.float64)
        blocks = last.head.weight.reshape(CLASSES, directions, H)
        weight[:, T - 1, 0] = blocks[:, 0]
        if bidirectional:
            weight[:, 0, 1] = blocks[:, 1]  # the backward direction ends at step 1
        every.head.weight.copy_(weight.flatten(1))
        every.head.bias.copy_(last.head.bias)
    torch.testing.assert_close(every(inputs), last(inputs), rtol=0, atol=1e-12)
    for ours, reference in zip(_probe(every, inputs, targets, None), _probe(last, inputs, targets, None)):
        for name in ours:
            torch.testing.assert_close(ours[name], reference[name], rtol=0, atol=1e-12)
            assert reference[name].abs().max() > 0


@pytest.mark.parametrize("readout", ["all", "mean"])
def test_at_the_loss_position_the_probe_gradient_is_the_heads_closed_form(readout):
    """At each sequence's own last step, ∂ℓ/∂h = head weight block (mean: divided by the sequence's length) times
    softmax(z) - onehot(y): the head's path from that step alone, with the other steps' direct paths cut."""
    inputs, targets, lengths = batch()
    net = model(readout)
    logits = net(inputs, lengths)
    error = F.softmax(logits, dim=1) - F.one_hot(targets, CLASSES).double()  # (B, C)
    derivative = _probe(net, inputs, targets, lengths)[0]["h"]  # (B, T, H)
    rows = torch.arange(len(inputs))
    at_loss = derivative[rows, lengths - 1]
    if readout == "mean":
        expected = error @ net.head.weight / lengths[:, None].double()
    else:
        blocks = net.head.weight.reshape(CLASSES, T, H)[:, lengths - 1].permute(1, 0, 2)  # (B, C, H)
        expected = torch.einsum("bc,bch->bh", error, blocks)
    torch.testing.assert_close(at_loss, expected, rtol=0, atol=1e-12)
    # and the full gradient does differ: the head's direct paths to the earlier steps are not in the probe
    output, h_n = stack_output(net, inputs.requires_grad_(), lengths)
    full = torch.autograd.grad(CLASSIFY.probe_loss(net.readout(output, h_n, lengths), targets, lengths), output)[0]
    assert (full[rows, 0] - derivative[rows, 0]).abs().max() > 1e-6


@pytest.mark.parametrize("cell", list(CELLS))
def test_every_cell_trains_under_every_readout(cell):
    inputs, targets, lengths = batch(size=4)
    for readout in READOUTS:
        net = model(readout, cell=cell)
        loss = CLASSIFY.compute_loss(net(inputs, lengths[:4]), targets)
        loss.backward()
        assert torch.isfinite(loss) and all(p.grad is not None for p in net.head.parameters())


@pytest.mark.parametrize("readout, allowed", [("max", "one of last, all, mean"),
                                              ("all", "last for the per-step task 'per_step'")])
def test_a_readout_the_task_cannot_take_is_refused(readout, allowed):
    with pytest.raises(ConfigError) as error:
        SequenceModel(PER_STEP if readout == "all" else CLASSIFY, "gru", hidden_size=H, readout=readout)
    assert str(error.value).startswith(f"readout={readout!r} is not allowed: {allowed}")
