"""``rnnbench``: a small command line that dispatches to the Hydra app and the reporting tools."""

from __future__ import annotations

import sys

USAGE = """usage: rnnbench COMMAND [ARGS]   (rnnbench --version: its version and its main packages)

commands:
  train [-m] [KEY=VALUE ...]   train one run, or a Hydra multirun sweep with -m (see: rnnbench train --help)
  table SWEEP_DIR [...]        one table of the runs below the dirs: mean ± std (n) over seeds per group,
                               or --compare KEY=A KEY=B: differences with t-intervals, p-values and Holm's
                               correction (see: rnnbench table --help)
  plot SWEEP_DIR [...] --kind gradient-flow|curves|curves-time|clip-rate|gates|all
                               PNG and SVG figures of the runs below the dirs (see: rnnbench plot --help)
  report SWEEP_DIR [...] [-o report.html]
                               one self-contained HTML page of the runs: table, comparisons, figures, runs,
                               provenance; opens from disk, no network (see: rnnbench report --help)
  status DIR [...]             the state of a running or finished sweep: completed, diverged, failed,
                               running (step, speed, ETA), killed, not started

Every job writes result.json in its Hydra output dir (outputs/... or multirun/...)."""

# Hydra's own flags: they inspect or print the config, so there is nothing to validate first.
HYDRA_INSPECTION_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--version",
                          "--shell-completion", "-sc", "--resolve", "--package", "-p", "--config-path", "-cp",
                          "--config-name", "-cn", "--config-dir", "-cd", "--experimental-rerun")


def train(arguments: list[str]) -> int:
    if "--version" in arguments:
        print(version())
        return 0
    import rnnbench.hydra_setup  # noqa: F401  (the resolvers the Hydra config uses, before anything is composed)

    if any(a.split("=")[0] in HYDRA_INSPECTION_FLAGS for a in arguments):
        from rnnbench.job import app  # --help, --cfg, ...: Hydra inspects or prints, nothing runs

        sys.argv = ["rnnbench train", *arguments]
        app.train()
        return 0
    from rnnbench.launch.train import train as launch

    return launch(arguments)


def table(arguments: list[str]) -> int:
    from rnnbench.report.commands import table_command

    return table_command(arguments)


def plot(arguments: list[str]) -> int:
    from rnnbench.report.commands import plot_command

    return plot_command(arguments)


def report(arguments: list[str]) -> int:
    from rnnbench.report.commands import report_command

    return report_command(arguments)


def status(arguments: list[str]) -> int:
    from rnnbench.report.status import status_command

    return status_command(arguments)


COMMANDS = {"train": train, "table": table, "plot": plot, "report": report, "status": status}


def version() -> str:
    """``rnnbench X.Y.Z`` and the versions of the packages a run's result depends on, one line."""
    from rnnbench import __version__
    from rnnbench.record.schema import versions

    found = versions()
    return f"rnnbench {__version__} (" + ", ".join(f"{k} {v}" for k, v in found.items() if v) + ")"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-V", "--version"):
        print(version())
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"rnnbench: error: unknown command {argv[0]!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return command(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
