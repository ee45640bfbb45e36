"""Variable-length sequences: a padded batch computes exactly what each of its sequences computes alone, for
every cell (the registry's and README's example), 1-3 layers, both directions, fused and step by step: outputs,
final states, the loss, every parameter's gradient and the gradient-through-time curves (float64, 1e-6); and the
batches that keep padding small serve every sequence once per epoch, in an order a resumed run continues."""

from __future__ import annotations

import pytest
import torch

from rnnbench.data.base import LengthBucketedBatches, ResumableBatches, first_samples, padded_steps
from rnnbench.data.task import Task
from rnnbench.diagnostics.measures.gates import gate_statistics
from rnnbench.diagnostics.measures.gradient_flow import gradient_through_time
from rnnbench.models import SequenceModel

from cells_under_test import all_cells

torch.set_num_threads(1)
ALL = all_cells()
I, H, C = 3, 4, 2
LENGTHS = torch.tensor([6, 2, 4, 1])  # the longest first and last-but-one, a one-step sequence among them


def task(per_step: bool) -> Task:
    """A per-step task of independent binary outputs (the music task's loss), or a once-per-sequence classifier."""
    return Task(name="t", input_kind="real", input_size=I, output_size=C, per_step=per_step,
                loss="bernoulli" if per_step else "cross_entropy", metric="nll" if per_step else "accuracy",
                causal=False, seq_len=int(LENGTHS.max()), baseline_loss=1.0)


def batch(per_step: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(len(LENGTHS), int(LENGTHS.max()), I, generator=generator, dtype=torch.float64)
    inputs[torch.arange(inputs.shape[1]) >= LENGTHS[:, None]] = 7.0  # padding that would change every result
    if per_step:
        targets = (torch.rand(*inputs.shape[:2], C, generator=generator) < 0.5).double()
    else:
        targets = torch.randint(0, C, (len(LENGTHS),), generator=generator)
    return inputs, targets


def model_of(name: str, layers: int, bidirectional: bool, per_step: bool) -> SequenceModel:
    torch.manual_seed(0)
    return SequenceModel(task(per_step), cell=name, hidden_size=H, num_layers=layers,
                         bidirectional=bidirectional).double()


def loss_and_gradients(model: SequenceModel, inputs, targets, lengths=None):
    model.zero_grad()
    loss = model.task.compute_loss(model(inputs, lengths), targets, reduction="sum", lengths=lengths)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def flow(model: SequenceModel, inputs, targets, lengths=None):
    return gradient_through_time(model.stack, model.encode(inputs).detach(), lambda output, h_n: model.task.probe_loss(
        model.readout(output, h_n), targets, lengths), lengths=lengths)


def alone(tensor: torch.Tensor, b: int, per_step: bool = True) -> torch.Tensor:
    return tensor[b:b + 1, :LENGTHS[b]] if per_step else tensor[b:b + 1]


@pytest.mark.parametrize("per_step", [True, False], ids=["per_step", "once"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("name", list(ALL))
def test_a_padded_batch_computes_what_each_sequence_computes_alone(name, layers, bidirectional, per_step):
    model = model_of(name, layers, bidirectional, per_step)
    inputs, targets = batch(per_step)
    paths = [False, True] if model.stack.fused_kind else [True]
    for step_by_step in paths:
        output, final = model.stack(model.encode(inputs), LENGTHS, step_by_step=step_by_step)
        for b in range(len(LENGTHS)):
            own_output, own_final = model.stack(model.encode(alone(inputs, b)), step_by_step=step_by_step)
            torch.testing.assert_close(output[b:b + 1, :LENGTHS[b]], own_output, rtol=1e-6, atol=1e-9)
            assert not output[b, LENGTHS[b]:].any()  # padding outputs zeros, as pad_packed_sequence gives
            for state, own in zip(final, own_final):
                torch.testing.assert_close(state[:, b:b + 1], own, rtol=1e-6, atol=1e-9)
    loss, gradients = loss_and_gradients(model, inputs, targets, LENGTHS)
    own = [loss_and_gradients(model, alone(inputs, b), alone(targets, b, per_step)) for b in range(len(LENGTHS))]
    torch.testing.assert_close(loss, sum(o[0] for o in own), rtol=1e-6, atol=1e-9)
    for number, gradient in enumerate(gradients):
        torch.testing.assert_close(gradient, sum(o[1][number] for o in own), rtol=1e-6, atol=1e-9)
    # the gradient through time: at distance d, the mean over the sequences that have it of their own norms
    padded = flow(model, inputs, targets, LENGTHS)
    flows = [flow(model, alone(inputs, b), alone(targets, b, per_step)) for b in range(len(LENGTHS))]
    steps = int(LENGTHS.max())
    for state, curve in padded.states.items():
        for d in range(steps):
            having = [f.states[state][..., int(LENGTHS[b]) - 1 - d] for b, f in enumerate(flows) if LENGTHS[b] > d]
            torch.testing.assert_close(curve[..., steps - 1 - d], torch.stack(having).mean(dim=0), rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", list(ALL))
def test_gate_statistics_of_a_padded_batch_leave_the_padding_out(name):
    model = model_of(name, 1, True, True)
    inputs, _ = batch(True)
    padded = gate_statistics(model.stack, model.encode(inputs), 0.2, LENGTHS)
    # the same sequences, each alone, concatenated in time into one batch of one: the same steps, in one sequence
    for row in padded:
        assert set(row) >= {"h_saturated", "h_dead"}
    counts = LENGTHS.double()
    for key in padded[0]:
        if key.endswith("_saturated") or key.endswith("_mean"):
            own = [gate_statistics(model.stack, model.encode(alone(inputs, b)), 0.2)[0][key] for b in range(4)]
            expected = float((torch.tensor(own, dtype=torch.float64) * counts).sum() / counts.sum())
            assert padded[0][key] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_the_loss_ignores_padding_and_weighs_every_real_step_alike():
    model_task = task(True)
    predictions = torch.randn(2, 5, C, dtype=torch.float64)
    targets = (torch.rand(2, 5, C) < 0.5).double()
    lengths = torch.tensor([5, 2])
    loss = model_task.compute_loss(predictions, targets, lengths=lengths)
    per_step = torch.nn.functional.binary_cross_entropy_with_logits(predictions, targets, reduction="none").sum(-1)
    assert loss.item() == pytest.approx(float((per_step[0].sum() + per_step[1, :2].sum()) / 7), rel=1e-12)
    predictions[1, 2:] = 1e6  # padding's predictions change nothing
    assert model_task.compute_loss(predictions, targets, lengths=lengths).item() == pytest.approx(loss.item())


def test_music_metrics_are_frame_weighted_nll_and_frame_accuracy():
    """``nll`` is the mean over every real step of the split of the step's summed Bernoulli NLL, however the steps
    fall into batches; ``frame_accuracy`` is TP / (TP + FP + FN) over every step and key at 0.5."""
    model_task = task(True)
    generator = torch.Generator().manual_seed(3)
    batches = [(torch.randn(2, 4, C, generator=generator, dtype=torch.float64),
                (torch.rand(2, 4, C, generator=generator) < 0.5).double(), torch.tensor([4, 1])),
               (torch.randn(1, 3, C, generator=generator, dtype=torch.float64),
                (torch.rand(1, 3, C, generator=generator) < 0.5).double(), torch.tensor([3]))]
    metrics = model_task.make_metrics()
    assert list(metrics) == list(model_task.metric_names) == ["nll", "frame_accuracy"]
    nll, tp, fp, fn, frames = 0.0, 0, 0, 0, 0
    for predictions, targets, lengths in batches:
        model_task.update_metrics(metrics, predictions, targets, lengths)
        for b, length in enumerate(lengths.tolist()):
            p, y = torch.sigmoid(predictions[b, :length]), targets[b, :length]
            nll -= float((y * p.log() + (1 - y) * (1 - p).log()).sum())
            guess = p >= 0.5
            tp, fp, fn = tp + int((guess & (y == 1)).sum()), fp + int((guess & (y == 0)).sum()), \
                fn + int((~guess & (y == 1)).sum())
            frames += length
    assert metrics["nll"].compute().item() == pytest.approx(nll / frames, rel=1e-10)
    assert metrics["frame_accuracy"].compute().item() == pytest.approx(tp / (tp + fp + fn), rel=1e-6)


LENGTHS_OF_A_SET = torch.randint(10, 400, (229,), generator=torch.Generator().manual_seed(1))


def test_bucketed_batches_serve_every_sequence_once_with_little_padding():
    sampler = LengthBucketedBatches(LENGTHS_OF_A_SET, 16, torch.Generator().manual_seed(5))
    for _ in range(3):  # three epochs, each a new order
        epoch = sampler.epoch()
        assert sorted(i for b in epoch for i in b) == list(range(229)) and len(epoch) == len(sampler)
    naive = ResumableBatches(229, 16, torch.Generator().manual_seed(5)).epoch()
    ours = padded_steps(LENGTHS_OF_A_SET, LengthBucketedBatches(LENGTHS_OF_A_SET, 16,
                                                               torch.Generator().manual_seed(5)).epoch())
    theirs = padded_steps(LENGTHS_OF_A_SET, naive)
    assert ours["useful"] == theirs["useful"] == int(LENGTHS_OF_A_SET.sum())
    assert ours["processed"] / ours["useful"] < 1.1 < 1.3 < theirs["processed"] / theirs["useful"]
    evaluation = LengthBucketedBatches(LENGTHS_OF_A_SET, 16).epoch()  # fixed order, longest first
    firsts = [int(LENGTHS_OF_A_SET[b[0]]) for b in evaluation]
    assert firsts == sorted(firsts, reverse=True) and int(LENGTHS_OF_A_SET[evaluation[0][0]]) == \
        int(LENGTHS_OF_A_SET.max())


@pytest.mark.parametrize("served", [0, 7, 15, 40])
def test_bucketed_batches_resume_where_they_stopped(served):
    def fresh():
        return LengthBucketedBatches(LENGTHS_OF_A_SET, 16, torch.Generator().manual_seed(9))

    uninterrupted = fresh()
    whole = [b for _ in range(4) for b in iter(uninterrupted)][:60]
    resumed = fresh()
    resumed.skip(served)
    continued = [b for _ in range(4) for b in iter(resumed)][:60 - served]
    assert continued == whole[served:]


def test_the_probe_batch_is_cut_to_its_longest_sequence():
    inputs, targets = torch.zeros(4, 9, 2), torch.zeros(4, 9, 2)
    kept = first_samples((inputs, targets, torch.tensor([9, 5, 3, 2])), 3)
    assert [tuple(t.shape) for t in kept] == [(3, 9, 2), (3, 9, 2), (3,)]
    kept = first_samples((inputs, targets, torch.tensor([6, 5, 3, 2])), 2)
    assert [tuple(t.shape) for t in kept] == [(2, 6, 2), (2, 6, 2), (2,)]
    assert len(first_samples((inputs, targets), 2)) == 2
