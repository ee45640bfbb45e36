"""What must hold on a GPU, run on the device ``--device`` names (cpu unless given; ``benchmarks/gpu_check.py`` runs
this file with ``--device cuda --run-slow`` on a lent GPU machine): the fused twins (cuDNN there) compute their
cells' step loops, padded and unpadded, outputs, final states and every gradient (float64, 1e-6); every cell runs on
the device as on the CPU; the gradient-through-time probe on the device equals the CPU probe of the same weights; a
4-job sweep on the device writes complete records. Here, on the CPU, also: no cell creates a tensor off its inputs'
device (checked on PyTorch's meta device), and the script's own tiny run (``test_script_*``, which the script
leaves out of its own test run) writes tables with a value in every cell."""

from __future__ import annotations

import copy
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from rnnbench.diagnostics.measures.gradient_flow import gradient_through_time
from rnnbench.models import LayerStack
from rnnbench.models.cells import CELLS, Cell
from rnnbench.record.schema import find_records, read_record

from cells_under_test import all_cells
from conftest import FAST, REPO, cli_env

torch.set_num_threads(1)
ALL = all_cells()
B, T, I, H = 4, 6, 3, 5
LENGTHS = torch.tensor([6, 2, 4, 1])  # the longest first, a one-step sequence among them
FUSED = [("rnn", {"nonlinearity": "tanh"}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {}), ("gru", {})]


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Largest difference over the largest magnitude of ``expected`` (both moved to the CPU)."""
    actual, expected = actual.detach().cpu(), expected.detach().cpu()
    scale = expected.abs().max()
    return float((actual - expected).abs().max() / (scale if scale > 0 else 1))


def inputs_of(padded: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, I, generator=generator, dtype=torch.float64)
    if not padded:
        return x, None
    x[torch.arange(T) >= LENGTHS[:, None]] = 7.0  # padding that would change every result if it were read
    return x, LENGTHS.clone()


def outputs_and_gradients(stack: LayerStack, x: torch.Tensor, lengths: torch.Tensor | None, step_by_step: bool):
    """``(output, final states, every parameter's gradient)`` of a loss reading the output and every final state."""
    stack.zero_grad(set_to_none=True)
    output, final = stack(x, lengths, step_by_step=step_by_step)
    weights = torch.Generator().manual_seed(5)
    loss = (output * torch.randn(output.shape, generator=weights, dtype=output.dtype).to(output.device)).sum()
    for state in final:
        loss = loss + (state * torch.randn(state.shape, generator=weights, dtype=state.dtype).to(state.device)).sum()
    loss.backward()
    return output.detach(), [s.detach() for s in final], [p.grad.detach().clone() for p in stack.parameters()]


def assert_same(ours, theirs, tolerance: float = 1e-6) -> None:
    (output, final, grads), (expected_output, expected_final, expected_grads) = ours, theirs
    assert relative_error(output, expected_output) <= tolerance
    assert len(final) == len(expected_final) and len(grads) == len(expected_grads)
    for state, expected in zip(final, expected_final):
        assert relative_error(state, expected) <= tolerance
    for grad, expected in zip(grads, expected_grads):
        assert relative_error(grad, expected) <= tolerance


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("name,options", FUSED, ids=["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_fused_twin_equals_the_step_loop_on_the_device(device, name, options, layers, bidirectional, padded):
    """On CUDA the fused path is cuDNN's RNN kernels (also in float64); the step loop is the cell's own ``step``."""
    torch.manual_seed(0)
    stack = LayerStack(CELLS[name], I, H, layers, bidirectional, **options).double().to(device)
    assert stack.fused_kind == (f"rnn_{options['nonlinearity']}" if name == "rnn" else name)
    x, lengths = inputs_of(padded)
    x = x.to(device)
    lengths = None if lengths is None else lengths.to(device)  # as Lightning moves a batch's lengths
    fused = outputs_and_gradients(stack, x, lengths, step_by_step=False)
    loop = outputs_and_gradients(stack, x, lengths, step_by_step=True)
    assert fused[0].device.type == device.type
    assert_same(fused, loop)
    if padded:
        assert not fused[0][torch.arange(T, device=device) >= lengths[:, None]].any()  # zeros at padding


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("name", list(ALL))
def test_every_cell_runs_on_the_device_as_on_the_cpu(device, name, padded):
    """Each cell's step loop (and, for the built-ins, their fused twin) on the device against the same weights on
    the CPU: a tensor a step creates on the CPU fails here on CUDA."""
    torch.manual_seed(0)
    on_cpu = LayerStack(ALL[name], I, H, 2, True).double()
    on_device = copy.deepcopy(on_cpu).to(device)
    x, lengths = inputs_of(padded, seed=1)
    for step_by_step in ([False, True] if on_cpu.fused_kind else [True]):
        expected = outputs_and_gradients(on_cpu, x, lengths, step_by_step)
        ours = outputs_and_gradients(on_device, x.to(device), None if lengths is None else lengths.to(device),
                                     step_by_step)
        assert_same(ours, expected)


class MakesACpuTensor(Cell):
    """A cell with the CUDA bug this file looks for: a tensor made on the CPU inside ``step``."""

    state_names = ("h",)

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.linear = nn.Linear(input_size + hidden_size, hidden_size)

    def step(self, x_t, state):
        (h,) = state
        return (torch.tanh(self.linear(torch.cat([x_t, h], dim=-1)) + torch.zeros(self.hidden_size)),), {}


@pytest.mark.parametrize("name", list(ALL))
def test_no_cell_makes_a_tensor_off_its_inputs_device(name):
    """A CPU-side check for CUDA's device errors: the stack (padded, step by step, backward included) and the probe
    run on PyTorch's meta device, where an operation mixing a CPU tensor with the inputs' fails as it would on CUDA."""
    torch.manual_seed(0)
    stack = LayerStack(ALL[name], I, H, 2, True).to("meta")
    x = torch.empty(B, T, I, device="meta", requires_grad=True)
    lengths = LENGTHS.to("meta")
    output, final = stack(x, lengths, step_by_step=True)
    (output.sum() + sum(state.sum() for state in final)).backward()
    assert output.device.type == "meta" and all(p.grad.device.type == "meta" for p in stack.parameters())
    flow = gradient_through_time(stack, x, lambda out, h_n: out.sum() + h_n.sum(), lengths=lengths)
    assert all(curve.device.type == "meta" for curve in flow.states.values())


def test_the_meta_check_finds_a_cell_that_makes_a_cpu_tensor():
    stack = LayerStack(MakesACpuTensor, I, H).to("meta")
    with pytest.raises(RuntimeError, match="device"):
        stack(torch.empty(B, T, I, device="meta"), step_by_step=True)


def probe(stack: LayerStack, x: torch.Tensor, lengths: torch.Tensor | None):
    """The probe with a once-per-sequence head that reads the output and the final states."""
    torch.manual_seed(3)
    head = nn.Linear(stack.num_directions * H, 2).double().to(x.device)
    target = torch.randn(B, 2, dtype=torch.float64).to(x.device)

    def readout(output: torch.Tensor, h_n: torch.Tensor) -> torch.Tensor:
        top = h_n[-stack.num_directions:].transpose(0, 1).reshape(B, -1)
        return ((head(top) + torch.tanh(head(output)).mean(dim=1) - target) ** 2).sum()

    return gradient_through_time(stack, x, readout, lengths=lengths)


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("name", list(ALL))
def test_the_probe_on_the_device_equals_the_cpu_probe(device, name, padded):
    torch.manual_seed(0)
    on_cpu = LayerStack(ALL[name], I, H, 2, True).double()
    on_device = copy.deepcopy(on_cpu).to(device)
    x, lengths = inputs_of(padded, seed=2)
    expected = probe(on_cpu, x, lengths)
    ours = probe(on_device, x.to(device), None if lengths is None else lengths.to(device))
    assert set(ours.states) == set(expected.states) == set(on_cpu.state_names)
    for state, curve in ours.states.items():
        assert curve.device.type == device.type
        assert (expected.states[state] > 0).all()
        torch.testing.assert_close(curve.cpu(), expected.states[state], rtol=1e-6, atol=0)


@pytest.mark.slow
def test_a_sweep_on_the_device_writes_complete_records(device, rnnbench_cli, tmp_path):
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    result = rnnbench_cli("train", "-m", "model.cell=lstm,gru", "seed=0,1", "data.seq_len=10", *FAST,
                          f"trainer.accelerator={accelerator}", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert result.returncode == 0, result.stderr[-3000:]
    paths = find_records(tmp_path / "sweep")
    assert len(paths) == 4
    for path in paths:
        record = read_record(path)
        assert record["status"] == "completed" and record["error"] is None
        assert record["device"].startswith(device.type)
        assert record["steps"] == 40 and record["finished_at"] and record["progress"] is None
        for name in ("test/loss", "test/mse", "val/mse", "best/val/mse"):
            assert math.isfinite(record["metrics"][name]), name
        assert record["throughput"]["tokens_per_second"] > 0
        gradients = record["gradients"]
        assert gradients["steps_measured"] == 40 and math.isfinite(gradients["final_norm"])
        assert all(math.isfinite(layer["vanishing_log10"]) for layer in gradients["layers"])
        assert record["gates"] and record["wandb"]["mode"] == "offline"
        assert (path.parent / "csv" / "metrics.csv").is_file()


# --------------------------------------------------------------------------- the script itself, tiny, on the CPU

SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def run_script(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--output", str(tmp_path),
                           *arguments], cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def read_rows(tmp_path: Path, section: str) -> list[dict[str, str]]:
    with open(tmp_path / "gpu.csv", newline="") as f:
        return [row for row in csv.DictReader(f) if row["section"] == section]


def positive(value: str) -> bool:
    return math.isfinite(float(value)) and float(value) > 0


def test_script_times_the_cells_and_determinism_on_the_cpu(tmp_path):
    from benchmarks.gpu_check import CELL_VARIANTS, DETERMINISM_MODELS, QUICK

    run_script(tmp_path, "--parts", "cells,determinism")
    cells = read_rows(tmp_path, "cells")
    assert [(int(r["B"]), int(r["H"]), int(r["T"]), r["variant"]) for r in cells] == \
        [(*size, variant) for size in QUICK.sizes() for variant in CELL_VARIANTS]
    for row in cells:
        assert positive(row["ms_per_step"]) and positive(row["tokens_per_s"]) and positive(row["ratio"])
        assert positive(row["first_step_s"])
    assert all(float(r["ratio"]) == 1.0 for r in cells if r["variant"] == CELL_VARIANTS[0])
    determinism = read_rows(tmp_path, "determinism")
    assert [r["variant"] for r in determinism] == [f"{model}; {setting}" for setting in ("torch defaults",
                                                                                         "deterministic")
                                                   for model in DETERMINISM_MODELS]
    for row in determinism:
        assert positive(row["ms_per_step"]) and positive(row["ratio"])
        assert row["note"].startswith("bitwise repeatable: yes")  # the CPU is deterministic either way
    markdown = (tmp_path / "gpu.md").read_text()
    assert markdown.startswith("# rnnbench on CPU")
    for expected in (f"| torch | {torch.__version__} |", "| cuDNN |", "| pytorch-lightning |", "/ fused",
                     "plain-form cell + model.compile", "deterministic algorithms=False",
                     "bitwise repeatable: yes", "Not run (`--parts` left them out)."):
        assert expected in markdown, expected
    assert "## Failed" not in markdown and "## Not measured" not in markdown


def test_script_runs_its_tests_part_and_counts_them(tmp_path):
    run_script(tmp_path, "--parts", "tests", "--select", "test_fused_twin_equals_the_step_loop_on_the_device and lstm")
    markdown = (tmp_path / "gpu.md").read_text()
    assert "8 passed, 0 failed, 0 skipped" in markdown  # lstm: 1-2 layers x 1-2 directions x padded or not
    assert "tests/test_gpu_check.py --device cpu --run-slow" in (tmp_path / "gpu_log.txt").read_text()


@pytest.mark.slow
def test_script_compares_rnnbench_with_a_hand_written_loop_on_the_cpu(tmp_path):
    from benchmarks.gpu_check import HARNESS_VARIANTS, QUICK

    run_script(tmp_path, "--parts", "harness")
    rows = read_rows(tmp_path, "harness")
    assert [(int(r["B"]), int(r["H"]), int(r["T"]), r["variant"]) for r in rows] == \
        [(*size, variant) for size in QUICK.sizes() for variant in HARNESS_VARIANTS]
    for row in rows:
        assert positive(row["ms_per_step"]) and positive(row["tokens_per_s"]) and positive(row["ratio"])
    assert all("device cpu" in r["note"] for r in rows if r["variant"] == HARNESS_VARIANTS[1])
    assert "## rnnbench's default run against a hand-written loop" in (tmp_path / "gpu.md").read_text()


def test_the_longer_sequences_compile_last_if_they_fit_and_the_sweep_covers_every_size(tmp_path):
    from benchmarks.gpu_check import FULL, QUICK, Budget, Report, compile_later, plan_compilations, sweep_overrides
    from benchmarks.throughput import Case

    now, later = plan_compilations(FULL.sizes())
    assert {t for _, _, t in now} == {50} and {t for _, _, t in later} == {500} and len(now) == len(later) == 4
    report = Report(tmp_path, {"device name": "CPU"}, "gpu_check.py")
    compile_later([((4, 8, 50), 500.0)], torch.device("cpu"), QUICK, report, Budget(100))
    assert report.rows == [] and "model.compile at B=4 H=8 T=50" in (tmp_path / "gpu.md").read_text()
    report.running = "model.compile at B=4 H=8 T=50"
    report.write()
    assert "## Running when these tables were written" in (tmp_path / "gpu.md").read_text()
    lines = sweep_overrides(Case(data="adding", batch=32, hidden=128, seq_len=50, clip=None),
                            {"data.batch_size": (32, 256), "model.hidden_size": (128, 512), "data.seq_len": (50, 500)})
    assert {"data.batch_size=32,256", "model.hidden_size=128,512", "data.seq_len=50,500", "data=adding"} <= set(lines)
    assert json.dumps(lines).count("=") == len(lines)  # one value setting per line, nothing repeated


def test_the_carried_wheels_and_the_image_cover_everything_rnnbench_needs():
    """rnnbench's requirements, closed over as installed here (markers for the GPU machine's Python 3.12), are each
    in the GPU image or among the wheels benchmarks/gpu_wheels.sh carries: a new dependency must be added there."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    def names(mode: str) -> list[str]:
        listed = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_wheels.sh"), mode], capture_output=True,
                                text=True, check=True).stdout.split()
        return [canonicalize_name(line.split("==")[0]) for line in listed]

    carried, image = names("list"), set(names("image"))
    assert len(carried) == len(set(carried)), "one version of each wheel"
    marker_environment = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
                          "platform_system": "Linux", "platform_machine": "x86_64", "extra": ""}
    needed, seen = set(), set()
    pending = [Requirement(line) for line in metadata.requires("rnnbench") or []]
    assert pending, "rnnbench is installed here (pip install -e .)"
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or (requirement.marker is not None and not requirement.marker.evaluate(marker_environment)):
            continue
        seen.add(name)
        needed.add(name)
        if name not in image:  # the image's own packages come with what they need
            pending += [Requirement(line) for line in metadata.requires(requirement.name) or []]
    assert sorted(needed - image - set(carried)) == []
