"""Training throughput of rnnbench against a hand-written PyTorch loop, measured side by side.

    python -m benchmarks.throughput --suite overhead      # diagnostics on vs off (the diagnostics' cost budget)
    python -m benchmarks.throughput --suite harness       # rnnbench (default logging + diagnostics, W&B offline) vs plain loop
    python -m benchmarks.throughput --suite scaling       # tokens/s against T, hidden, layers; probe cost against T
    python -m benchmarks.throughput --suite startup       # seconds from launch to the first training step
    python -m benchmarks.throughput --suite data          # share of the step spent fetching batches
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEXT = REPO.parent / "shared" / "data" / "timemachine.txt"


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
    steps: int = 200
    clip: float | None = 1.0
    extra: tuple[str, ...] = field(default=())

    def overrides(self) -> list[str]:
        data = [f"data={self.data}", f"data.seq_len={self.seq_len}", f"data.batch_size={self.batch}",
                "data.num_val=256", "data.num_test=256"]
        if self.data == "timemachine":
            data += [f"data.path={TEXT}", f"data.num_train={max(10_000, self.batch * 40)}"]
        return [*data, f"model.cell={self.cell}", f"model.hidden_size={self.hidden}",
                f"model.num_layers={self.layers}", f"threads={self.threads}", f"trainer.max_steps={self.steps}",
                # validate only after fit, outside the timed part, as a long run does rarely
                f"trainer.val_check_interval={self.steps + 1}",
                f"trainer.gradient_clip_val={'null' if self.clip is None else self.clip}", "optim=adam",
                *self.extra]


def _env(threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    return env


def run_harness(case: Case, variant: str) -> dict[str, float]:
    """``rnnbench train`` as a user runs it; throughput from its result.json (fit minus validation)."""
    settings = {"default": [], "off": ["diagnostics=none", "logger=none"],
                "no_diagnostics": ["diagnostics=none"]}[variant]
    with tempfile.TemporaryDirectory() as workdir:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "rnnbench", "train", *case.overrides(), *settings],
                              cwd=workdir, env=_env(case.threads), capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        records = list(Path(workdir).rglob("result.json"))
        if done.returncode != 0 or not records:
            raise RuntimeError(f"rnnbench train failed for {case}: {done.stderr[-2000:]}")
        record = json.loads(records[0].read_text())
    return {"tokens_per_second": record["throughput"]["tokens_per_second"],
            "tokens_per_cpu_second": record["throughput"]["tokens_per_cpu_second"], "process_seconds": elapsed}


def run_plain(case: Case) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.throughput", "--plain-worker",
                           json.dumps(asdict(case))], cwd=REPO, env=_env(case.threads), capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"plain loop failed for {case}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plain_worker(case: Case) -> None:
    """The baseline a careful engineer writes by hand: the same model, data, optimizer and clipping;
    whole batches gathered from in-memory tensors; no logging, no callbacks, no framework."""
    import torch

    from rnnbench.data import AddingProblem, TimeMachine
    from rnnbench.models import SequenceModel

    torch.set_num_threads(case.threads)
    torch.manual_seed(0)
    if case.data == "timemachine":
        data = TimeMachine(path=str(TEXT), seq_len=case.seq_len, batch_size=case.batch,
                           num_train=max(10_000, case.batch * 40), num_val=256, num_test=256)
    else:
        data = AddingProblem(seq_len=case.seq_len, batch_size=case.batch, num_val=256, num_test=256)
    data.setup()
    inputs, targets = data.splits["train"]
    model = SequenceModel(data.task, cell=case.cell, hidden_size=case.hidden, num_layers=case.layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    task, steps, order, position = data.task, 0, torch.randperm(len(inputs)), 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while steps < case.steps:
        if position + case.batch > len(order):
            order, position = torch.randperm(len(inputs)), 0
        index = order[position:position + case.batch]
        position += case.batch
        loss = task.compute_loss(model(inputs[index]), targets[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if case.clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), case.clip)
        optimizer.step()
        steps += 1
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    tokens = steps * case.batch * task.seq_len
    print(json.dumps({"tokens_per_second": tokens / seconds, "tokens_per_cpu_second": tokens / cpu_seconds}))


def compare(cases: list[Case], variants: list[str], repeats: int, log) -> list[dict]:
    """Interleave the variants of each case ``repeats`` times; medians and ratios to the first variant,
    by wall time (what a user waits for) and by the process's CPU time (steadier on a busy machine)."""
    rows = []
    for case in cases:
        samples: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        for repeat in range(repeats):
            order = variants[repeat % len(variants):] + variants[:repeat % len(variants)]
            for variant in order:
                samples[variant].append(run_plain(case) if variant == "plain" else run_harness(case, variant))
        wall = {v: statistics.median(r["tokens_per_second"] for r in s) for v, s in samples.items()}
        cpu = {v: statistics.median(r["tokens_per_cpu_second"] for r in s) for v, s in samples.items()}
        row = {"data": case.data, "cell": case.cell, "batch": case.batch, "hidden": case.hidden,
               "layers": case.layers, "T": case.seq_len, "threads": case.threads, "steps": case.steps}
        row.update({f"{v} tokens/s": round(m) for v, m in wall.items()})
        base = variants[0]
        row.update({f"{v} / {base}": round(wall[v] / wall[base], 3) for v in variants[1:]})
        row.update({f"{v} / {base} (CPU time)": round(cpu[v] / cpu[base], 3) for v in variants[1:]})
        rows.append(row)
        log(row)
    return rows


def startup(repeats: int, log) -> list[dict]:
    """Seconds from launching `rnnbench train` to its first training step, and what they go to."""
    probe = ("import time, sys; t0 = time.perf_counter(); import {module}; "
             "print(time.perf_counter() - t0)")
    rows = []
    for module in ("torch", "pytorch_lightning", "wandb", "hydra", "rnnbench.training.run"):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=["overhead", "harness", "scaling", "startup", "data", "all"], default="overhead")
    parser.add_argument("--quick", action="store_true", help="fewer cases and steps (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "results" / "performance")
    parser.add_argument("--plain-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_worker:
        plain_worker(Case(**{k: tuple(v) if k == "extra" else v for k, v in json.loads(args.plain_worker).items()}))
        return

    def log(row):
        print(json.dumps(row), flush=True)

    steps = 20 if args.quick else 200
    suites = ["overhead", "harness", "scaling", "startup", "data"] if args.suite == "all" else [args.suite]
    tag = "_quick" if args.quick else ""
    for suite in suites:
        if suite == "overhead":
            cases = [Case(data="timemachine", cell="lstm", hidden=256, seq_len=32, batch=128, steps=steps),
                     Case(data="adding", cell="lstm", hidden=64, seq_len=100, batch=64, steps=steps),
                     Case(data="adding", cell="rnn", hidden=64, seq_len=100, batch=64, steps=steps)]
            rows = compare(cases[:1] if args.quick else cases, ["no_diagnostics", "default"], args.repeats, log)
            write_table(rows, args.output / f"diagnostics_overhead{tag}", "Diagnostics on vs off",
                        "Both W&B offline + CSV logging and norm clipping 1.0, 1 thread; `default / no_diagnostics` is "
                        f"the throughput ratio with every instrument at its default cadence ({steps} steps: probes at "
                        "0, 100, 200, so 1.5 probes per 100 steps against 1 in a long run). The data sets' default "
                        "T (32 for timemachine; 100 for adding as the issue asks), timemachine at batch 128 instead "
                        "of its default 1024 to keep the benchmark short (a larger batch makes the probe relatively "
                        "cheaper).")
        elif suite == "harness":
            cells = ["lstm"] if args.quick else ["rnn", "lstm", "gru"]
            cases = [Case(cell=c, batch=32, steps=steps) for c in cells]
            if not args.quick:
                cases += [Case(cell="lstm", batch=256, steps=max(steps // 4, 10)),
                          Case(cell="lstm", batch=32, threads=2, steps=steps)]
            rows = compare(cases, ["plain", "default", "off"], args.repeats, log)
            write_table(rows, args.output / f"harness_vs_plain{tag}", "rnnbench against a plain PyTorch loop",
                        "Character LM (vocabulary 28), T=35, hidden 256, Adam, norm clipping 1.0. `default`: W&B "
                        "offline + CSV, default diagnostics; `off`: no logger, no diagnostics.")
        elif suite == "scaling":
            base = Case(steps=max(steps // 4, 10), batch=32)
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
        elif suite == "startup":
            rows = startup(args.repeats, log)
            write_table(rows, args.output / f"startup{tag}", "Start-up", "Median seconds of a cold process.")
    (args.output / f"machine{tag}.json").write_text(json.dumps({
        "python": platform.python_version(), "machine": platform.machine(), "processor": platform.processor(),
        "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv)}, indent=2))


if __name__ == "__main__":
    main()
