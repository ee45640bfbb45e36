"""The result record: one ``result.json`` per run, the contract between training and reporting.

Schema (``schema`` = 1); every key is always present, ``null`` where it does not apply:

- ``status``: ``running`` (written at start; a record left so after its job ended means the job was killed),
  ``completed``, ``diverged`` (a non-finite loss stopped training), ``failed`` or ``interrupted`` (SIGINT or
  SIGTERM: ``steps`` and the ``metrics`` of the last validation are kept; ``resume=true`` continues it from its
  checkpoint). ``completed`` and ``diverged`` are results (:data:`FINISHED`): ``resume=true`` skips them.
- ``error`` / ``traceback``: one-line message and full traceback for ``failed`` runs.
- ``resumed_from_step``: the checkpoint's step when ``resume=true`` continued this run, else null;
  ``checkpoint``: the run's last checkpoint (``checkpoints/last.ckpt`` in its dir) while it exists, else null;
  ``reused_from``: the record this one copies, when ``resume=true`` on a grown grid found the same config
  (``config_hash``) finished in an earlier sweep dir of the command (the run's files stay in its ``output_dir``).
- ``config``: the resolved config (secrets redacted); ``config_hash``: SHA-256 of what determines
  the result (the config without ``logger``, ``resume``, ``threads``, ``verbose``, ``checkpoint``, and without
  ``weight_noise`` and ``early_stopping`` at their defaults, 0 and null, which records older than them lack; seed
  included);
  ``overrides``: the job's command-line overrides; ``choices``: the config-group choices; ``seed``.
- ``task``: name, metric, metric_mode, seq_len, baseline_loss, baseline_metric, and ``reference`` (null, or a
  reference model on the same splits: ``name`` and its ``val/<metric>``, ``test/<metric>``; digits: logistic
  regression; timemachine: a smoothed character n-gram).
- ``metrics``: flat, final values ``train/loss``, ``val/loss``, ``val/<metric>``, ``test/loss``,
  ``test/<metric>`` (for every metric of the task: music adds ``frame_accuracy``), and the best validation
  values ``best/val/loss``, ``best/val/<metric>`` with the steps they were reached at ``best/val/<...>_step``.
  With ``early_stopping`` the ``test/*`` values are the best validation checkpoint's.
- ``early_stopping``: null when off; else ``patience`` (validations without improvement that stop the run),
  ``monitor`` (``val/<metric>``), ``stopped_at_step`` (null if the run reached its step budget) and
  ``tested_step`` (the step of the checkpoint whose weights ``test/*`` measured).
- ``padding``: null for fixed-length data; for variable-length data, over every training batch of the run,
  ``processed_steps`` (batch size x its longest sequence), ``useful_steps`` (the sequences' own steps) and
  ``fraction`` (of the processed steps that were padding).
- ``steps``: optimizer steps taken; ``diverged_at_step``: first step with a non-finite loss.
- ``history_steps``: how the steps of the run's logged history (CSV, W&B) count: ``completed`` (optimizer steps
  done when the value was measured: step k's training loss and the validation after k steps both at k, as the
  probes). Absent in records logged by Lightning's own convention, whose training and validation rows sit one
  step lower (readers add 1 to those).
- ``progress``: while the run trains, its heartbeat (rewritten every 10 s): ``max_steps`` (the fit's total),
  ``steps_per_second`` (over the last 10 s), ``updated_at``; null in a finished record.
- ``wall_seconds`` (whole job), ``train_seconds`` (fit minus validation), ``throughput``
  (steady state, every step after the first: ``samples_per_second``, ``tokens_per_second``,
  ``tokens_per_cpu_second``, ``steps_timed``), ``parameters``; ``model_size``: ``hidden_size`` (the one
  ``model.param_budget`` or ``model.state_budget`` chose, else the configured one), ``parameters``,
  ``param_budget``, ``state_size`` (the floats the recurrent state carries per sequence: state tensors x layers x
  directions x hidden_size), ``state_budget``.
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
  >= 0.95) and ``h_dead`` (fraction of units 0 throughout) for every cell, at the last probe, and each also
  ``<key>_first`` at the first probe (initialisation).

The file is strict JSON: non-finite numbers are written as null.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import stat
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from rnnbench.record.keys import RUN_SETTING_SECTIONS, RUN_SETTINGS

SCHEMA_VERSION = 1
HISTORY_STEPS = "completed"  # the record's ``history_steps`` (see the module docstring)
RECORD_NAME = "result.json"
# model_size keys of the model settings that choose hidden_size per cell (model.param_budget, model.state_budget)
BUDGETS = ("param_budget", "state_budget")
NON_RESULT_KEYS = (*RUN_SETTING_SECTIONS, *RUN_SETTINGS)  # left out of config_hash (rnnbench.record.keys)
_PACKAGES = ("torch", "pytorch-lightning", "hydra-core", "wandb", "torchmetrics", "numpy")

# The statuses a record can hold, defined once.
RUNNING, COMPLETED, DIVERGED, FAILED, INTERRUPTED = "running", "completed", "diverged", "failed", "interrupted"
STATUSES = (RUNNING, COMPLETED, DIVERGED, FAILED, INTERRUPTED)
FINISHED = (COMPLETED, DIVERGED)  # a result: resume=true skips it, a sweep's exit status counts it a success


class RecordError(ValueError):
    """A ``result.json`` that cannot be read, is not rnnbench's, or breaks the schema; the message names the file."""


@dataclass
class Record:
    """The typed schema of ``result.json`` (see the module docstring); each instrument fills its own section."""

    config: dict[str, Any]
    config_hash: str
    overrides: list[str]
    choices: dict[str, Any]
    output_dir: str
    seed: Any = None
    schema: int = SCHEMA_VERSION
    status: str = RUNNING
    error: str | None = None
    traceback: str | None = None
    task: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    history_steps: str | None = HISTORY_STEPS
    progress: dict[str, Any] | None = None
    diverged_at_step: int | None = None
    resumed_from_step: int | None = None
    checkpoint: str | None = None
    reused_from: str | None = None
    gradients: dict[str, Any] | None = None
    gates: list[dict[str, Any]] | None = None
    wall_seconds: float | None = None
    train_seconds: float | None = None
    throughput: dict[str, Any] | None = None
    padding: dict[str, Any] | None = None
    early_stopping: dict[str, Any] | None = None
    parameters: int | None = None
    model_size: dict[str, Any] | None = None
    wandb: dict[str, Any] | None = None
    device: str | None = None
    threads: int | None = None
    versions: dict[str, Any] = field(default_factory=lambda: versions())
    git: dict[str, Any] | None = field(default_factory=lambda: git_state())
    started_at: str = field(default_factory=lambda: now())
    finished_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def update(self, **values: Any) -> None:
        """Set several fields at once; a name the schema lacks is a bug, refused."""
        for name, value in values.items():
            if name not in self.__dataclass_fields__:
                raise AttributeError(f"the record has no field {name!r}")
            setattr(self, name, value)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


# What a reader may rely on: these keys exist with these JSON types (None allowed where the schema says null).
_REQUIRED_TYPES: dict[str, tuple[type, ...]] = {
    "schema": (int,), "status": (str,), "config": (dict,), "config_hash": (str,), "overrides": (list,),
    "metrics": (dict,), "steps": (int,), "output_dir": (str,)}
_OPTIONAL_TYPES: dict[str, tuple[type, ...]] = {
    "error": (str,), "task": (dict,), "gradients": (dict,), "gates": (list,), "throughput": (dict,),
    "padding": (dict,), "early_stopping": (dict,),
    "wall_seconds": (int, float), "train_seconds": (int, float), "diverged_at_step": (int,),
    "resumed_from_step": (int,), "reused_from": (str,), "wandb": (dict,), "progress": (dict,), "model_size": (dict,), "git": (dict,),
    "choices": (dict,), "versions": (dict,), "started_at": (str,), "finished_at": (str,)}


def check_record(payload: Any, path: Path | str = RECORD_NAME) -> dict[str, Any]:
    """``payload`` if it is an rnnbench record of a known schema with the types readers rely on, else
    :class:`RecordError` naming ``path`` and the first problem."""
    if not isinstance(payload, dict) or "schema" not in payload or "config_hash" not in payload:
        raise RecordError(f"{path}: not an rnnbench record (no schema and config_hash)")
    if payload.get("schema") != SCHEMA_VERSION:
        raise RecordError(f"{path}: schema {payload.get('schema')!r} is not {SCHEMA_VERSION}")
    for key, types in {**_REQUIRED_TYPES, **_OPTIONAL_TYPES}.items():
        value = payload.get(key)
        if value is None and key in _OPTIONAL_TYPES:
            continue
        if not isinstance(value, types) or isinstance(value, bool):
            raise RecordError(f"{path}: {key}={value!r:.60} is not a {' or '.join(t.__name__ for t in types)}")
    if payload["status"] not in STATUSES:
        raise RecordError(f"{path}: status={payload['status']!r} is not one of {', '.join(STATUSES)}")
    bad = [k for k, v in payload["metrics"].items() if v is not None and not isinstance(v, (int, float))]
    if bad:
        raise RecordError(f"{path}: metrics[{bad[0]!r}]={payload['metrics'][bad[0]]!r:.60} is not a number")
    return payload


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


# Top-level settings added after records were written, with the value that means "off": at that value a config
# hashes as if it lacked the key, so records older than the setting keep matching (resume skips them).
ADDED_WITH_DEFAULT = {"weight_noise": 0.0, "early_stopping": None}


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of what determines a run's result (seed included); a setting of
    :data:`ADDED_WITH_DEFAULT` at its default value is left out, as records older than it lack it."""
    relevant = {k: v for k, v in config.items() if k not in NON_RESULT_KEYS
                and not (k in ADDED_WITH_DEFAULT and v == ADDED_WITH_DEFAULT[k])}
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: Path, payload: Mapping[str, Any] | Record) -> None:
    """Write ``payload`` so that readers see the old file or the new one, never half of one, with the
    permissions of any other file the process writes (``mkstemp`` alone would make it private).

    An ``OSError`` (a full or read-only disk) leaves the old file as it was and removes the temporary one."""
    if isinstance(payload, Record):
        payload = payload.to_json()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(strict(payload), indent=2, allow_nan=False, default=str) + "\n"
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


class SpaceReserve:
    """Disk space held back for a job's final record: a file of ``size`` bytes (``.rnnbench-reserve`` in the job
    dir) taken when the job starts and given back just before the final record is written again after a full
    disk refused it, so that a disk that fills up during training never costs the result."""

    NAME = ".rnnbench-reserve"

    def __init__(self, directory: Path, size: int = 256 << 10):  # records are 5-20 KB, 8 layers deep ~100 KB
        self.path = Path(directory) / self.NAME
        self.size = size

    def take(self) -> "SpaceReserve":
        """Allocate the space (really, not sparse); an ``OSError`` here means the disk is already full."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 & ~_umask())
        try:
            os.posix_fallocate(fd, 0, self.size)
        except OSError:
            os.close(fd)
            self.release()
            raise
        os.close(fd)
        return self

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


RECORD_LIMIT = 256 << 20  # bytes: a record with every curve of a long run is a few MB


def read_record(path: Path) -> dict[str, Any]:
    """The record at ``path``, checked by :func:`check_record`; :class:`RecordError` if it is unreadable, not a
    regular file (a FIFO would block the reader forever), too large, not JSON (nesting too deep for the parser
    included), foreign or breaks the schema. An integer too long for Python's ``int()`` or beyond a float's range
    reads as a float (``inf`` beyond it): every number in a record is a measurement."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise RecordError(f"{path}: unreadable (not a regular file)")
        if info.st_size > RECORD_LIMIT:
            raise RecordError(f"{path}: unreadable ({info.st_size} bytes, more than a record's {RECORD_LIMIT})")
        with open(path, encoding="utf-8") as f:
            payload = json.load(f, parse_int=_measured_int)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise RecordError(f"{path}: unreadable ({str(error).splitlines()[0] if str(error) else type(error).__name__})") \
            from None
    return check_record(payload, path)


def _measured_int(text: str) -> int | float:
    """A JSON integer: an int where a float holds it exactly enough, else a float (``inf`` past its range)."""
    return int(text) if len(text) <= 18 else float(text)


def _in_a_wandb_run(parts: tuple[str, ...]) -> bool:
    """Whether a path below a root lies in a W&B run dir (``wandb/offline-run-*``, ``wandb/run-*``,
    ``wandb/superseded``), which keeps a copy of the job's record among the run's files
    (:func:`rnnbench.job.loggers.attach_run_files`): a copy, not another run."""
    return any(folder == "wandb" and (inner.startswith(("offline-run-", "run-")) or inner == "superseded")
               for folder, inner in zip(parts, parts[1:]))


def find_records(*roots: Path) -> list[Path]:
    """Every ``result.json`` below ``roots`` but the copies inside W&B run dirs, sorted by path; every reader of
    records (tables, status, the sweep's lines, its summary) finds them here."""
    found = set()
    for root in roots:
        for path in Path(root).rglob(RECORD_NAME):
            if not _in_a_wandb_run(path.relative_to(root).parts[:-1]):
                found.add(path)
    return sorted(found)


def new_record(config: Mapping[str, Any], overrides: list[str], choices: Mapping[str, Any],
               output_dir: Path) -> Record:
    """A record in state ``running`` for the resolved ``config`` (already scrubbed of secrets)."""
    return Record(config=dict(config), config_hash=config_hash(config), overrides=list(overrides),
                  choices=dict(choices), output_dir=str(output_dir), seed=config.get("seed"))


def set_aside(path: Path, why: str) -> Path:
    """Rename ``path`` to ``<name>.<why>-<UTC time>`` beside it (a record is never overwritten); return the new
    path."""
    aside = path.with_name(f"{path.name}.{why}-{now().replace(':', '')}")
    os.replace(path, aside)
    return aside
