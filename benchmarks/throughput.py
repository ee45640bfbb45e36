"""Training throughput of rnnbench against a hand-written PyTorch loop, measured side by side.

    python -m benchmarks.throughput --suite overhead      # diagnostics on vs off (the diagnostics' cost budget)
    python -m benchmarks.throughput --suite harness       # rnnbench (default logging + diagnostics, W&B offline) vs plain loop
    python -m benchmarks.throughput --suite scaling       # tokens/s against T, hidden, layers
    python -m benchmarks.throughput --suite startup       # seconds from launch to the first training step
    python -m benchmarks.throughput --suite data          # share of the step spent fetching batches
    python -m benchmarks.throughput --suite sweep         # a 12-job sweep: basic launcher vs joblib (or --sweep ...)
    python -m benchmarks.throughput --suite cells         # fused lstm vs the same LSTM as a user's cell; probe cost vs T
    python -m benchmarks.throughput --suite threads       # torch thread options on an idle and on a shared machine
    python -m benchmarks.throughput --suite music         # polyphonic music (variable length) vs a packed plain loop; padding
    python -m benchmarks.throughput --suite all --quick   # everything, small

Every measurement runs in its own process (as a sweep job does) with a fixed number of torch threads;
the variants of one configuration run interleaved, ``--repeats`` times, and the tables report medians
and ratios, never absolute speed alone (this machine is shared and noisy). Tables go to
``results/performance/`` as markdown and CSV.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEXT = REPO.parent / "shared" / "data" / "timemachine.txt"
MUSIC = REPO.parent / "shared" / "data" / "polyphonic"
MUSIC_FILES = {"jsb_chorales": "JSB_Chorales.mat", "nottingham": "Nottingham.mat", "musedata": "MuseData.mat",
               "piano_midi": "Piano_midi.mat"}


@dataclass(frozen=True)
class Case:
    """One model/data configuration; ``overrides`` are rnnbench's config keys for it."""

    data: str = "timemachine"
    cell: str = "lstm"
    batch: int = 32
    hidden: int = 256
    layers: int = 1
    seq_len: int = 35
    threads: int = 1
    steps: int = 201
    clip: float | None = 1.0
    extra: tuple[str, ...] = field(default=())
    optimizer: str = "adam"  # rnnbench's optim choice, and the baselines' torch.optim class
    param_budget: int | None = None  # instead of hidden, as model.param_budget

    def data_settings(self) -> dict[str, object]:
        """The data module's arguments, the same for rnnbench (as ``data.KEY=VALUE``) and the baselines."""
        if self.data in MUSIC_FILES:  # variable-length pieces: the set's own lengths
            return {"path": str(MUSIC / MUSIC_FILES[self.data]), "batch_size": self.batch}
        settings: dict[str, object] = {"seq_len": self.seq_len, "batch_size": self.batch, "num_val": 256,
                                       "num_test": 256}
        if self.data == "timemachine":
            settings.update(path=str(TEXT), num_train=max(10_000, self.batch * 40))
        return settings

    def overrides(self) -> list[str]:
        size = f"model.param_budget={self.param_budget}" if self.param_budget else f"model.hidden_size={self.hidden}"
        return [f"data={self.data}", *(f"data.{key}={value}" for key, value in self.data_settings().items()),
                f"model.cell={self.cell}", size,
                f"model.num_layers={self.layers}", f"threads={self.threads}", f"trainer.max_steps={self.steps}",
                # validate only after fit, outside the timed part, as a long run does rarely
                f"trainer.val_check_interval={self.steps + 1}",
                f"trainer.gradient_clip_val={'null' if self.clip is None else self.clip}", f"optim={self.optimizer}",
                *self.extra]

    def make_optimizer(self, parameters):
        """The optimizer rnnbench's ``optim=<optimizer>`` builds, at its default settings, for the baselines."""
        import torch

        return {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}[self.optimizer](parameters, lr=1e-3)


BASELINES = ("plain", "lightning")


def _env(threads: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(extra)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))  # benchmarks.plain_cells
    return env


def run_harness(case: Case, variant: str, **env: str) -> dict[str, float]:
    """``rnnbench train`` as a user runs it; throughput from its result.json (fit minus validation)."""
    settings = {"default": [], "off": ["diagnostics=none", "logger=none"],
                "no_diagnostics": ["diagnostics=none"]}[variant]
    with tempfile.TemporaryDirectory() as workdir:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "rnnbench", "train", *case.overrides(), *settings],
                              cwd=workdir, env=_env(case.threads, **env), capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        records = list(Path(workdir).rglob("result.json"))
        if done.returncode != 0 or not records:
            raise RuntimeError(f"rnnbench train failed for {case}: {done.stderr[-2000:]}")
        record = json.loads(records[0].read_text())
    throughput = record["throughput"] or {}  # None for a run of fewer than two steps (the startup suite's)
    return {"tokens_per_second": throughput.get("tokens_per_second"),
            "tokens_per_cpu_second": throughput.get("tokens_per_cpu_second"), "process_seconds": elapsed}


def run_baseline(case: Case, kind: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.throughput", "--baseline-worker", kind,
                           json.dumps(asdict(case))], cwd=REPO, env=_env(case.threads), capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} baseline failed for {case}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def baseline_worker(case: Case, kind: str) -> None:
    """The baselines, on rnnbench's own model and data tensors. ``plain``: the loop a careful engineer
    writes by hand (same model, data, optimizer and clipping; whole batches gathered from in-memory
    tensors; no logging, callbacks or framework). ``lightning``: a bare ``pytorch_lightning.Trainer``
    on the same model and data module (no logger, progress bar, checkpointing or callbacks of
    rnnbench), which separates the framework's own per-step cost from rnnbench's."""
    import torch

    from rnnbench.data import AddingProblem, PolyphonicMusic, TimeMachine
    from rnnbench.data.base import unpack_batch
    from rnnbench.models import SequenceModel

    torch.set_num_threads(case.threads)
    torch.manual_seed(0)
    if case.data in MUSIC_FILES:
        data = PolyphonicMusic(name=case.data, file=MUSIC_FILES[case.data], **case.data_settings())
    else:
        data = {"timemachine": TimeMachine, "adding": AddingProblem}[case.data](**case.data_settings())
    task = data.task
    model = SequenceModel(task, cell=case.cell, hidden_size=case.hidden, num_layers=case.layers,
                          param_budget=case.param_budget)
    tokens = []  # each timed step's real (unpadded) steps
    # timed from the end of the first step to the end of the last, as rnnbench's record times its runs
    marks: list[tuple[float, float]] = []

    def mark() -> None:
        marks.append((time.perf_counter(), time.process_time()))

    if kind == "plain" and case.data in MUSIC_FILES:
        # the same packed, length-bucketed batches (the data module's own), the model fed the lengths
        dataset, sampler = data.batches("train", shuffle=True)
        optimizer = case.make_optimizer(model.parameters())
        batches = iter(())
        for step in range(case.steps):
            indices = next(batches, None)
            if indices is None:
                batches = iter(sampler)
                indices = next(batches)
            inputs, targets, lengths = dataset[indices]
            loss = task.compute_loss(model(inputs, lengths), targets, lengths=lengths)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if case.clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), case.clip)
            optimizer.step()
            tokens.append(int(lengths.sum()))
            if step in (0, case.steps - 1):
                mark()
    elif kind == "plain":
        data.setup()
        inputs, targets = data.splits["train"]
        optimizer = case.make_optimizer(model.parameters())
        order, position = torch.randperm(len(inputs)), 0
        for step in range(case.steps):
            if position + case.batch > len(order):
                order, position = torch.randperm(len(inputs)), 0
            index = order[position:position + case.batch]
            position += case.batch
            loss = task.compute_loss(model(inputs[index]), targets[index])
            tokens.append(case.batch * task.seq_len)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if case.clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), case.clip)
            optimizer.step()
            if step in (0, case.steps - 1):
                mark()
    else:
        import pytorch_lightning as pl

        class Bare(pl.LightningModule):
            def __init__(self):
                super().__init__()
                self.model = model

            def training_step(self, batch, batch_idx):
                inputs, targets, lengths = unpack_batch(batch)
                tokens.append(int(lengths.sum()) if lengths is not None else len(inputs) * task.seq_len)
                return task.compute_loss(self.model(inputs, lengths), targets, lengths=lengths)

            def configure_optimizers(self):
                return case.make_optimizer(self.parameters())

        class Marks(pl.Callback):
            def on_train_batch_end(self, trainer, *args) -> None:
                if trainer.global_step in (1, case.steps):
                    mark()

        pl.Trainer(max_steps=case.steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, gradient_clip_val=case.clip, limit_val_batches=0,
                   num_sanity_val_steps=0, callbacks=[Marks()]).fit(Bare(), datamodule=data)
    (wall0, cpu0), (wall1, cpu1) = marks
    timed = sum(tokens[1:case.steps])  # every step after the first, as the record's throughput counts them
    print(json.dumps({"tokens_per_second": timed / (wall1 - wall0), "tokens_per_cpu_second": timed / (cpu1 - cpu0)}))


def compare(cases: list[Case], variants: list[str], repeats: int, log,
            pairs: tuple[tuple[str, str], ...] = ()) -> list[dict]:
    """Interleave the variants of each case ``repeats`` times; medians and ratios to the first variant,
    by wall time (what a user waits for) and by the process's CPU time (steadier on a busy machine)."""
    rows = []
    for case in cases:
        samples: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        for repeat in range(repeats):
            order = variants[repeat % len(variants):] + variants[:repeat % len(variants)]
            for variant in order:
                samples[variant].append(run_baseline(case, variant) if variant in BASELINES else run_harness(case, variant))
        wall = {v: statistics.median(r["tokens_per_second"] for r in s) for v, s in samples.items()}
        cpu = {v: statistics.median(r["tokens_per_cpu_second"] for r in s) for v, s in samples.items()}
        row = {"data": case.data, "cell": case.cell, "batch": case.batch,
               "hidden": f"{case.param_budget} parameters" if case.param_budget else case.hidden,
               "layers": case.layers, "T": "each piece's" if case.data in MUSIC_FILES else case.seq_len,
               "threads": case.threads, "steps": case.steps}
        row.update({f"{v} tokens/s": round(m) for v, m in wall.items()})
        pairs = tuple((v, variants[0]) for v in variants[1:]) + pairs
        row.update({f"{a} / {b}": round(wall[a] / wall[b], 3) for a, b in pairs})
        row.update({f"{a} / {b} (CPU time)": round(cpu[a] / cpu[b], 3) for a, b in pairs})
        rows.append(row)
        log(row)
    return rows


def startup(repeats: int, log) -> list[dict]:
    """Seconds from launching `rnnbench train` to its first training step, and what they go to."""
    probe = ("import time, sys; t0 = time.perf_counter(); import {module}; "
             "print(time.perf_counter() - t0)")
    rows = []
    for module in ("torch", "pytorch_lightning", "wandb", "hydra", "rnnbench.job.run"):
        seconds = [float(subprocess.run([sys.executable, "-c", probe.format(module=module)], cwd=REPO,
                                        env=_env(1), capture_output=True, text=True).stdout) for _ in range(repeats)]
        rows.append({"what": f"import {module} (cold process)", "seconds": round(statistics.median(seconds), 2)})
    case = Case(data="adding", cell="gru", batch=32, hidden=32, seq_len=20, steps=1, clip=None)
    for variant in ("off", "default"):
        times = []
        for _ in range(repeats):
            result = run_harness(case, variant)
            times.append(result["process_seconds"])
        rows.append({"what": f"rnnbench train, 1 step, {'no logger/diagnostics' if variant == 'off' else 'W&B + diagnostics'}"
                     " (whole process)", "seconds": round(statistics.median(times), 2)})
    for row in rows:
        log(row)
    return rows


def probe_cost(repeats: int, log, quick: bool = False) -> list[dict]:
    """The exact gradient-through-time probe (float64, batch 32) against one training step of the same
    LSTM-256 (float32, batch 32), timed alternately in this process with 1 thread, for growing T, for the
    fused built-in ``lstm`` and for the same equations written as a plain-form cell (a user's ``step``,
    trained step by step): the ratio stays flat when the probe's cost grows linearly in T, as a step's does."""
    import torch

    from benchmarks.plain_cells import PlainLSTM
    from rnnbench.diagnostics.measures.gradient_flow import gradient_through_time
    from rnnbench.models import CELLS, LayerStack

    torch.set_num_threads(1)
    rows = []
    for name, cell in (("lstm (fused)", CELLS["lstm"]), ("PlainLSTM (plain form)", PlainLSTM)):
        per_step = []
        for steps in ((35, 70) if quick else (35, 100, 400)):
            torch.manual_seed(0)
            stack, head = LayerStack(cell, 28, 256), torch.nn.Linear(256, 28)
            optimizer = torch.optim.Adam([*stack.parameters(), *head.parameters()])
            inputs, targets = torch.randn(32, steps, 28), torch.randint(0, 28, (32, steps))

            def train_step() -> None:
                loss = torch.nn.functional.cross_entropy(head(stack(inputs)[0]).reshape(-1, 28), targets.reshape(-1))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

            def probe() -> None:
                gradient_through_time(stack, inputs, lambda output, h_n: torch.nn.functional.cross_entropy(
                    head(output[:, -1]), targets[:, -1], reduction="sum"))

            timings: dict[str, list[float]] = {"step": [], "probe": []}
            for _ in range(1 + repeats):  # the first round warms up
                for kind, work in (("step", train_step), ("probe", probe)):
                    started = time.perf_counter()
                    work()
                    timings[kind].append(time.perf_counter() - started)
            step, probe_seconds = (statistics.median(timings[k][1:]) for k in ("step", "probe"))
            per_step.append((steps, probe_seconds / step, probe_seconds / steps))
        base = per_step[0][2]
        for steps, ratio, per_t in per_step:
            rows.append({"cell": name, "T": steps, "probe / training step": round(ratio, 2),
                         f"probe seconds per time step, relative to T={per_step[0][0]}": round(per_t / base, 2)})
            log(rows[-1])
    return rows


THREAD_OPTIONS = {  # name -> (threads, extra environment)
    "1 thread": (1, {}),
    "2 threads (torch's default here)": (2, {}),
    "2 threads, OMP_WAIT_POLICY=PASSIVE": (2, {"OMP_WAIT_POLICY": "PASSIVE"}),
}


def thread_choice(repeats: int, log, quick: bool = False) -> list[dict]:
    """Steady-state throughput of the default run (W&B offline, diagnostics) with each thread option, on an idle
    machine and while another process keeps one core busy (as another tenant or a second job does), for the
    default model (adding, LSTM-64, batch 32) and a bigger one (character LM, LSTM-256, batch 256)."""
    cases = {"default (adding, LSTM-64, batch 32)": Case(data="adding", cell="lstm", hidden=64, seq_len=50, batch=32,
                                                        steps=21 if quick else 301, clip=None),
             "bigger (char LM, LSTM-256, batch 256)": Case(cell="lstm", hidden=256, batch=256,
                                                          steps=11 if quick else 61, clip=None)}
    rows = []
    for case_name, case in (list(cases.items())[:1] if quick else cases.items()):
        for load in ("idle", "one core busy"):
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load != "idle" else None
            try:
                samples: dict[str, list[float]] = {name: [] for name in THREAD_OPTIONS}
                for repeat in range(repeats):
                    names = list(THREAD_OPTIONS)
                    for name in names[repeat % len(names):] + names[:repeat % len(names)]:
                        threads, env = THREAD_OPTIONS[name]
                        samples[name].append(run_harness(replace(case, threads=threads), "default", **env)
                                             ["tokens_per_second"])
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
            best = max(statistics.median(v) for v in samples.values())
            for name, values in samples.items():
                rows.append({"model": case_name, "machine": load, "threads": name,
                             "tokens/s": round(statistics.median(values)),
                             "/ best here": round(statistics.median(values) / best, 3)})
                log(rows[-1])
    return rows


CELL_VARIANTS = {  # name -> rnnbench overrides: the same LSTM equations run four ways
    "lstm (fused twin)": ["model.cell=lstm"],
    "plain-form cell": ["model.cell=benchmarks.plain_cells.PlainLSTM"],
    "batched input projection": ["model.cell=benchmarks.plain_cells.ProjectedLSTM"],
    "plain-form cell + model.compile": ["model.cell=benchmarks.plain_cells.PlainLSTM", "model.compile=true"],
}


def cell_speed(repeats: int, log, quick: bool = False) -> list[dict]:
    """Steady-state throughput of rnnbench's default run (W&B offline, diagnostics, clipping) for the LSTM's
    equations as the fused built-in, as a user's plain ``step`` (no speed hooks), with a batched input
    projection, and compiled; B=32, H=128, T=50, character LM, 1 thread; variants interleaved, medians."""
    case = Case(data="timemachine", cell="lstm", batch=32, hidden=128, seq_len=50, steps=21 if quick else 201)
    variants = list(CELL_VARIANTS)[:2] if quick else list(CELL_VARIANTS)
    samples: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for repeat in range(repeats):
        for variant in variants[repeat % len(variants):] + variants[:repeat % len(variants)]:
            samples[variant].append(run_harness(replace(case, extra=tuple(CELL_VARIANTS[variant])), "default"))
    fused = statistics.median(r["tokens_per_second"] for r in samples[variants[0]])
    fused_cpu = statistics.median(r["tokens_per_cpu_second"] for r in samples[variants[0]])
    rows = []
    for variant in variants:
        wall = statistics.median(r["tokens_per_second"] for r in samples[variant])
        cpu = statistics.median(r["tokens_per_cpu_second"] for r in samples[variant])
        rows.append({"cell": variant, "tokens/s": round(wall), "/ fused": round(wall / fused, 3),
                     "/ fused (CPU time)": round(cpu / fused_cpu, 3),
                     "process s": round(statistics.median(r["process_seconds"] for r in samples[variant]), 1)})
        log(rows[-1])
    return rows


HARNESS_NOTE = ("Character LM (vocabulary 28), T=35, hidden 256, Adam, norm clipping 1.0; steady state (every "
                "step after the first, holding one probe per 100 steps, the default cadence). `plain`: the "
                "hand-written loop; `lightning`: a bare Trainer on the same model and data module; `off`: "
                "`rnnbench train` with no logger and no diagnostics; `no_diagnostics`: W&B offline + CSV; "
                "`default`: W&B offline + CSV and the default diagnostics.")

SWEEP_12 = ("data=adding", "data.seq_len=50", "model.hidden_size=64", "trainer.max_steps=300",
            "model.cell=rnn,lstm,gru", "seed=0,1,2,3")


def sweep_speed(sweep: list[str], repeats: int, log, keep: Path | None = None) -> list[dict]:
    """Wall time of one multirun with Hydra's basic launcher (one job after another, each with every
    core) against the joblib launcher (one job per core, one thread each), interleaved."""
    rows, seconds = [], {"basic": [], "joblib": []}
    for repeat in range(repeats):
        for launcher in (["basic", "joblib"] if repeat % 2 == 0 else ["joblib", "basic"]):
            with tempfile.TemporaryDirectory() as workdir:
                sweep_dir = (keep / launcher if keep and repeat == 0 else Path(workdir) / "sweep").resolve()
                command = [sys.executable, "-m", "rnnbench", "train", "-m", *sweep, f"hydra.sweep.dir={sweep_dir}",
                           *(["hydra/launcher=joblib"] if launcher == "joblib" else [])]
                started = time.perf_counter()
                done = subprocess.run(command, cwd=workdir, env=_env(os.cpu_count() or 1), capture_output=True,
                                      text=True)
                seconds[launcher].append(time.perf_counter() - started)
                records = [json.loads(p.read_text()) for p in sweep_dir.rglob("result.json")]
                if done.returncode != 0 or not records:
                    raise RuntimeError(f"sweep failed with the {launcher} launcher: {done.stderr[-2000:]}")
                log({"launcher": launcher, "jobs": len(records), "seconds": round(seconds[launcher][-1], 1)})
    basic, joblib = (statistics.median(seconds[k]) for k in ("basic", "joblib"))
    rows.append({"sweep": " ".join(sweep), "jobs": len(records), "cores": os.cpu_count(), "repeats": repeats,
                 "basic launcher s": round(basic, 1), "joblib launcher s": round(joblib, 1),
                 "speed-up": round(basic / joblib, 2)})
    log(rows[-1])
    return rows


def data_loading(repeats: int, log) -> list[dict]:
    """Share of the training step spent fetching batches, from Lightning's SimpleProfiler."""
    rows = []
    for case in (Case(hidden=64, batch=32, steps=300), Case(hidden=256, batch=256, steps=40)):
        shares = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as workdir:
                profiler = (f"+trainer.profiler={{_target_: pytorch_lightning.profilers.SimpleProfiler, "
                            f"dirpath: {workdir}/profile, filename: simple}}")
                subprocess.run([sys.executable, "-m", "rnnbench", "train", *case.overrides(), profiler],
                               cwd=workdir, env=_env(case.threads), capture_output=True, text=True, check=True)
                report = (Path(workdir) / "profile" / "fit-simple.txt").read_text()
            totals = {line.split("|")[1].strip(): float(line.split("|")[4]) for line in report.splitlines()
                      if line.startswith("|") and line.count("|") >= 6 and line.split("|")[4].strip()[:1].isdigit()}
            fetch = totals["[_TrainingEpochLoop].train_dataloader_next"]
            shares.append(fetch / (fetch + totals["run_training_batch"]))
        row = {"cell": case.cell, "batch": case.batch, "hidden": case.hidden, "T": case.seq_len,
               "data loading % of step": round(100 * statistics.median(shares), 2)}
        rows.append(row)
        log(row)
    return rows


def padding_overhead(batch: int, log) -> list[dict]:
    """Processed / useful steps of one training epoch of each music set at ``batch`` pieces per batch: rnnbench's
    length-bucketed batches against naive padding of random batches (the same seeded permutation); no timing."""
    import torch

    from rnnbench.data import PolyphonicMusic
    from rnnbench.data.base import LengthBucketedBatches, ResumableBatches, padded_steps

    rows = []
    for name, file in MUSIC_FILES.items():
        data = PolyphonicMusic(name=name, file=file, path=str(MUSIC / file), batch_size=batch)
        dataset, _ = data.batches("train", shuffle=True)
        lengths = dataset.lengths
        ours = padded_steps(lengths, LengthBucketedBatches(lengths, batch, torch.Generator().manual_seed(0)).epoch())
        naive = padded_steps(lengths, ResumableBatches(len(lengths), batch, torch.Generator().manual_seed(0)).epoch())
        rows.append({"set": name, "pieces": len(lengths), "batch": batch, "useful steps": ours["useful"],
                     "rnnbench processed / useful": round(ours["processed"] / ours["useful"], 3),
                     "naive processed / useful": round(naive["processed"] / naive["useful"], 3)})
        log(rows[-1])
    return rows


def write_table(rows: list[dict], path: Path, title: str, note: str) -> None:
    if not rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"## {title}", "", note, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")


MUSIC_NOTE = ("Steady-state training throughput in real (unpadded) time steps per second, JSB Chorales, the "
              "model at 20,000 parameters (model.param_budget), batches of 16 pieces, RMSProp, clipping at 1, 1 "
              "thread. `plain`: a hand-written loop over the same length-bucketed batches and the same model fed "
              "each piece's length (the fused kernels read a pack_padded_sequence), no logging or callbacks. "
              "`lightning`: a bare Lightning Trainer on the same module and data. `off`: `rnnbench train` without "
              "logger and diagnostics. `no_diagnostics`: W&B offline and CSV, no diagnostics. `default`: `rnnbench "
              "train` with W&B offline and the diagnostics. Medians "
              "of interleaved repeats, each in its own process; the ratios are the numbers to quote.")
PADDING_NOTE = ("One training epoch's batches of 16 pieces, the same seeded permutation: `processed` is each batch's "
                "size times its longest piece, summed; `useful` the pieces' own steps. rnnbench sorts pools of 50 "
                "batches by length before cutting them (rnnbench.data.base.LengthBucketedBatches).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=["overhead", "harness", "scaling", "startup", "data", "sweep", "cells", "threads", "music", "all"], default="overhead")
    parser.add_argument("--quick", action="store_true", help="fewer cases and steps (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep", nargs="+", default=list(SWEEP_12),
                        help="the multirun overrides the sweep suite times (default: a 12-job sweep)")
    parser.add_argument("--keep-runs", type=Path, help="sweep suite: keep the first repeat's sweep dirs here")
    parser.add_argument("--output", type=Path, default=REPO / "results" / "performance")
    parser.add_argument("--baseline-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_worker:
        kind, case = args.baseline_worker
        baseline_worker(Case(**{k: tuple(v) if k == "extra" else v for k, v in json.loads(case).items()}), kind)
        return

    def log(row):
        print(json.dumps(row), flush=True)

    # 201 steps: 200 timed (the first is warm-up) holding the probes after steps 100 and 200, which is
    # exactly the default cadence; 101 for the costlier cases (one probe in 100 timed steps).
    steps, short = (20, 20) if args.quick else (201, 101)
    suites = (["overhead", "harness", "scaling", "startup", "data", "sweep", "cells", "threads", "music"] if args.suite == "all"
              else [args.suite])
    tag = "_quick" if args.quick else ""
    for suite in suites:
        if suite == "overhead":
            cases = [Case(data="timemachine", cell="lstm", hidden=256, seq_len=32, batch=128, steps=steps),
                     Case(data="adding", cell="lstm", hidden=64, seq_len=100, batch=64, steps=steps),
                     Case(data="adding", cell="rnn", hidden=64, seq_len=100, batch=64, steps=steps)]
            rows = compare(cases[:1] if args.quick else cases, ["no_diagnostics", "default"], args.repeats, log)
            write_table(rows, args.output / f"diagnostics_overhead{tag}", "Diagnostics on vs off",
                        "Both W&B offline + CSV logging and norm clipping 1.0, 1 thread; `default / no_diagnostics` is "
                        f"the steady-state throughput ratio with every instrument at its default cadence ({steps} steps: "
                        "the first is warm-up, the 200 timed ones hold the probes after steps 100 and 200, one per "
                        "100 steps as in a long run; the probes at the start and the end are one-off costs outside "
                        "the timed window, as is start-up). The data sets' default "
                        "T (32 for timemachine; 100 for adding as the issue asks), timemachine at batch 128 instead "
                        "of its default 1024 to keep the benchmark short (a larger batch makes the probe relatively "
                        "cheaper).")
        elif suite == "harness":
            cells = ["lstm"] if args.quick else ["rnn", "lstm", "gru"]
            cases = [Case(cell=c, batch=32, steps=steps) for c in cells]
            if not args.quick:
                cases += [Case(cell="lstm", batch=256, steps=short),
                          Case(cell="lstm", batch=32, threads=2, steps=steps)]
            rows = compare(cases, ["plain", "lightning", "off", "no_diagnostics", "default"], args.repeats, log,
                           pairs=(("off", "lightning"), ("default", "no_diagnostics")))
            write_table(rows, args.output / f"harness_vs_plain{tag}", "rnnbench against a plain PyTorch loop",
                        HARNESS_NOTE)
        elif suite == "scaling":
            base = Case(steps=short, batch=32)
            grid = ([base] if args.quick else
                    [Case(seq_len=t, steps=base.steps) for t in (35, 100, 400)]
                    + [Case(hidden=h, steps=base.steps) for h in (64, 1024)]
                    + [Case(layers=n, steps=base.steps) for n in (2, 3)])
            rows = compare(grid, ["plain", "default"], max(1, args.repeats - 1), log)
            write_table(rows, args.output / f"scaling{tag}", "Throughput against the work",
                        "LSTM character LM, batch 32, 1 thread; harness with default diagnostics and W&B offline.")
        elif suite == "data":
            rows = data_loading(max(1, args.repeats - 2), log)
            write_table(rows, args.output / f"data_loading{tag}", "Data loading",
                        "Lightning SimpleProfiler: `train_dataloader_next` against `run_training_batch`, LSTM "
                        "character LM, T=35, 1 thread, default diagnostics and W&B offline.")
        elif suite == "sweep":
            sweep = ["data=adding", "data.seq_len=10", "model.cell=rnn,gru", "trainer.max_steps=20"] if args.quick else args.sweep
            rows = sweep_speed(sweep, 1 if args.quick else max(1, args.repeats - 1), log, args.keep_runs)
            name = "sweep_speed" if sweep == list(SWEEP_12) or args.quick else "sweep_speed_" + "_".join(
                o.split("=")[-1] for o in sweep if o.startswith("experiment="))
            write_table(rows, args.output / f"{name}{tag}", "Sweep wall time: basic against joblib launcher",
                        "Whole `rnnbench train -m` processes, W&B offline unless the sweep says otherwise; basic: "
                        "one job at a time with torch's default threads (all cores); joblib: one job per core, "
                        "one torch thread each (rnnbench's ThreadsPerJob callback).")
        elif suite == "cells":
            rows = cell_speed(args.repeats, log, args.quick)
            write_table(rows, args.output / f"cells{tag}", "The same LSTM as a fused twin, a plain-form cell, with a "
                        "batched input projection, and compiled",
                        "`rnnbench train` default run (W&B offline + CSV, default diagnostics, norm clipping 1.0), "
                        "character LM, batch 32, hidden 128, T=50, 1 thread, Adam; steady-state throughput (every "
                        "step after the first: model.compile's one-off compilation falls in the first step, so "
                        "`process s` shows it). `plain-form cell`: `benchmarks/plain_cells.py::PlainLSTM`, PyTorch's "
                        "LSTM equations in a `step` as README's example writes one; `batched input projection`: the "
                        "built-in lstm's `project_input`/`step_projected` run step by step.")
            rows = probe_cost(3 if args.quick else 5, log, args.quick)
            write_table(rows, args.output / f"probe_cost{tag}", "Gradient-through-time probe against T",
                        "One exact probe (float64, 32 samples, every step, h and c) against one training step "
                        "(float32, batch 32) of the same LSTM-256, fused or plain-form, timed alternately in one "
                        "process, 1 thread, median of 5. At the default cadence a probe runs once per 100 steps.")
        elif suite == "threads":
            rows = thread_choice(args.repeats, log, args.quick)
            write_table(rows, args.output / f"threads{tag}", "Torch threads: idle and shared machine",
                        "`rnnbench train` default run (W&B offline + CSV, default diagnostics), steady-state "
                        "throughput, medians of interleaved repeats; `one core busy`: a `while True: pass` process "
                        "runs beside it for the whole measurement, as another tenant's job or a second sweep job "
                        "would. `/ best here`: against the fastest option in the same model and machine state.")
        elif suite == "music":
            cells = ["gru"] if args.quick else ["rnn", "gru", "lstm"]
            cases = [Case(data="jsb_chorales", cell=c, batch=16, param_budget=20000, optimizer="rmsprop",
                          steps=steps) for c in cells]
            rows = compare(cases, ["plain", "lightning", "off", "no_diagnostics", "default"], args.repeats, log,
                           pairs=(("off", "lightning"), ("default", "no_diagnostics")))
            write_table(rows, args.output / f"music{tag}", "Polyphonic music (JSB Chorales): rnnbench against a "
                        "packed plain loop", MUSIC_NOTE)
            rows = padding_overhead(16, log)
            write_table(rows, args.output / f"padding{tag}", "Padding: rnnbench's length-bucketed batches against "
                        "naive padding", PADDING_NOTE)
        elif suite == "startup":
            rows = startup(args.repeats, log)
            write_table(rows, args.output / f"startup{tag}", "Start-up", "Median seconds of a cold process.")
    (args.output / f"machine{tag}.json").write_text(json.dumps({
        "python": platform.python_version(), "machine": platform.machine(), "processor": platform.processor(),
        "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv)}, indent=2))


if __name__ == "__main__":
    main()
