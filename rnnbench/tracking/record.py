"""The result record: one ``result.json`` per run, the contract between training and reporting.

Schema (``schema`` = 1); every key is always present, ``null`` where it does not apply:

- ``status``: ``running`` (written at start; a record left so means the job was killed),
  ``completed``, ``diverged`` (a non-finite loss stopped training) or ``failed``.
- ``error`` / ``traceback``: one-line message and full traceback for ``failed`` runs.
- ``config``: the resolved config (secrets redacted); ``config_hash``: SHA-256 of what determines
  the result (the config without ``logger``, ``resume`` and ``threads``; seed included);
  ``overrides``: the job's command-line overrides; ``choices``: the config-group choices; ``seed``.
- ``task``: name, metric, metric_mode, seq_len, baseline_loss, baseline_metric, and ``reference`` (null, or a
  reference model on the same splits: ``name`` and its ``val/<metric>``, ``test/<metric>``; digits: logistic
  regression; timemachine: a smoothed character n-gram).
- ``metrics``: flat, final values ``train/loss``, ``val/loss``, ``val/<metric>``, ``test/loss``,
  ``test/<metric>``, and the best validation values ``best/val/loss``, ``best/val/<metric>``
  with the steps they were reached at ``best/val/<...>_step``.
- ``steps``: optimizer steps taken; ``diverged_at_step``: first step with a non-finite loss.
- ``progress``: while the run trains, its heartbeat (rewritten every 10 s): ``max_steps`` (the fit's total),
  ``steps_per_second`` (over the last 10 s), ``updated_at``; null in a finished record.
- ``wall_seconds`` (whole job), ``train_seconds`` (fit minus validation), ``throughput``
  (steady state, every step after the first: ``samples_per_second``, ``tokens_per_second``,
  ``tokens_per_cpu_second``, ``steps_timed``), ``parameters``; ``model_size``: ``hidden_size`` (the one
  ``model.param_budget`` chose, else the configured one), ``parameters``, ``param_budget``.
- ``output_dir``, ``wandb`` (``run_id``, ``mode``, ``dir``) when a W&B logger ran, ``device``,
  ``threads``, ``versions`` (python, torch, pytorch_lightning, hydra, wandb, torchmetrics, numpy),
  ``git`` (``commit``, ``dirty``) when the code runs from a git checkout, ``started_at``,
  ``finished_at`` (ISO 8601, UTC).
- ``gradients`` (null with ``diagnostics=none``), from the diagnostics callbacks:
  ``final_norm``, ``max_norm`` and ``last_finite_norm`` (pre-clip global L2 norms),
  ``clip_rate`` (fraction of steps where clipping fired; null without clipping),
  ``clipped_steps``, ``spikes``, ``nonfinite``, ``steps_measured``, ``probe_steps`` and
  ``layers``: one entry per layer and direction with ``layer``, ``direction`` and, for the
  hidden state ``h``: ``vanishing_log10`` (log10 ||dl/dh|| at the first processed step over that at
  the last, at the last probe), ``vanishing_log10_min`` (the smallest norm over all steps against the
  last: the dip of a U-shaped curve), ``reach`` (steps back until the norm has fallen 10x; T if it
  never does), each also ``_first`` (at the first probe, i.e. initialisation), and the curves
  ``curve_first``, ``curve_last`` (norms), ``log10_curve_first``, ``log10_curve_last``, in each
  direction's processing order, the last element nearest the loss (a backward direction processes
  position T first). The same keys prefixed ``cell_`` for the cell state ``c`` (null for cells
  without one) and ``<state>_`` for any other state of the cell (``lstm_fgr``: ``i_``, ``f_``, ``o_``).
- ``gates`` (null without the gate monitor): per layer and direction, ``<gate>_mean`` and
  ``<gate>_saturated`` for every gate the cell reports, and ``h_saturated`` (fraction of |h| values
  >= 0.95) and ``h_dead`` (fraction of units 0 throughout) for every cell, at the last probe.

The file is strict JSON: non-finite numbers are written as null.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RECORD_NAME = "result.json"
FINAL_STATUSES = ("completed", "diverged", "failed")
NON_RESULT_KEYS = ("logger", "resume", "threads")
_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|credential)", re.IGNORECASE)
_PACKAGES = ("torch", "pytorch-lightning", "hydra-core", "wandb", "torchmetrics", "numpy")


def redact(value: Any) -> Any:
    """Copy of a config tree with every value under a secret-looking key replaced."""
    if isinstance(value, Mapping):
        return {k: "<redacted>" if _SECRET_KEY.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def flatten(tree: Mapping[str, Any], prefix: str = "", leaf: Callable[[Any], Any] = lambda v: v) -> dict[str, Any]:
    """``{"model": {"cell": "gru"}}`` -> ``{"model.cell": "gru"}``, each leaf passed through ``leaf``:
    the flat keys W&B groups and filters on, and the settings tables group by."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + ".", leaf))
        else:
            flat[name] = leaf(value)
    return flat


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of what determines a run's result (seed included)."""
    relevant = {k: v for k, v in config.items() if k not in NON_RESULT_KEYS}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


def strict(value: Any) -> Any:
    """A copy of ``value`` that strict JSON can hold: tensors and numpy scalars become Python numbers, and
    NaN and infinities become ``null`` (``json`` would write ``NaN`` and ``Infinity``, which strict readers
    reject)."""
    if isinstance(value, Mapping):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            found[package.replace("-", "_")] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package.replace("-", "_")] = None
    return found


def git_state(source: Path = Path(__file__).resolve().parent) -> dict[str, Any] | None:
    """The commit (and whether the tree differs from it) of the checkout the code runs from, if any."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` so that readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(strict(payload), f, indent=2, allow_nan=False, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def read_record(path: Path) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def find_records(*roots: Path) -> list[Path]:
    """Every ``result.json`` below ``roots``, sorted by path."""
    return sorted({p for root in roots for p in Path(root).rglob(RECORD_NAME)})


def new_record(config: Mapping[str, Any], overrides: list[str], choices: Mapping[str, Any],
               output_dir: Path) -> dict[str, Any]:
    """A record in state ``running``, with every key of the schema present."""
    return {
        "schema": SCHEMA_VERSION,
        "status": "running",
        "error": None,
        "traceback": None,
        "config": redact(config),
        "config_hash": config_hash(config),
        "overrides": list(overrides),
        "choices": dict(choices),
        "seed": config.get("seed"),
        "task": None,
        "metrics": {},
        "steps": 0,
        "progress": None,
        "diverged_at_step": None,
        "gradients": None,
        "gates": None,
        "wall_seconds": None,
        "train_seconds": None,
        "throughput": None,
        "parameters": None,
        "model_size": None,
        "output_dir": str(output_dir),
        "wandb": None,
        "device": None,
        "threads": None,
        "versions": versions(),
        "git": git_state(),
        "started_at": now(),
        "finished_at": None,
    }
