"""W&B native sweeps: the command line ``wandb agent`` builds from ``conf/wandb_sweep.yaml``.

``wandb sweep conf/wandb_sweep.yaml`` registers the sweep; ``wandb agent <id>`` then asks the
controller for parameter values and runs the sweep's ``command`` with W&B's macros filled in
(``${env}``, ``${program}``, ``${args_no_hyphens}``: ``key=value`` for every parameter), which is
``rnnbench train`` with Hydra overrides. :func:`agent_command` does the same expansion, with W&B's
own helpers, so that a test can run exactly what an agent would, without a server.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rnnbench.config import config_dir


def load_sweep_config(path: Path | None = None) -> dict[str, Any]:
    """The shipped sweep config (``conf/wandb_sweep.yaml``), or the one at ``path``."""
    return yaml.safe_load(Path(path or config_dir() / "wandb_sweep.yaml").read_text())


def agent_command(sweep: Mapping[str, Any], values: Mapping[str, Any]) -> list[str]:
    """The argv ``wandb agent`` runs for one run of ``sweep`` whose parameters got ``values``.

    Mirrors ``wandb.wandb_agent.Agent._command_run``: ``${envvar:NAME}`` expansion, then each
    ``${macro}`` item replaced by its list (``args_no_hyphens`` from ``create_sweep_command_args``).
    """
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    command = sweep_utils.create_sweep_command(list(sweep.get("command") or []) or None)
    macros: dict[str, Any] = sweep_utils.create_sweep_command_args(
        {"args": {name: {"value": value} for name, value in values.items()}})
    macros["interpreter"] = ["python"]
    macros["program"] = [sweep.get("program")]
    if platform.system() != "Windows":
        macros["env"] = ["/usr/bin/env"]
    argv: list[str] = []
    for item in map(str, command):
        if item.startswith("${") and item.endswith("}"):
            argv += macros.get(item[2:-1]) or []
        else:
            argv.append(item)
    return argv


def example_values(sweep: Mapping[str, Any]) -> dict[str, Any]:
    """One value per parameter, as a controller could send it: the fixed ``value``, the first of
    ``values``, or the geometric (log distributions) or arithmetic mean of ``min`` and ``max``."""
    chosen: dict[str, Any] = {}
    for name, spec in (sweep.get("parameters") or {}).items():
        if "value" in spec:
            chosen[name] = spec["value"]
        elif "values" in spec:
            chosen[name] = spec["values"][0]
        else:
            low, high = float(spec["min"]), float(spec["max"])
            distribution = str(spec.get("distribution", ""))
            if distribution in ("log_uniform", "q_log_uniform"):  # min and max are natural-log exponents
                chosen[name] = float(f"{math.exp((low + high) / 2):.3g}")
            elif "log" in distribution:
                chosen[name] = float(f"{(low * high) ** 0.5:.3g}")
            elif isinstance(spec["min"], int) and isinstance(spec["max"], int):
                chosen[name] = (spec["min"] + spec["max"]) // 2
            else:
                chosen[name] = (low + high) / 2
    return chosen
