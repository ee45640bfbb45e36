"""``rnnbench``: a small command line that dispatches to the Hydra app and the reporting tools."""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import sys
from pathlib import Path

# Each command parses its own arguments (train's are Hydra's overrides and flags): they reach it untouched.
COMMAND_HELP = {
    "train": "[-m] [KEY=VALUE ...]: train one run, or a Hydra multirun sweep with -m (see: rnnbench train --help)",
    "table": "SWEEP_DIR [...]: one table of the runs below the dirs: mean ± std (n) over seeds per group, or "
             "--compare KEY=A KEY=B: A > B, A < B, equivalent or inconclusive, Holm-adjusted over the table "
             "(see: rnnbench table --help)",
    "plot": "SWEEP_DIR [...] --kind gradient-flow|curves|curves-time|clip-rate|gates|all: PNG and SVG figures of "
            "the runs below the dirs (see: rnnbench plot --help)",
    "report": "SWEEP_DIR [...] [-o report.html]: one self-contained HTML page of the runs: table, comparisons, "
              "figures, runs, provenance; opens from disk, no network (see: rnnbench report --help)",
    "status": "DIR [...]: the state of a running or finished sweep: completed, diverged, failed, running (step, "
              "speed, ETA), killed, not started",
}
EPILOG = "Every job writes result.json in its Hydra output dir (outputs/... or multirun/...)."

# Hydra's own flags: they inspect or print the config, so there is nothing to validate first.
HYDRA_INSPECTION_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--version",
                          "--shell-completion", "-sc", "--resolve", "--package", "-p", "--config-path", "-cp",
                          "--config-name", "-cn", "--config-dir", "-cd", "--experimental-rerun")


def train(arguments: list[str]) -> int:
    if "--version" in arguments:
        print(version())
        return 0
    if any(a.split("=")[0] in HYDRA_INSPECTION_FLAGS for a in arguments):
        from rnnbench.job import app  # --help, --cfg, ...: Hydra inspects or prints, nothing runs

        # @hydra.main reads its command line from sys.argv (Hydra's only public entry for --help, --cfg, ...)
        saved, sys.argv = sys.argv, ["rnnbench train", *arguments]
        helping = any(a in ("--help", "-h") for a in arguments)
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed) if helping else contextlib.nullcontext():
                app.train()
        finally:
            sys.argv = saved
            if helping:  # Hydra's help (it exits), with the cells listed beside the config groups
                sys.stdout.write(with_cells(printed.getvalue()))
        return 0
    from rnnbench.launch.train import train as launch

    return launch(arguments)


REGISTRY = Path(__file__).resolve().parent / "models" / "cells" / "registry.py"


def cell_names() -> list[str]:
    """The names of the registered cells (``rnnbench.models.cells.registry.CELLS``), read from the registry's
    source rather than imported: importing it imports torch, seconds that ``rnnbench train --help`` need not
    wait. [] when the source holds no such literal dict (a help without the list, never an error)."""
    try:
        tree = ast.parse(REGISTRY.read_text())
    except (OSError, SyntaxError, ValueError):
        return []
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else \
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(target, ast.Name) and target.id == "CELLS" and isinstance(node.value, ast.Dict):
            return [key.value for key in node.value.keys
                    if isinstance(key, ast.Constant) and isinstance(key.value, str)]
    return []


def with_cells(help_text: str) -> str:
    """Hydra's help for ``rnnbench train`` with a section listing the registered cells, before its config."""
    names = cell_names()
    if not names:
        return help_text
    section = ("== Cells ==\nChoose the recurrent cell with model.cell=NAME, or the dotted path "
               "package.module.ClassName of a rnnbench.models.cells.Cell subclass\n\n"
               f"model.cell: {', '.join(names)}\n\n\n")
    head, marker, tail = help_text.partition("== Config ==")
    return head + section + marker + tail if marker else help_text + "\n" + section


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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # rnnbench's errors are one line, without the usage
        self.exit(2, f"rnnbench: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    """``rnnbench COMMAND ...``: a command's own arguments are left unparsed here (no ``--help`` of its own,
    no arguments declared), so that :func:`main` hands them on in order."""
    top = _Parser(prog="rnnbench", description="Train recurrent networks under Hydra, and read their records.",
                  epilog=EPILOG)
    top.add_argument("-V", "--version", action="store_true", help="its version and its main packages")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMANDS:
        commands.add_parser(name, help=COMMAND_HELP[name], add_help=False)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    top = parser()
    try:
        parsed, arguments = top.parse_known_args(argv)
        if arguments and argv[:1] != [parsed.command]:  # an option before the command
            top.error(f"unrecognized arguments: {' '.join(arguments)}")
    except SystemExit as exit:  # --help (0), an error (2): printed already
        return int(exit.code or 0)
    if parsed.version:
        print(version())
        return 0
    if parsed.command is None:
        top.print_help()
        return 2
    try:
        return COMMANDS[parsed.command](arguments)
    except KeyboardInterrupt:  # Ctrl-C before a run's own handler is in place (imports, validation): no traceback
        print("rnnbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
