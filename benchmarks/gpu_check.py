"""rnnbench on a CUDA device, in one prepared run: its device tests, cuDNN against the step loop, the harness
against a hand-written loop, and what deterministic kernels cost; tables into ``gpu.md`` and ``gpu.csv``.

On a lent GPU machine (the device tool: an image with a CUDA torch, Lightning and torchmetrics, no package
registry), from the repository root, after ``bash benchmarks/gpu_wheels.sh download`` here (.whl/, about 28 MiB,
carried with ``carry=[".whl"]``; timeout_s=600)::

    bash benchmarks/gpu_wheels.sh install && PYTHONPATH=/tmp/site python3 benchmarks/gpu_check.py --device cuda --output "$OUT"

then copy ``gpu.md``, ``gpu.csv`` and ``gpu_log.txt`` from what comes back into ``results/performance/``. On a GPU
machine with rnnbench installed: ``python benchmarks/gpu_check.py --device cuda`` (writes results/performance/gpu.*).
Without a GPU, the same code at tiny sizes (what tests/test_gpu_check.py runs)::

    python benchmarks/gpu_check.py --device cpu --quick --output /tmp/gpu

Parts (``--parts``, all by default, run in this order, then the compilations the cells part left for the end;
``--budget`` seconds, 450 by default, skips what would not fit and the tables say what was skipped; every row is
written as soon as it is measured, so a run stopped from outside leaves what it measured):

- ``tests``: ``pytest tests/test_gpu_check.py --device DEVICE --run-slow``: the fused twins (cuDNN) against every
  fused cell's step loop, padded and unpadded, float64, 1e-6 (outputs, final states, every parameter's gradient);
  every cell's step loop on DEVICE against the CPU; the gradient-through-time probe on DEVICE against the CPU probe
  of the same weights; a 4-job sweep with ``trainer.accelerator=gpu`` whose records must be complete.
- ``cells``: one process, ``torch.cuda.synchronize()`` before and after each timed training step (forward, loss,
  backward, Adam), variants interleaved, medians: the fused ``lstm`` (cuDNN) against the same equations as a user's
  plain-form cell (``benchmarks/plain_cells.py::PlainLSTM``, README's way of writing a cell) and against that cell
  with ``model.compile=true``, at B = 32, 256 x H = 128, 512 x T = 50, 500 (the adding problem's inputs). A
  compilation of the longer T is estimated from the shorter one's and left to the end of the run, or out.
- ``determinism``: the same short training twice in a fresh process, bitwise, with torch's defaults and with the
  settings that make CUDA deterministic (``torch.use_deterministic_algorithms(True)``,
  ``torch.backends.cudnn.deterministic = True``, ``benchmark = False``, ``CUBLAS_WORKSPACE_CONFIG=:4096:8``; in a run:
  ``+trainer.deterministic=true``), and what the latter cost.
- ``harness``: rnnbench's default run (W&B offline, CSV, the default diagnostics; one job of one sweep per size,
  ``trainer.accelerator=gpu``) against a hand-written loop over the same model, data and optimizer, at the same sizes:
  steady-state tokens/s over 100 steps after the first (holding one probe, the default cadence), from the end of the
  first step to the end of the last (the record's own window).

The exit status is 1 when a test or a check failed; the tables are written all the same.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from itertools import product
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a file (python3 benchmarks/gpu_check.py) from an uninstalled checkout
    sys.path.insert(0, str(REPO))

try:
    import torch
except ImportError:  # --check-requirements says what is missing without it; everything else needs it
    torch = None

from benchmarks.throughput import Case, _env  # noqa: E402

PLAIN = "benchmarks.plain_cells.PlainLSTM"
FUSED, NN_LSTM, PLAIN_FORM, COMPILED = ("lstm (fused)", "nn.LSTM (its flat weights)", "plain-form cell",
                                        "plain-form cell + model.compile")
CELL_VARIANTS = (FUSED, NN_LSTM, PLAIN_FORM, COMPILED)
HARNESS_VARIANTS = ("hand-written loop", "rnnbench default run")
DETERMINISM_SETTINGS = {
    "torch defaults": {},
    "deterministic": {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"},
}
DETERMINISM_MODELS = ("lstm (fused)", "lstm (fused), padded", "plain-form cell")
COLUMNS = ("section", "B", "H", "T", "variant", "ms_per_step", "tokens_per_s", "ratio", "ratio_of", "first_step_s",
           "timed_steps", "note")
PARTS = ("tests", "cells", "determinism", "harness")
TESTS_SECONDS = 240.0  # the most of the budget the tests may take: the timings follow them
# A compilation's first step grows with T by this much of the shortest T's per multiple of it: on one CPU core
# (PlainLSTM, H = 8, B = 4) T = 10 took 21.4 s and T = 40 29.9 s, (29.9 / 21.4 - 1) / (40 / 10 - 1) = 0.13.
COMPILE_GROWTH = 0.15


@dataclass(frozen=True)
class Grid:
    """The sizes every timing runs at, and how long each measures."""

    batch: tuple[int, ...]
    hidden: tuple[int, ...]
    steps: tuple[int, ...]
    repeats: int          # timed steps per variant (cells), interleaved
    harness_steps: int    # optimizer steps of each default run and hand-written loop
    determinism: tuple[int, int, int]  # (B, H, T)
    determinism_steps: int

    def sizes(self) -> list[tuple[int, int, int]]:
        """(B, H, T) for every size, the shortest T first."""
        return [(b, h, t) for t, h, b in product(sorted(self.steps), self.hidden, self.batch)]


FULL = Grid(batch=(32, 256), hidden=(128, 512), steps=(50, 500), repeats=5, harness_steps=101,
            determinism=(256, 512, 50), determinism_steps=10)
QUICK = Grid(batch=(4, 8), hidden=(8,), steps=(5,), repeats=3, harness_steps=21, determinism=(4, 8, 5),
             determinism_steps=3)


class Budget:
    """Seconds left of the run's ``seconds``."""

    def __init__(self, seconds: float):
        self.seconds, self.start = seconds, time.perf_counter()

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)


@dataclass
class Report:
    """Everything measured so far; :meth:`write` rewrites ``gpu.md`` and ``gpu.csv`` (called after every row, so a
    run stopped midway leaves what it measured)."""

    output: Path
    environment: dict[str, object]
    command: str
    rows: list[dict[str, object]] = field(default_factory=list)
    tests: dict[str, object] | None = None
    skipped: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    running: str | None = None  # what a run stopped from outside was doing

    def add(self, row: dict[str, object]) -> None:
        self.rows.append({column: row.get(column, "") for column in COLUMNS})
        print(json.dumps(self.rows[-1]), flush=True)
        self.write()

    def skip(self, what: str) -> None:
        self.skipped.append(what)
        print(f"gpu_check: skipped {what}", flush=True)
        self.write()

    def fail(self, what: str) -> None:
        self.failures.append(what)
        print(f"gpu_check: FAILED {what}", flush=True)
        self.write()

    def write(self) -> None:
        self.output.mkdir(parents=True, exist_ok=True)
        with open(self.output / "gpu.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)
        (self.output / "gpu.md").write_text(render_markdown(self))


# ------------------------------------------------------------------------------------------------ environment


def environment(device: torch.device) -> dict[str, object]:
    """The device's name and the versions and flags every number depends on."""
    info: dict[str, object] = {"python": platform.python_version(), "torch": torch.__version__,
                               "CUDA (torch built with)": torch.version.cuda,
                               "cuDNN": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}
    for package in ("pytorch-lightning", "torchmetrics", "hydra-core", "omegaconf", "wandb", "numpy"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = None
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info["device"] = (f"{properties.name} ({device}, compute capability {properties.major}.{properties.minor}, "
                          f"{properties.total_memory / 2**30:.1f} GiB, {properties.multi_processor_count} SMs)")
        info["device name"] = properties.name
        try:
            driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                    capture_output=True, text=True, timeout=30).stdout.strip().splitlines()
            info["driver"] = driver[0] if driver else None
        except (OSError, subprocess.SubprocessError):
            info["driver"] = None
    else:
        name = platform.processor() or platform.machine()
        info["device"] = f"CPU: {name}, {os.cpu_count()} cores, {torch.get_num_threads()} torch thread(s)"
        info["device name"] = f"CPU ({name})"
    info["flags"] = (f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32} (the fused kernels may use TF32), "
                     f"cuda.matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32} (the step loops' products), "
                     f"float32_matmul_precision={torch.get_float32_matmul_precision()}, "
                     f"cudnn.benchmark={torch.backends.cudnn.benchmark}, "
                     f"deterministic algorithms={torch.are_deterministic_algorithms_enabled()}")
    info["torch threads"] = torch.get_num_threads()
    carried = carried_requirements()
    if carried:
        info["carried packages"] = carried
    return info


def carried_requirements() -> str | None:
    """The distributions in PYTHONPATH's folders (the carried wheels, /tmp/site), and whatever they require that
    this interpreter has not, or not at a version they accept; None without such a folder."""
    from packaging.requirements import Requirement

    folders = [f for f in os.environ.get("PYTHONPATH", "").split(os.pathsep)
               if f and Path(f).is_dir() and any(Path(f).glob("*.dist-info"))]
    if not folders:
        return None
    unmet, count = set(), 0
    for distribution in metadata.distributions(path=folders):
        count += 1
        for line in distribution.requires or []:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            try:
                found = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                unmet.add(f"{distribution.metadata['Name']} needs {requirement} (missing)")
                continue
            if not requirement.specifier.contains(found, prereleases=True):
                unmet.add(f"{distribution.metadata['Name']} needs {requirement}, found {found}")
    return (f"{count} distributions from {', '.join(folders)}; requirements unmet: "
            f"{'; '.join(sorted(unmet)) if unmet else 'none'}")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(work: Callable[[], object], device: torch.device) -> float:
    """Seconds of ``work``, the device synchronized before and after."""
    synchronize(device)
    started = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - started


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------------------ tests


def run_tests(device: torch.device, report: Report, log: Path, budget: Budget, select: str | None) -> None:
    """``pytest tests/test_gpu_check.py --device DEVICE --run-slow`` (never the tests that run this script)."""
    expression = "not test_script" if not select else f"({select}) and not test_script"
    junit = report.output / ".gpu_tests.xml"
    command = [sys.executable, "-m", "pytest", str(REPO / "tests" / "test_gpu_check.py"), "--device", str(device.type),
               "--run-slow", "-q", "-p", "no:cacheprovider", "-k", expression, f"--junitxml={junit}"]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=REPO, env=_env(torch.get_num_threads()), capture_output=True, text=True,
                              timeout=max(60.0, min(budget.left(), TESTS_SECONDS)))
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as stopped:
        output, code = f"{stopped.stdout or ''}{stopped.stderr or ''}\n(stopped after {stopped.timeout:.0f} s)", None
    seconds = time.perf_counter() - started
    with open(log, "a") as f:
        f.write(f"$ {' '.join(command)}\n{output}\n")
    counts = {"passed": 0, "failed": 0, "skipped": 0, "failed tests": []}
    if junit.is_file():
        for case in ElementTree.parse(junit).getroot().iter("testcase"):
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            if case.find("failure") is not None or case.find("error") is not None:
                counts["failed"] += 1
                counts["failed tests"].append(name)
            elif case.find("skipped") is not None:
                counts["skipped"] += 1
            else:
                counts["passed"] += 1
        junit.unlink()
    report.tests = {**counts, "seconds": round(seconds, 1), "exit status": code,
                    "command": f"pytest tests/test_gpu_check.py --device {device.type} --run-slow -k '{expression}'"}
    print(f"gpu_check: tests: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped "
          f"in {seconds:.0f} s (exit status {code})", flush=True)
    if code != 0 or counts["failed"] or not counts["passed"]:
        report.fail(f"tests (exit status {code}; see gpu_log.txt): {', '.join(counts['failed tests']) or 'no test passed'}")
    else:
        report.write()


# ------------------------------------------------------------------------------------------------ cells


def allow_compilations() -> None:
    """Every size compiles its own graph (the parameters' shapes are static): never fall back to eager silently."""
    import torch._dynamo.config as dynamo

    for name, value in (("recompile_limit", 64), ("cache_size_limit", 64), ("accumulated_recompile_limit", 1024),
                        ("accumulated_cache_size_limit", 1024), ("fail_on_recompile_limit_hit", True),
                        ("fail_on_cache_limit_hit", True)):
        if hasattr(dynamo, name):
            setattr(dynamo, name, value)


def adding_inputs(batch: int, steps: int, device: torch.device, seed: int = 0):
    """The adding problem's task, and one batch of its shape (values and markers, targets) on ``device``."""
    from rnnbench.data import AddingProblem

    task = AddingProblem(seq_len=steps, batch_size=batch, num_train=batch, num_val=1, num_test=1).task
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.rand(batch, steps, 2, generator=generator)
    targets = torch.rand(batch, generator=generator) * 2
    return task, inputs.to(device), targets.to(device)


def training_step(model, optimizer, task, inputs, targets, lengths=None) -> Callable[[], None]:
    def step() -> None:
        loss = task.compute_loss(model(inputs, lengths), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def torch_lstm(task, hidden: int):
    """``nn.LSTM`` with the same head: the same kernel as rnnbench's fused ``lstm``, on weights that ``nn.LSTM``
    keeps in one flat buffer (rnnbench's cells keep their own parameters, which cuDNN copies into one per call)."""

    class TorchLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(task.input_size, hidden, batch_first=True)
            self.head = torch.nn.Linear(hidden, task.output_size)

        def forward(self, inputs, lengths=None):
            _, (h_n, _) = self.lstm(inputs)
            return self.head(h_n[-1]).squeeze(-1)

    return TorchLSTM()


def build_variant(variant: str, task, hidden: int, device: torch.device):
    from rnnbench.models import SequenceModel

    torch.manual_seed(0)
    if variant == NN_LSTM:
        model = torch_lstm(task, hidden).to(device)
    else:
        cell = "lstm" if variant == FUSED else PLAIN
        model = SequenceModel(task, cell=cell, hidden_size=hidden, compile=variant == COMPILED).to(device)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def plan_compilations(sizes: Sequence[tuple[int, int, int]]) -> tuple[list[tuple[int, int, int]],
                                                                       list[tuple[int, int, int]]]:
    """Which sizes compile in the main pass (the shortest T) and which wait for the end of the run (longer T:
    one graph of T unrolled steps, whose compilation grows with T)."""
    shortest = min(t for _, _, t in sizes)
    return [s for s in sizes if s[2] == shortest], [s for s in sizes if s[2] != shortest]


def compare_cells(size: tuple[int, int, int], variants: Sequence[str], device: torch.device, repeats: int,
                  report: Report) -> dict[str, float]:
    """Time ``variants`` at one size side by side: warm-up (the first step, which compiles, timed alone), then
    ``repeats`` rounds of one synchronized step each, the order rotating. Returns each variant's first-step seconds."""
    batch, hidden, steps = size
    task, inputs, targets = adding_inputs(batch, steps, device)
    work, first = {}, {}
    for variant in variants:
        model, optimizer = build_variant(variant, task, hidden, device)
        work[variant] = (model, optimizer, training_step(model, optimizer, task, inputs, targets))
        first[variant] = timed(work[variant][2], device)
        timed(work[variant][2], device)  # a second warm-up step: the optimizer's state is allocated in the first
    samples: dict[str, list[float]] = {v: [] for v in variants}
    for repeat in range(repeats):
        for variant in variants[repeat % len(variants):] + variants[:repeat % len(variants)]:
            samples[variant].append(timed(work[variant][2], device))
    medians = {v: statistics.median(s) for v, s in samples.items()}
    fused = medians[FUSED]
    for variant in variants:
        report.add({"section": "cells", "B": batch, "H": hidden, "T": steps, "variant": variant,
                    "ms_per_step": round(1e3 * medians[variant], 3),
                    "tokens_per_s": round(batch * steps / medians[variant]), "ratio": round(fused / medians[variant], 4),
                    "ratio_of": FUSED, "first_step_s": round(first[variant], 4), "timed_steps": repeats})
    del work
    free(device)
    return first


def cuda_kernels(device: torch.device) -> str:
    """The fused LSTM's kernels in one profiled step on CUDA: whether it runs cuDNN's RNN kernels."""
    if device.type != "cuda":
        return "not applicable on the CPU"
    from torch.profiler import ProfilerActivity, profile

    task, inputs, targets = adding_inputs(32, 50, device)
    model, optimizer = build_variant(FUSED, task, 128, device)
    step = training_step(model, optimizer, task, inputs, targets)
    step()
    try:
        with profile(activities=[ProfilerActivity.CUDA]) as profiled:
            step()
            synchronize(device)
        names = sorted({event.key for event in profiled.key_averages()})
    except Exception as error:  # noqa: BLE001 - the profiler is a nicety: report, go on
        return f"profiler failed: {type(error).__name__}: {error}"
    recurrent = [n for n in names if any(word in n.lower() for word in ("rnn", "lstm", "cudnn"))]
    return (f"{len(recurrent)} of {len(names)} kernels name RNN/LSTM/cuDNN, e.g. "
            + "; ".join(n[:60] for n in recurrent[:3])) if recurrent else f"no cuDNN RNN kernel among {len(names)}"


def tf32_effect(device: torch.device) -> str:
    """How far the float32 fused LSTM and step loop land from float64, with cuDNN's TF32 allowed (torch's default,
    which the fused kernels use on Ampere and later) and not: on such a GPU the built-in fused cells and every
    step-by-step cell do not compute at the same precision."""
    from rnnbench.models import LayerStack
    from rnnbench.models.cells import CELLS

    torch.manual_seed(0)
    reference = LayerStack(CELLS["lstm"], 2, 128).double().to(device)
    x = torch.rand(32, 50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(device)
    expected = reference(x)[0]
    single = LayerStack(CELLS["lstm"], 2, 128).to(device)
    single.load_state_dict(reference.state_dict())
    errors, allowed = {}, torch.backends.cudnn.allow_tf32
    try:
        for allow in (True, False):
            torch.backends.cudnn.allow_tf32 = allow
            with torch.no_grad():
                errors[allow] = float((single(x.float())[0].double() - expected).abs().max() / expected.abs().max())
        with torch.no_grad():
            loop = float((single(x.float(), step_by_step=True)[0].double() - expected).abs().max()
                         / expected.abs().max())
    finally:
        torch.backends.cudnn.allow_tf32 = allowed
    return (f"float32 against float64 (B=32, H=128, T=50, largest difference over largest value): fused "
            f"{errors[True]:.1e} with cudnn.allow_tf32=True, {errors[False]:.1e} with False; step loop {loop:.1e}")


def time_cells(grid: Grid, device: torch.device, report: Report, budget: Budget) -> list[tuple[tuple[int, int, int],
                                                                                             float]]:
    """The main pass: every size with the fused and plain-form variants, and the compiled one where T is the
    shortest. Returns the compilations left for later, each with its estimated seconds."""
    allow_compilations()
    for key, measure in (("fused LSTM's kernels", cuda_kernels), ("precision", tf32_effect)):
        try:
            report.environment[key] = measure(device)
        except Exception as error:  # noqa: BLE001 - a side measurement: say why it is missing, time the cells
            report.environment[key] = f"not measured: {type(error).__name__}: {str(error)[:200]}"
    now, later = plan_compilations(grid.sizes())
    compile_seconds: dict[int, float] = {}  # H -> the first step's seconds of its compiled model at the shortest T
    for size in grid.sizes():
        if budget.left() < 30:
            report.skip(f"cells at B={size[0]} H={size[1]} T={size[2]}: the time budget ran out")
            continue
        variants = [v for v in CELL_VARIANTS if v != COMPILED or size in now]
        first = compare_cells(size, variants, device, grid.repeats, report)
        if COMPILED in first:
            compile_seconds[size[1]] = max(compile_seconds.get(size[1], 0.0), first[COMPILED])
    shortest = min(grid.steps)
    return [(size, compile_seconds.get(size[1], 60.0) * (1 + COMPILE_GROWTH * (size[2] / shortest - 1)))
            for size in later]


def compile_later(pending: list[tuple[tuple[int, int, int], float]], device: torch.device, grid: Grid,
                  report: Report, budget: Budget) -> None:
    """The longer T's compilations, each beside the fused LSTM again, while the estimate fits in the budget."""
    for size, estimate in sorted(pending, key=lambda item: item[1]):
        if estimate + 30 > budget.left():
            report.skip(f"model.compile at B={size[0]} H={size[1]} T={size[2]}: its first step (the compilation), "
                        f"estimated at {estimate:.0f} s from the shortest T's, would not fit in the "
                        f"{max(0.0, budget.left()):.0f} s left")
            continue
        report.running = (f"model.compile at B={size[0]} H={size[1]} T={size[2]} (estimated at {estimate:.0f} s, "
                          f"started with {budget.left():.0f} s left): a run stopped here ran past its limit")
        report.write()
        compare_cells(size, [FUSED, COMPILED], device, grid.repeats, report)
        report.running = None


# ------------------------------------------------------------------------------------------------ harness


def hand_written_loop(case: Case, device: torch.device) -> float:
    """Tokens per second of the loop a careful engineer writes: rnnbench's model, data module tensors and optimizer,
    whole batches gathered on the host and copied with ``non_blocking=True`` (as Lightning copies them), no logging
    or callbacks; timed from the end of the first step to the end of the last, synchronized at both ends."""
    from rnnbench.data import AddingProblem
    from rnnbench.models import SequenceModel

    torch.manual_seed(0)
    data = AddingProblem(**case.data_settings())
    data.setup()
    inputs, targets = data.splits["train"]
    task = data.task
    model = SequenceModel(task, cell=case.cell, hidden_size=case.hidden, num_layers=case.layers).to(device)
    optimizer = case.make_optimizer(model.parameters())
    order, position = torch.randperm(len(inputs)), 0
    started = 0.0
    for step in range(case.steps):
        if position + case.batch > len(order):
            order, position = torch.randperm(len(inputs)), 0
        index = order[position:position + case.batch]
        position += case.batch
        batch_inputs = inputs[index].to(device, non_blocking=True)
        batch_targets = targets[index].to(device, non_blocking=True)
        loss = task.compute_loss(model(batch_inputs), batch_targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step == 0:
            synchronize(device)
            started = time.perf_counter()
    synchronize(device)
    seconds = time.perf_counter() - started
    del model, optimizer
    free(device)
    return case.batch * case.seq_len * (case.steps - 1) / seconds


def sweep_overrides(case: Case, swept: dict[str, Sequence[int]]) -> list[str]:
    """``case``'s overrides (throughput.Case: one run) with the ``swept`` keys given every value, comma-separated."""
    lines = []
    for line in case.overrides():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={','.join(map(str, swept[key]))}" if key in swept else line)
    return lines


def time_harness(grid: Grid, device: torch.device, report: Report, budget: Budget, log: Path) -> None:
    from rnnbench.record.schema import RecordError, find_records, read_record

    accelerator = "gpu" if device.type == "cuda" else "cpu"
    base = Case(data="adding", cell="lstm", batch=grid.batch[0], hidden=grid.hidden[0], seq_len=grid.steps[0],
                steps=grid.harness_steps, clip=None, threads=1, extra=(f"trainer.accelerator={accelerator}",))
    loops = {}
    for batch, hidden, steps in grid.sizes():
        if budget.left() < 60:
            report.skip(f"the hand-written loop at B={batch} H={hidden} T={steps}: the time budget ran out")
            continue
        case = Case(data="adding", cell="lstm", batch=batch, hidden=hidden, seq_len=steps, steps=grid.harness_steps,
                    clip=None, threads=1)
        loops[(batch, hidden, steps)] = hand_written_loop(case, device)
    if not loops or budget.left() < 60:
        report.skip("rnnbench's default runs (the sweep): the time budget ran out")
        return
    swept = {"data.batch_size": grid.batch, "model.hidden_size": grid.hidden, "data.seq_len": grid.steps}
    records: dict[tuple[int, int, int], dict] = {}
    with tempfile.TemporaryDirectory() as workdir:
        sweep_dir = Path(workdir) / "sweep"
        command = [sys.executable, "-m", "rnnbench", "train", "-m", *sweep_overrides(base, swept),
                   f"hydra.sweep.dir={sweep_dir}"]
        try:
            done = subprocess.run(command, cwd=workdir, env=_env(1), capture_output=True, text=True,
                                  timeout=max(60.0, budget.left() - 20))
            output = done.stdout + done.stderr
        except subprocess.TimeoutExpired as stopped:
            output = f"{stopped.stdout or ''}{stopped.stderr or ''}\n(stopped after {stopped.timeout:.0f} s)"
            report.skip("part of rnnbench's default runs: the sweep ran past the time budget")
        with open(log, "a") as f:
            f.write(f"$ {' '.join(command)}\n{output}\n")
        for path in find_records(sweep_dir):
            try:
                record = read_record(path)
            except RecordError as error:
                report.fail(f"harness: {error}")
                continue
            config = record["config"]
            records[(config["data"]["batch_size"], config["model"]["hidden_size"], config["data"]["seq_len"])] = record
    for size in grid.sizes():
        batch, hidden, steps = size
        loop, record = loops.get(size), records.get(size)
        common = {"section": "harness", "B": batch, "H": hidden, "T": steps, "ratio_of": HARNESS_VARIANTS[0],
                  "timed_steps": grid.harness_steps - 1}
        if loop is None:
            continue
        report.add({**common, "variant": HARNESS_VARIANTS[0], "tokens_per_s": round(loop), "ratio": 1.0,
                    "ms_per_step": round(1e3 * batch * steps / loop, 3)})
        throughput = (record or {}).get("throughput") or {}
        rate = throughput.get("tokens_per_second")
        if record is None or record["status"] != "completed" or not rate:
            why = "no record" if record is None else f"status {record['status']}: {record.get('error')}"
            report.fail(f"harness: rnnbench's default run at B={batch} H={hidden} T={steps}: {why}")
            continue
        report.add({**common, "variant": HARNESS_VARIANTS[1], "tokens_per_s": round(rate),
                    "ms_per_step": round(1e3 * batch * steps / rate, 3), "ratio": round(rate / loop, 4),
                    "note": f"device {record['device']}; {record['steps']} steps; W&B offline + CSV; diagnostics "
                            f"default (probe every 100 steps)"})


# ------------------------------------------------------------------------------------------------ determinism


def determinism_worker(setting: str, device: torch.device, grid: Grid) -> None:
    """In a fresh process (``CUBLAS_WORKSPACE_CONFIG`` counts only before cuBLAS starts): each model trained twice
    from the same seed on the same batches; prints one JSON line per model: bitwise equal, largest difference,
    median synchronized step."""
    from rnnbench.models import SequenceModel

    if setting == "deterministic":
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    batch, hidden, steps = grid.determinism
    task, inputs, targets = adding_inputs(batch, steps, device, seed=1)
    lengths = torch.randint(1, steps + 1, (batch,), generator=torch.Generator().manual_seed(2))
    lengths[0] = steps
    results = []
    for name in DETERMINISM_MODELS:
        finals, seconds = [], []
        try:
            for _ in range(2):
                torch.manual_seed(0)
                model = SequenceModel(task, cell=PLAIN if name == "plain-form cell" else "lstm",
                                      hidden_size=hidden).to(device)
                optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
                step = training_step(model, optimizer, task, inputs, targets,
                                     lengths.to(device) if name.endswith("padded") else None)
                seconds += [timed(step, device) for _ in range(grid.determinism_steps)][1:]
                finals.append([p.detach().clone() for p in model.parameters()])
            equal = all(torch.equal(a, b) for a, b in zip(*finals, strict=True))
            difference = max(float((a - b).abs().max()) for a, b in zip(*finals, strict=True))
            results.append({"model": name, "bitwise": equal, "largest difference": difference,
                            "seconds": statistics.median(seconds)})
        except RuntimeError as error:  # an operation without a deterministic implementation says so
            results.append({"model": name, "error": str(error).strip().splitlines()[0][:300]})
    print(json.dumps(results))


def time_determinism(grid: Grid, device: torch.device, report: Report, budget: Budget, quick: bool,
                     log: Path) -> None:
    measured: dict[str, dict[str, dict]] = {}
    for setting, extra in DETERMINISM_SETTINGS.items():
        if budget.left() < 30:
            report.skip(f"determinism with {setting}: the time budget ran out")
            continue
        env = _env(torch.get_num_threads(), **extra)
        if not extra:
            env.pop("CUBLAS_WORKSPACE_CONFIG", None)
        command = [sys.executable, str(Path(__file__).resolve()), "--determinism-worker", setting,
                   "--device", device.type, *(["--quick"] if quick else [])]
        try:
            done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                                  timeout=max(30.0, budget.left()))
        except subprocess.TimeoutExpired:
            report.skip(f"determinism with {setting}: its worker ran past the time budget")
            continue
        with open(log, "a") as f:
            f.write(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}\n")
        if done.returncode != 0:
            report.fail(f"determinism worker ({setting}): exit status {done.returncode}: {done.stderr[-500:]}")
            continue
        measured[setting] = {r["model"]: r for r in json.loads(done.stdout.strip().splitlines()[-1])}
    batch, hidden, steps = grid.determinism
    default = measured.get("torch defaults", {})
    for setting, results in measured.items():
        for name in DETERMINISM_MODELS:
            result = results[name]
            row = {"section": "determinism", "B": batch, "H": hidden, "T": steps, "variant": f"{name}; {setting}",
                   "ratio_of": f"{name}; torch defaults", "timed_steps": 2 * (grid.determinism_steps - 1)}
            if "error" in result:
                report.add({**row, "note": f"raised: {result['error']}"})
                continue
            base = default.get(name, {}).get("seconds")
            row.update(ms_per_step=round(1e3 * result["seconds"], 3),
                       tokens_per_s=round(batch * steps / result["seconds"]),
                       ratio=round(base / result["seconds"], 4) if base else "",
                       note=f"bitwise repeatable: {'yes' if result['bitwise'] else 'no'} (largest difference "
                            f"{result['largest difference']:.3g})")
            report.add(row)
            if setting == "deterministic" and not result["bitwise"]:
                report.fail(f"determinism: {name} differs between two runs with the deterministic settings")


# ------------------------------------------------------------------------------------------------ markdown


def _number(value: object, digits: int = 3) -> str:
    if value in ("", None):
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render_markdown(report: Report) -> str:
    env = report.environment
    lines = [f"# rnnbench on {env.get('device name')}", "",
             f"Measured by `benchmarks/gpu_check.py` on {time.strftime('%Y-%m-%d')}: `{report.command}`.", "",
             "| | |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in env.items() if key != "device name"]
    lines += ["", f"## Tests on {env.get('device name')}", ""]
    if report.tests is None:
        lines.append("Not run (`--parts` left them out).")
    else:
        t = report.tests
        lines.append(f"`{t['command']}`: {t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped in "
                     f"{t['seconds']} s (exit status {t['exit status']}).")
        lines += [f"- failed: `{name}`" for name in t["failed tests"]]
    cells = [r for r in report.rows if r["section"] == "cells"]
    if cells:
        lines += ["", "## The fused `lstm` (cuDNN on CUDA) against the plain-form cell, step by step and compiled", "",
                  "One process, adding-problem batches, one training step (forward, MSE, backward, Adam) timed with "
                  "the device synchronized before and after, variants interleaved, medians of the timed steps. "
                  "`/ fused`: tokens/s against the fused LSTM's at the same size (1 = as fast). `first step s`: the "
                  "first step alone (a compiled model's includes its compilation). `nn.LSTM (its flat weights)`: "
                  "the same kernel on weights kept in one buffer, where rnnbench's cells keep their own (cuDNN "
                  "then copies them into one at every call).", "",
                  "| B | H | T | variant | ms/step | tokens/s | / fused | first step s |",
                  "|---:|---:|---:|---|---:|---:|---:|---:|"]
        lines += [f"| {r['B']} | {r['H']} | {r['T']} | {r['variant']} | {_number(r['ms_per_step'])} | "
                  f"{r['tokens_per_s']} | {_number(r['ratio'])} | {_number(r['first_step_s'], 2)} |" for r in cells]
    harness = [r for r in report.rows if r["section"] == "harness"]
    if harness:
        lines += ["", "## rnnbench's default run against a hand-written loop", "",
                  "Adding problem, LSTM (fused), Adam, no clipping, 1 CPU thread. `rnnbench default run`: one job of "
                  "one `rnnbench train -m` sweep per size (W&B offline, CSV, default diagnostics with a probe every "
                  "100 steps), its record's steady-state tokens/s (every step after the first). `hand-written loop`: the same model, data "
                  "module tensors and optimizer, batches gathered on the host and copied non-blocking, no logging; "
                  "timed from the end of its first step to the end of its last, synchronized at both. `/ loop`: "
                  "rnnbench's tokens/s over the loop's.", "",
                  "| B | H | T | variant | ms/step | tokens/s | / loop |", "|---:|---:|---:|---|---:|---:|---:|"]
        lines += [f"| {r['B']} | {r['H']} | {r['T']} | {r['variant']} | {_number(r['ms_per_step'])} | "
                  f"{r['tokens_per_s']} | {_number(r['ratio'])} |" for r in harness]
    determinism = [r for r in report.rows if r["section"] == "determinism"]
    if determinism:
        lines += ["", "## Determinism: what exact repeats (and exact resumes) need, and cost", "",
                  "Each model trained twice from the same seed on the same batches in one fresh process per setting. "
                  "`deterministic`: `torch.use_deterministic_algorithms(True)`, `torch.backends.cudnn.deterministic = "
                  "True`, `torch.backends.cudnn.benchmark = False` and `CUBLAS_WORKSPACE_CONFIG=:4096:8` (set before "
                  "cuBLAS starts; what `+trainer.deterministic=true` asks Lightning for). `/ defaults`: tokens/s "
                  "against the same model with torch's defaults.", "",
                  "| B | H | T | model; settings | ms/step | / defaults | |", "|---:|---:|---:|---|---:|---:|---|"]
        lines += [f"| {r['B']} | {r['H']} | {r['T']} | {r['variant']} | {_number(r['ms_per_step'])} | "
                  f"{_number(r['ratio'])} | {r['note']} |" for r in determinism]
    if report.running:
        lines += ["", "## Running when these tables were written", "", f"- {report.running}"]
    if report.skipped:
        lines += ["", "## Not measured", ""] + [f"- {what}" for what in report.skipped]
    if report.failures:
        lines += ["", "## Failed", ""] + [f"- {what}" for what in report.failures]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few steps (a smoke run, any device)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for the whole run (default 450)")
    parser.add_argument("--output", type=Path, default=REPO / "results" / "performance")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--select", help="tests: only those pytest's -k EXPRESSION selects")
    parser.add_argument("--check-requirements", action="store_true",
                        help="only say what the packages in PYTHONPATH's folders need and this interpreter lacks")
    parser.add_argument("--determinism-worker", choices=list(DETERMINISM_SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.check_requirements:
        print(f"gpu_check: {carried_requirements() or 'no folder of installed packages in PYTHONPATH'}")
        return 0
    if torch is None:
        parser.error("torch is not installed for this interpreter")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    grid = QUICK if args.quick else FULL
    if args.determinism_worker:
        determinism_worker(args.determinism_worker, device, grid)
        return 0
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown {', '.join(unknown)} (of {', '.join(PARTS)})")
    budget = Budget(args.budget)
    command = "python benchmarks/gpu_check.py " + " ".join(a for a in (argv if argv is not None else sys.argv[1:]))
    report = Report(args.output, environment(device), command)
    log = args.output / "gpu_log.txt"
    args.output.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    report.write()
    pending: list[tuple[tuple[int, int, int], float]] = []
    if "tests" in parts:
        run_tests(device, report, log, budget, args.select)
    if "cells" in parts:
        pending = time_cells(grid, device, report, budget)
    if "determinism" in parts:
        time_determinism(grid, device, report, budget, args.quick, log)
    if "harness" in parts:
        time_harness(grid, device, report, budget, log)
    if pending:
        compile_later(pending, device, grid, report, budget)
    report.write()
    print(f"gpu_check: {args.output / 'gpu.md'} and gpu.csv written in {args.budget - budget.left():.0f} s; "
          f"{len(report.failures)} failure(s), {len(report.skipped)} part(s) not measured", flush=True)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
