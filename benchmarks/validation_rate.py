"""How fast ``rnnbench train -m`` validates every job of a large grid before any starts, in jobs per second.

    python -m benchmarks.validation_rate            # the two large grids below, 3 repeats
    python -m benchmarks.validation_rate --quick    # grids a tenth of the size, 1 repeat (a smoke run)

A grid whose jobs differ only in keys checked by their own rule (seeds) needs one full validation per other
combination; a grid of values (optim.lr x model.hidden_size) one per new value of each part. Each measurement
runs in its own process (as a command's validation does), with one torch thread, and times the validation
alone (``rnnbench.launch.validate.preflight``), not the imports; the table reports medians. The rate was a test's
assertion once (over 1,000 jobs/s on an idle machine); on a shared machine it is a number to watch, not a test.
Tables go to ``results/performance/`` as markdown and CSV.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.throughput import REPO, _env, write_table

GRIDS = {
    "20,000 seeds x 3 cells": ["-m", "seed=range(0,20000)", "model.cell=rnn,lstm,gru"],
    "100 learning rates x 100 hidden sizes": ["-m", "optim=sgd", "optim.lr=range(1,101)",
                                              "model.hidden_size=range(8,108)"],
}
QUICK_GRIDS = {
    "2,000 seeds x 3 cells": ["-m", "seed=range(0,2000)", "model.cell=rnn,lstm,gru"],
    "10 learning rates x 100 hidden sizes": ["-m", "optim=sgd", "optim.lr=range(1,11)",
                                             "model.hidden_size=range(8,108)"],
}
WORKER = ("import json, sys, time; from rnnbench.launch.validate import preflight; "
          "arguments = json.loads(sys.argv[1]); started = time.perf_counter(); jobs = preflight(arguments); "
          "print(json.dumps({'jobs': jobs, 'seconds': time.perf_counter() - started}))")


def measure(arguments: list[str]) -> dict[str, float]:
    """Validate ``rnnbench train ARGUMENTS`` in a fresh process: {jobs, seconds} of the validation alone."""
    with tempfile.TemporaryDirectory() as workdir:
        done = subprocess.run([sys.executable, "-c", WORKER, json.dumps(arguments)], cwd=workdir, env=_env(1),
                              capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"validating {' '.join(arguments)} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def validation_rate(grids: dict[str, list[str]], repeats: int, log) -> list[dict]:
    """One row per grid: its job count, the median seconds to validate it and the jobs validated per second."""
    rows = []
    for name, arguments in grids.items():
        runs = [measure(arguments) for _ in range(repeats)]
        jobs = {run["jobs"] for run in runs}
        if len(jobs) != 1:
            raise RuntimeError(f"{name}: the job count changed between repeats: {sorted(jobs)}")
        seconds = statistics.median(run["seconds"] for run in runs)
        rows.append({"grid": name, "command": "rnnbench train " + " ".join(arguments), "jobs": jobs.pop(),
                     "seconds": round(seconds, 3), "jobs/s": round(runs[0]["jobs"] / seconds)})
        log(rows[-1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller grids, one repeat (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "results" / "performance")
    args = parser.parse_args()

    def log(row):
        print(json.dumps(row), flush=True)

    rows = validation_rate(QUICK_GRIDS if args.quick else GRIDS, 1 if args.quick else args.repeats, log)
    write_table(rows, args.output / f"validation_rate{'_quick' if args.quick else ''}",
                "Validation of every job before any starts",
                "Seconds to validate the whole grid in a fresh process (imports excluded), one torch thread, median "
                "of the repeats; `jobs/s` is the number to quote.")
    for row in rows:
        print(f"{row['grid']}: {row['jobs']:,} jobs in {row['seconds']} s, {row['jobs/s']:,} jobs/s")


if __name__ == "__main__":
    main()
