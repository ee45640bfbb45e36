"""Result records below sweep dirs as runs: flattened settings, metric look-up, varying keys, differences.

A *setting* is a flattened config key (``model.cell``, ``trainer.gradient_clip_val``) or a config-group
choice (``data``: ``adding``). A *metric* name is looked up, in this order, in the record's flat
``metrics`` (``test/mse``, ``best/val/loss``), as a gradient summary (``gradients.<field>``: a top-level
field such as ``clip_rate``, or a per-layer field such as ``vanishing_log10`` of the first layer's forward
direction; ``gradients.layer<L>.<forward|backward>.<field>`` for another layer-direction), and as a dotted
path into the record (``steps``, ``throughput.samples_per_second``, ``wall_seconds``).

``steps_to:<metric><op><threshold>`` (``steps_to:val/mse<0.01``, ``steps_to:val/accuracy>0.9``) is read
from the run's learning-curve history (``csv/metrics.csv``): the optimizer steps done when ``<metric>``
was first logged below (``<``) or above (``>``) the threshold; infinity when the run never got there (a
censored value: the table reports how many runs reached it and the median over all of them).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnbench.errors import RnnbenchError
from rnnbench.tracking.record import RECORD_NAME, find_records, flatten, read_record

__all__ = ["ReportError", "Run", "RunSet", "load_runs", "varying_keys", "display", "sort_key", "parse_value",
           "matches", "value_counts", "code_differences", "LAYER_FIELDS", "history_path", "read_history", "hashable"]

# Settings that never explain a difference in results: seeds (the samples), logging, bookkeeping.
BOOKKEEPING_KEYS = frozenset({"seed", "threads", "resume", "objective", "objective_direction", "data.seed"})
BOOKKEEPING_PREFIXES = ("logger.", "hydra.")
# Leaf names of path-like settings (where data or logs live, not what they are).
PATH_LEAVES = frozenset({"path", "cache_dir", "save_dir", "dir", "url", "default_root_dir", "output_dir"})
# Config-group choices that are settings (``data=copy``); the logger choice is bookkeeping.
CHOICE_EXCLUDED = frozenset({"logger"})
# Versions whose difference can change results (wandb only logs).
VERSION_KEYS = ("python", "torch", "pytorch_lightning", "torchmetrics", "numpy", "hydra_core")
LAYER_FIELDS = ("vanishing_log10", "vanishing_log10_first", "reach", "cell_vanishing_log10")
_LAYER_METRIC = re.compile(r"layer(\d+)\.(forward|backward)\.(\w+)$")
_STEPS_TO = re.compile(r"steps_to:(?P<metric>[^<>]+)(?P<op>[<>])(?P<threshold>.+)$")


class ReportError(RnnbenchError):
    """Records or arguments the reporting tools cannot work with (reported as one line, exit 2)."""


def is_bookkeeping(key: str) -> bool:
    leaf = key.rsplit(".", 1)[-1]
    return (key in BOOKKEEPING_KEYS or key.startswith(BOOKKEEPING_PREFIXES) or leaf.startswith("_")
            or leaf in PATH_LEAVES)


def hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(hashable(v) for v in value)
    if isinstance(value, Mapping):  # an empty mapping (flatten keeps non-empty ones apart)
        return tuple(sorted((k, hashable(v)) for k, v in value.items()))
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def layer_entry(gradients: Mapping[str, Any] | None, layer: int = 0, direction: str = "forward"
                ) -> Mapping[str, Any] | None:
    """The ``gradients.layers`` entry of one layer-direction (default: the first layer, forward)."""
    if not isinstance(gradients, Mapping):
        return None
    layers = gradients.get("layers")
    if not isinstance(layers, Sequence):
        return None
    for entry in layers:
        if isinstance(entry, Mapping) and entry.get("layer") == layer and entry.get("direction") == direction:
            return entry
    return None


@dataclass
class Run:
    """One ``result.json``: the record, where it lies, and its flattened settings."""

    path: Path
    record: dict[str, Any]
    settings: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.record.get("status"))

    @property
    def seed(self) -> Any:
        return self.record.get("seed", self.settings.get("seed"))

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def task(self) -> Mapping[str, Any]:
        task = self.record.get("task")
        return task if isinstance(task, Mapping) else {}

    @property
    def gradients(self) -> Mapping[str, Any] | None:
        gradients = self.record.get("gradients")
        return gradients if isinstance(gradients, Mapping) else None

    def value(self, name: str) -> float | None:
        """The metric ``name`` (see the module docstring) as a float, None where absent or not a number."""
        steps_to = _STEPS_TO.match(name)
        if steps_to:
            return self._steps_to(steps_to["metric"], steps_to["op"], steps_to["threshold"])
        metrics = self.record.get("metrics")
        if isinstance(metrics, Mapping) and name in metrics:
            return _number(metrics[name])
        if name.startswith("gradients."):
            return self._gradient_value(name[len("gradients."):])
        node: Any = self.record
        for part in name.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return _number(node)

    def _steps_to(self, metric: str, op: str, threshold: str) -> float | None:
        try:
            limit = float(threshold)
        except ValueError:
            raise ReportError(f"--metric=steps_to:{metric}{op}{threshold} is not allowed: the threshold must be "
                              "a number, as in steps_to:val/mse<0.01") from None
        path = history_path(self)
        if path is None:
            return None
        try:
            history = read_history(path, [metric])[metric]
        except (OSError, csv.Error, UnicodeDecodeError):
            return None
        for step, value in history:
            if value < limit if op == "<" else value > limit:
                return float(step + 1)  # Lightning's CSV counts steps from 0
        return math.inf if history else None  # censored: never reached within the run

    def _gradient_value(self, name: str) -> float | None:
        gradients = self.gradients
        if gradients is None:
            return None
        match = _LAYER_METRIC.match(name)
        if match:
            entry = layer_entry(gradients, int(match.group(1)), match.group(2))
            return None if entry is None else _number(entry.get(match.group(3)))
        if name in gradients:
            return _number(gradients[name])
        entry = layer_entry(gradients)  # any other field: layer 0's forward direction
        return None if entry is None else _number(entry.get(name))


@dataclass
class RunSet:
    """Every run below some dirs, in natural path order, and the records that could not be read."""

    runs: list[Run]
    skipped: list[str] = field(default_factory=list)

    def __iter__(self):
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)


def _natural(text: str) -> tuple:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part)


def settings_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """Config-group choices (``data``) first, then the flattened resolved config."""
    settings: dict[str, Any] = {}
    choices = record.get("choices")
    if isinstance(choices, Mapping):
        for group, choice in choices.items():
            if group not in CHOICE_EXCLUDED and "/" not in str(group):
                settings[str(group)] = hashable(choice)
    config = record.get("config")
    if isinstance(config, Mapping):
        settings.update(flatten(config, leaf=hashable))
    return settings


def load_runs(dirs: Iterable[str | Path]) -> RunSet:
    """Every ``result.json`` below ``dirs`` (a record file itself may be named too).

    Raises ReportError for a path that does not exist or holds no record. A record that cannot be read
    (not JSON, not an object) is skipped and named in ``skipped``.
    """
    paths: set[Path] = set()
    for directory in dirs:
        root = Path(directory)
        if not root.exists():
            raise ReportError(f"{directory}: no such file or directory")
        if root.is_file():
            if root.name != RECORD_NAME:
                raise ReportError(f"{directory}: not a {RECORD_NAME} (give a sweep or run dir)")
            found = [root]
        else:
            found = find_records(root)
        if not found:
            raise ReportError(f"no {RECORD_NAME} below {directory}")
        paths.update(p.resolve() for p in found)
    runs, skipped = [], []
    for path in sorted(paths, key=lambda p: _natural(str(p))):
        try:
            record = read_record(path)
        except (OSError, ValueError) as error:
            skipped.append(f"{path}: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
            continue
        if not isinstance(record, dict):
            skipped.append(f"{path}: not a JSON object")
            continue
        runs.append(Run(path, record, settings_of(record)))
    if not runs:
        raise ReportError(f"no readable {RECORD_NAME} below {', '.join(map(str, dirs))}")
    return RunSet(runs, skipped)


def all_keys(runs: Iterable[Run]) -> list[str]:
    """Every setting key, in order of first appearance."""
    keys: dict[str, None] = {}
    for run in runs:
        keys.update(dict.fromkeys(run.settings))
    return list(keys)


def varying_keys(runs: Sequence[Run], include_bookkeeping: bool = False) -> list[str]:
    """The setting keys whose value differs between runs (seed and bookkeeping excluded), in config order."""
    return [key for key in all_keys(runs)
            if (include_bookkeeping or not is_bookkeeping(key))
            and len({hashable(run.settings.get(key)) for run in runs}) > 1]


def display(value: Any) -> str:
    """A setting's value as a table shows it: ``none`` for null, ``true``/``false``, compact numbers."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(display(v) for v in value) + "]"
    return str(value)


def sort_key(value: Any) -> tuple:
    """Order for grouped rows: none first, then booleans, numbers (numeric order), text (natural order)."""
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, (int, float)):
        return (2, value if not math.isnan(value) else math.inf)
    if isinstance(value, str):
        return (3, _natural(value))
    return (4, _natural(display(value)))


def parse_value(text: str) -> Any:
    """A command-line value as Hydra would read it: null/none, true/false, numbers, else text."""
    lowered = text.strip().lower()
    if lowered in ("null", "none", "~"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def matches(value: Any, wanted: Any) -> bool:
    """Whether a setting's value equals a parsed command-line value (1 == 1.0; 'none' == null)."""
    if wanted is None or value is None:
        return value is None and wanted is None
    if isinstance(value, bool) or isinstance(wanted, bool):
        return isinstance(value, bool) and isinstance(wanted, bool) and value == wanted
    if isinstance(value, (int, float)) and isinstance(wanted, (int, float)):
        return float(value) == float(wanted)
    return display(value) == display(wanted)


def value_counts(values: Iterable[Any]) -> str:
    """``a (2 runs), b (1 run)`` in order of first appearance."""
    counts: dict[Any, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return ", ".join(f"{display(v) if not isinstance(v, str) else v} ({n} run{'s' if n != 1 else ''})"
                     for v, n in counts.items())


def _code_version(run: Run) -> str:
    git = run.record.get("git")
    if not isinstance(git, Mapping) or not git.get("commit"):
        return "unknown"
    return str(git["commit"])[:10] + ("+dirty" if git.get("dirty") else "")


def code_differences(runs: Sequence[Run]) -> list[str]:
    """One line per code-version item (git commit, package versions) that differs between runs."""
    lines = []
    commits = [_code_version(run) for run in runs]
    if len(set(commits)) > 1:
        lines.append(f"runs differ in code version: git commit {value_counts(commits)}")
    for package in VERSION_KEYS:
        found = [str((run.record.get("versions") or {}).get(package)) for run in runs]
        if len(set(found)) > 1:
            lines.append(f"runs differ in {package} version: {value_counts(found)}")
    return lines


def history_path(run: Run) -> Path | None:
    """The run's CSVLogger history: ``<run dir>/csv/metrics.csv``, or where ``logger.csv`` put it."""
    candidates = [run.directory / "csv" / "metrics.csv"]
    csv_logger = ((run.record.get("config") or {}).get("logger") or {}).get("csv")
    if isinstance(csv_logger, Mapping):
        root = Path(csv_logger["save_dir"]) if csv_logger.get("save_dir") else run.directory
        candidates.append(root / str(csv_logger.get("name") or "") / str(csv_logger.get("version") or "")
                          / "metrics.csv")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = sorted(run.directory.rglob("metrics.csv"))
    return found[0] if found else None


def read_history(path: Path, columns: Sequence[str]) -> dict[str, list[tuple[int, float]]]:
    """``column -> [(step, value), ...]`` from a sparse Lightning CSV (blank cells skipped)."""
    history: dict[str, list[tuple[int, float]]] = {column: [] for column in columns}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                step = int(float(row.get("step") or ""))
            except ValueError:
                continue
            for column in columns:
                text = row.get(column)
                if text:
                    try:
                        history[column].append((step, float(text)))
                    except ValueError:
                        pass
    return history
