"""The diagnostics callbacks in real training: counts checked against independent per-step measurements."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch

from rnnbench.data import AddingProblem
from rnnbench.diagnostics import GateMonitor, GradientFlowProbe, GradientNormMonitor
from rnnbench.diagnostics.gradient_flow import state_prefix
from rnnbench.diagnostics.measures.gradient_flow import gradient_through_time
from rnnbench.models import SequenceModel
from rnnbench.record.schema import Record
from rnnbench.job.divergence import DivergenceMonitor
from rnnbench.job.module import SequenceTaskModule

from cells_under_test import all_cells


def empty_record() -> Record:
    """A record for the instruments to fill (the job fills the rest)."""
    return Record(config={}, config_hash="", overrides=[], choices={}, output_dir="")


class IndependentNorms(pl.Callback):
    """The slow, obvious way: every step, every parameter's norm read to the host one by one."""

    def __init__(self):
        self.norms: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        squares = [p.grad.double().norm().item() ** 2 for p in pl_module.parameters() if p.grad is not None]
        self.norms.append(math.sqrt(sum(squares)))


def fit(cell="gru", steps=30, lr=0.01, clip=None, seq_len=12, callbacks=(), optimizer=torch.optim.Adam, **model):
    pl.seed_everything(0, verbose=False)
    data = AddingProblem(seq_len=seq_len, num_train=256, num_val=64, num_test=64, batch_size=32)
    module = SequenceTaskModule(SequenceModel(data.task, cell=cell, hidden_size=16, **model),
                                lambda params: optimizer(params, lr=lr))
    trainer = pl.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                         gradient_clip_val=clip, log_every_n_steps=5, callbacks=list(callbacks), accelerator="cpu")
    trainer.fit(module, datamodule=data)
    return trainer, module


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_clip_rate_and_norms_match_an_independent_count(cell):
    monitor, reference = GradientNormMonitor(), IndependentNorms()
    fit(cell=cell, steps=30, clip=0.3, callbacks=[monitor, reference])
    record = empty_record()
    monitor.record_into(record)
    section = record.gradients
    assert section["steps_measured"] == len(reference.norms) == 30
    assert section["clipped_steps"] == sum(n > 0.3 for n in reference.norms)
    assert section["clip_rate"] == pytest.approx(section["clipped_steps"] / 30)
    assert 0 < section["clipped_steps"] < 30  # the threshold sits inside the observed range
    assert section["max_norm"] == pytest.approx(max(reference.norms), rel=1e-6)
    assert section["final_norm"] == pytest.approx(reference.norms[-1], rel=1e-6)
    assert section["nonfinite"] == 0


def test_without_clipping_the_clip_rate_is_null_and_groups_are_logged():
    logged = {}

    class Capture(pl.loggers.Logger):
        name, version = "capture", 0

        def log_metrics(self, metrics, step=None):
            logged.setdefault(step, {}).update(metrics)

        def log_hyperparams(self, *args, **kwargs):
            pass

    monitor = GradientNormMonitor()
    pl.seed_everything(0, verbose=False)
    data = AddingProblem(seq_len=8, num_train=128, num_val=32, num_test=32, batch_size=32)
    module = SequenceTaskModule(SequenceModel(data.task, cell="lstm", hidden_size=8, num_layers=2, bidirectional=True),
                                lambda p: torch.optim.Adam(p, lr=0.01))
    # 4 batches an epoch: logging every 2 steps (not more than an epoch's batches) still logs at step 10
    pl.Trainer(max_steps=10, logger=Capture(), log_every_n_steps=2, callbacks=[monitor], enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
               accelerator="cpu").fit(module, datamodule=data)
    record = empty_record()
    monitor.record_into(record)
    assert record.gradients["clip_rate"] is None
    step = logged[10]
    groups = [f"grad/layer{l}/{d}/{w}" for l in (0, 1) for d in ("forward", "backward")
              for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert set(groups) <= set(step) and step["grad/norm_preclip"] == step["grad/norm_postclip"]
    # The groups cover the recurrent core; the total also holds the head: total >= the groups' norm.
    assert step["grad/norm_preclip"] >= math.sqrt(sum(step[g] ** 2 for g in groups)) > 0


def test_spikes_are_counted_against_the_running_median():
    monitor = GradientNormMonitor(spike_factor=10.0)
    for norm in [1.0] * 12 + [50.0, 1.2, 9.0, math.nan, 2.0]:
        monitor._count(norm, norm)
    assert monitor.spikes == 1 and monitor.nonfinite == 1 and monitor.last_finite_norm == 2.0
    assert monitor.max_norm == 50.0 and monitor.steps == 17


def test_divergence_is_counted_not_dropped():
    monitor, divergence = GradientNormMonitor(), DivergenceMonitor()
    trainer, _ = fit(cell="rnn", steps=40, lr=1e12, optimizer=torch.optim.SGD, nonlinearity="relu",
                     callbacks=[monitor, divergence])
    assert divergence.diverged_at_step is not None and trainer.global_step == divergence.diverged_at_step
    record = empty_record()
    monitor.record_into(record)
    assert record.gradients["nonfinite"] >= 1 and math.isfinite(record.gradients["last_finite_norm"])


def test_probes_run_at_start_cadence_and_end_and_match_the_direct_computation():
    flow, gates = GradientFlowProbe(every_n_steps=10, probe_size=16), GateMonitor(every_n_steps=10, probe_size=16)
    _, module = fit(cell="lstm", steps=25, callbacks=[flow, gates], num_layers=2)
    assert flow.probe_steps == gates.probe_steps == [0, 10, 20, 25]
    record = empty_record()
    flow.record_into(record)
    gates.record_into(record)
    layers = record.gradients["layers"]
    assert [(e["layer"], e["direction"]) for e in layers] == [(0, "forward"), (1, "forward")]
    # The last probe equals a direct computation on the final weights and the same batch.
    inputs, targets = flow.batch
    model = module.model
    direct = gradient_through_time(model.stack, model.encode(inputs).detach(),
                                   lambda out, h: model.task.probe_loss(model.readout(out, h), targets))
    assert layers[0]["vanishing_log10"] == pytest.approx(direct.vanishing_log10()[0, 0].item(), rel=1e-9)
    assert layers[1]["curve_last"] == pytest.approx(direct.hidden[1, 0].tolist(), rel=1e-9)
    assert len(layers[0]["curve_first"]) == 12 and layers[0]["cell_vanishing_log10"] is not None
    assert layers[0]["vanishing_log10_first"] != layers[0]["vanishing_log10"]  # training changed the curve
    assert [row["layer"] for row in record.gates] == [0, 1]
    assert 0 < record.gates[0]["forget_mean"] < 1
    # the first probe (initialisation) beside the last: the statistics of the initial weights on the probe batch
    assert gates.first is not gates.last and record.gates[0]["forget_mean_first"] != record.gates[0]["forget_mean"]
    from rnnbench.diagnostics.measures.gates import gate_statistics

    assert record.gates[1]["forget_mean"] == pytest.approx(
        gate_statistics(model.stack, model.encode(inputs).detach(), gates.saturation)[1]["forget_mean"], rel=1e-9)


def test_textbook_picture_at_initialisation_on_adding_t100():
    """Float64, hidden 128, PyTorch's default init, the adding problem at T=100: the tanh RNN's
    gradient vanishes by many orders over the sequence; a forget-gate bias keeps the LSTM's alive."""
    torch.manual_seed(0)
    task = AddingProblem(seq_len=100).task
    data = AddingProblem(seq_len=100, num_train=64, num_val=64, num_test=64)
    data.setup()
    inputs, targets = data.splits["val"]

    def vanishing(cell_state=False, **model_options):
        torch.manual_seed(0)
        model = SequenceModel(task, hidden_size=128, **model_options)
        flow = gradient_through_time(model.stack, model.encode(inputs),
                                     lambda out, h: task.probe_loss(model.readout(out, h), targets))
        return (flow.cell_vanishing_log10() if cell_state else flow.vanishing_log10())[0, 0].item()

    rnn, gru, lstm = vanishing(cell="rnn"), vanishing(cell="gru"), vanishing(cell="lstm")
    lstm_bias_1 = vanishing(cell="lstm", forget_bias=1.0, cell_state=True)
    lstm_bias_3 = vanishing(cell="lstm", forget_bias=3.0, cell_state=True)
    assert rnn < -10 and gru < -10 and lstm < -10
    assert lstm_bias_3 > -3 and lstm_bias_1 > lstm + 5
    orthogonal = vanishing(cell="rnn", recurrent_init="orthogonal")
    assert orthogonal > rnn  # an orthogonal W_hh loses less than PyTorch's uniform init


@pytest.mark.parametrize("cell", list(all_cells()))
def test_every_instrument_runs_on_every_cell(cell):
    """Real training, all three instruments, a bidirectional 2-layer stack: every number the record keeps is
    finite (strict JSON has no room for Infinity), named by the cell's own states, gates and parameters."""
    norms, flow, gates = GradientNormMonitor(), GradientFlowProbe(every_n_steps=5, probe_size=8), \
        GateMonitor(every_n_steps=5, probe_size=8)
    _, module = fit(cell=cell, steps=6, clip=1.0, seq_len=6, callbacks=[norms, flow, gates], num_layers=2,
                    bidirectional=True)
    record = empty_record()
    for instrument in (norms, flow, gates):
        instrument.record_into(record)
    stack = module.model.stack
    assert [(e["layer"], e["direction"]) for e in record.gradients["layers"]] == \
        [(0, "forward"), (0, "backward"), (1, "forward"), (1, "backward")]
    for entry in record.gradients["layers"]:
        for name in stack.state_names:
            prefix = state_prefix(name)
            for key in ("vanishing_log10", "vanishing_log10_first", "vanishing_log10_min", "reach"):
                assert math.isfinite(entry[prefix + key]), (name, key)
            assert len(entry[prefix + "curve_last"]) == 6
        assert entry["vanishing_log10_min"] <= min(0.0, entry["vanishing_log10"]) + 1e-9
        assert ("c" in stack.state_names) == (entry["cell_vanishing_log10"] is not None)
    _, step_gates = stack.cells[0].step(torch.zeros(1, 2), stack.cells[0].initial_state(1))
    for row in record.gates:
        assert {f"{g}_mean" for g in step_gates} | {"h_saturated", "h_dead"} <= set(row)
    assert math.isfinite(record.gradients["max_norm"]) and record.gradients["steps_measured"] == 6
    assert set(norms.named_groups[i][0] for i in range(len(norms.named_groups))) == {
        f"layer{l}/{d}/{p}" for l in (0, 1) for d in ("forward", "backward")
        for p, _ in stack.cells[0].named_parameters()}


def test_per_step_bidirectional_probe_measures_each_direction_against_the_loss_it_reaches_last():
    """Copy task, per-step head, two directions: the backward curve runs over every step (it used to be zero but
    one point, written as Infinity), and equals the direct computation against the loss at position 1."""
    from rnnbench.data import CopyMemory

    pl.seed_everything(0, verbose=False)
    data = CopyMemory(seq_len=4, num_train=64, num_val=32, num_test=32, batch_size=16)
    module = SequenceTaskModule(SequenceModel(data.task, cell="gru", hidden_size=8, bidirectional=True),
                                lambda p: torch.optim.Adam(p, lr=0.01))
    flow = GradientFlowProbe(every_n_steps=100, probe_size=8)
    pl.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, limit_val_batches=0, callbacks=[flow],
               accelerator="cpu").fit(module, datamodule=data)
    record = empty_record()
    flow.record_into(record)
    backward = record.gradients["layers"][1]
    assert backward["direction"] == "backward" and all(v > 0 for v in backward["curve_last"])
    inputs, targets = flow.batch
    model = module.model
    direct = gradient_through_time(model.stack, model.encode(inputs).detach(),
                                   lambda out, h: model.task.probe_loss(model.readout(out, h), targets))
    assert backward["curve_last"] == pytest.approx(direct.hidden[0, 1].tolist(), rel=1e-9)
    with torch.no_grad():
        per_position = model.task.probe_loss(model(inputs), targets)  # each sample's loss at each position
        summed = model.task.compute_loss(model(inputs), targets, reduction="sum")
    assert per_position.shape == inputs.shape[:2]
    assert float(per_position.sum()) == pytest.approx(float(summed), rel=1e-6)


def test_records_are_strict_json(tmp_path):
    import json

    from rnnbench.record.schema import write_json_atomic

    path = tmp_path / "result.json"
    write_json_atomic(path, {"a": math.inf, "b": [math.nan, 1.0, -math.inf], "c": torch.tensor(2.5), "d": "x"})
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text) == {"a": None, "b": [None, 1.0, None], "c": 2.5, "d": "x"}
