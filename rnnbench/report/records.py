"""Result records below sweep dirs as runs: flattened settings, metric look-up, varying keys, differences.

A *setting* is a flattened config key (``model.cell``, ``trainer.gradient_clip_val``) or a config-group
choice (``data``: ``adding``). A *metric* name is looked up, in this order, in the record's flat
``metrics`` (``test/mse``, ``best/val/loss``), as a gradient summary (``gradients.<field>``: a top-level
field such as ``clip_rate``, or a per-layer field such as ``vanishing_log10`` of the first layer's forward
direction; ``gradients.layer<L>.<forward|backward>.<field>`` for another layer-direction), as a gate summary
at the end of training (``gates.<field>``: ``forget_saturated``, ``input_mean``, ... of the first layer's
forward direction; ``gates.layer<L>.<forward|backward>.<field>``), and as a dotted path into the record
(``steps``, ``throughput.samples_per_second``, ``wall_seconds``).

``steps_to:<metric><op><threshold>`` (``steps_to:val/mse<0.01``, ``steps_to:val/accuracy>0.9``) is read
from the run's learning-curve history (``csv/metrics.csv``): the optimizer steps done when ``<metric>``
was first logged below (``<``) or above (``>``) the threshold; infinity when the run never got there (a
censored value: the table reports how many runs reached it and the median over all of them).

Readers never trust a record blindly: :func:`read_records` skips a file that is unreadable, not rnnbench's,
of another schema or with the wrong types where readers look (:func:`check_sections`), naming it and why, and
counts each run once however often it is found (through two of the given dirs, or as a copy of its record).
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnbench.errors import RnnbenchError
from rnnbench.record import keys
from rnnbench.record.schema import (BUDGETS, HISTORY_STEPS, RECORD_NAME, RecordError, find_records, flatten,
                                    read_record)

__all__ = ["ReportError", "Run", "RunSet", "load_runs", "read_records", "check_sections", "varying_keys", "display",
           "sort_key", "parse_value", "matches", "value_counts", "code_differences", "is_code_difference",
           "history_path", "read_history", "hashable", "Threshold", "NULL"]

# Leaf names of path-like settings (where data or logs live, not what they are).
PATH_LEAVES = frozenset({"path", "cache_dir", "save_dir", "dir", "url", "default_root_dir", "output_dir"})
# Config-group choices that are settings (``data=copy``); the logger choice is bookkeeping.
CHOICE_EXCLUDED = frozenset({"logger"})
# Versions whose difference can change results (wandb only logs).
VERSION_KEYS = ("python", "torch", "pytorch_lightning", "torchmetrics", "numpy", "hydra_core")
_LAYER_METRIC = re.compile(r"layer(\d+)\.(forward|backward)\.(\w+)$")
_STEPS_TO = re.compile(r"steps_to:(?P<metric>[^<>]+)(?P<op>[<>])(?P<threshold>.+)$")


@dataclass(frozen=True)
class Threshold:
    """A threshold on a metric, as written (``text``): ``val/mse<0.01`` is met by a value below 0.01,
    ``val/accuracy>0.9`` by one above 0.9."""

    text: str
    metric: str
    op: str
    limit: float

    def met(self, value: float) -> bool:
        return value < self.limit if self.op == "<" else value > self.limit


class ReportError(RnnbenchError):
    """Records or arguments the reporting tools cannot work with (reported as one line, exit 2), after the
    ``warnings`` that explain it (the records skipped on the way)."""

    def __init__(self, message: str, warnings: Sequence[str] = ()):
        super().__init__(message)
        self.warnings = list(warnings)


def is_bookkeeping(key: str) -> bool:
    """A setting that never explains a difference in results (:func:`rnnbench.record.keys.is_bookkeeping`), an
    instantiation key, or a path (where data or logs live, not what they are)."""
    leaf = key.rsplit(".", 1)[-1]
    return keys.is_bookkeeping(key) or leaf.startswith("_") or leaf in PATH_LEAVES


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
    return _direction_entry(gradients.get("layers") if isinstance(gradients, Mapping) else None, layer, direction)


def _direction_entry(entries: Any, layer: int = 0, direction: str = "forward") -> Mapping[str, Any] | None:
    """The entry of one layer-direction in a record's per-layer list (``gradients.layers``, ``gates``)."""
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        return None
    for entry in entries:
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
        if name.startswith("gates."):
            return _layer_value(self.record.get("gates"), name[len("gates."):])
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
        threshold = Threshold(f"{metric}{op}{threshold}", metric, op, limit)
        for step, value in history:
            if threshold.met(value):
                return float(step + history_offset(self.record))
        return math.inf if history else None  # censored: never reached within the run

    def _gradient_value(self, name: str) -> float | None:
        gradients = self.gradients
        if gradients is None:
            return None
        if name in gradients:
            return _number(gradients[name])
        return _layer_value(gradients.get("layers"), name)


def _layer_value(entries: Any, name: str) -> float | None:
    """``layer<L>.<direction>.<field>`` of a per-layer list, or ``<field>`` of its first layer's forward entry."""
    match = _LAYER_METRIC.match(name)
    entry = _direction_entry(entries, int(match.group(1)), match.group(2)) if match else _direction_entry(entries)
    return None if entry is None else _number(entry.get(match.group(3) if match else name))


@dataclass
class RunSet:
    """Every run below some dirs, in natural path order; the records that could not be read (``path: why``) and
    how many duplicate records of runs already counted were dropped."""

    runs: list[Run]
    skipped: list[str] = field(default_factory=list)
    duplicates: int = 0

    def warnings(self) -> list[str]:
        """One line per skipped record, and one for the duplicates dropped."""
        return loading_warnings(self.skipped, self.duplicates)


def loading_warnings(skipped: Sequence[str], duplicates: int) -> list[str]:
    lines = [f"skipped {line}" for line in skipped]
    if duplicates:
        lines.append(f"dropped {duplicates} duplicate record(s) of runs already counted (the same file found through "
                     "two of the dirs, or a copy of a record: the same started_at, and output_dir or W&B run id)")
    return lines


def _natural(text: str) -> tuple:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part)


def settings_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """Config-group choices (``data``) first, then the flattened resolved config; under a parameter budget,
    ``model.hidden_size`` is the size the budget chose (``model_size.hidden_size``), not the configured one."""
    settings: dict[str, Any] = {}
    choices = record.get("choices")
    if isinstance(choices, Mapping):
        for group, choice in choices.items():
            if group not in CHOICE_EXCLUDED and "/" not in str(group):
                settings[str(group)] = hashable(choice)
    config = record.get("config")
    if isinstance(config, Mapping):
        settings.update(flatten(config, leaf=hashable))
    size = record.get("model_size")
    if isinstance(size, Mapping) and "hidden_size" in size and \
            any(size.get(budget) is not None for budget in BUDGETS):
        settings["model.hidden_size"] = hashable(size["hidden_size"])  # the size the budget chose, which trained
    return settings


_TEXT, _INT, _NUMBER, _DICT, _LIST = (str,), (int,), (int, float), (dict,), (list,)
# Inside the sections, what readers rely on (a value may be null): section -> key -> JSON types.
_SECTION_TYPES: dict[str, dict[str, tuple[type, ...]]] = {
    "task": {"name": _TEXT, "metric": _TEXT, "metric_mode": _TEXT, "seq_len": _INT, "baseline_loss": _NUMBER,
             "baseline_metric": _NUMBER, "reference": _DICT},
    "gradients": {"layers": _LIST, "probe_steps": _LIST},
    "progress": {"max_steps": _INT, "steps_per_second": _NUMBER, "updated_at": _TEXT},
    "wandb": {"run_id": _TEXT}}


def _wrong(path: Path | str, key: str, value: Any, types: tuple[type, ...]) -> RecordError:
    return RecordError(f"{path}: {key}={value!r:.60} is not a {' or '.join(t.__name__ for t in types)}")


def _is(value: Any, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and not isinstance(value, bool)


def check_sections(record: dict[str, Any], path: Path | str = RECORD_NAME) -> dict[str, Any]:
    """``record`` (already checked by :func:`rnnbench.record.schema.check_record`) if the values the readers
    use inside its sections have the types they rely on (null allowed), else :class:`RecordError` naming
    ``path`` and the first problem: ``seed`` a number or text; ``overrides`` text; the ``task`` fields, a
    reference's scores numbers; ``gradients.layers`` a list of objects whose ``layer`` is a number and
    ``direction`` text, ``gradients.probe_steps`` numbers; the ``progress`` heartbeat; ``wandb.run_id`` text."""
    seed = record.get("seed")
    if seed is not None and not _is(seed, (int, float, str)):
        raise _wrong(path, "seed", seed, (int, float, str))
    for override in record["overrides"]:
        if not isinstance(override, str):
            raise _wrong(path, "overrides[]", override, _TEXT)
    for section, types in _SECTION_TYPES.items():
        node = record.get(section) or {}
        for key, wanted in types.items():
            value = node.get(key)
            if value is not None and not _is(value, wanted):
                raise _wrong(path, f"{section}.{key}", value, wanted)
    reference = (record.get("task") or {}).get("reference") or {}
    for key, value in reference.items():
        wanted = _TEXT if key == "name" else _NUMBER
        if value is not None and not _is(value, wanted):
            raise _wrong(path, f"task.reference.{key}", value, wanted)
    gradients = record.get("gradients") or {}
    for entry in gradients.get("layers") or []:
        if not isinstance(entry, dict):
            raise _wrong(path, "gradients.layers[]", entry, _DICT)
        for key, wanted in (("layer", _INT), ("direction", _TEXT)):
            if entry.get(key) is not None and not _is(entry[key], wanted):
                raise _wrong(path, f"gradients.layers[].{key}", entry[key], wanted)
    for step in gradients.get("probe_steps") or []:
        if not _is(step, _INT):
            raise _wrong(path, "gradients.probe_steps[]", step, _INT)
    return record


def _identities(record: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """What names one run across copies of its record (a copy, or one moved with its ``output_dir`` rewritten):
    its start time with its output dir, or with its W&B run id. Not the W&B id alone: jobs given one
    ``logger.wandb.id`` are distinct runs (which W&B would merge into one; the launch path refuses such an id
    in a sweep), and a reader must not drop them as copies."""
    started = record.get("started_at")
    if not started:
        return []
    found = [("run", os.path.normpath(record["output_dir"]), started)]
    run_id = (record.get("wandb") or {}).get("run_id")
    if run_id:
        found.append(("wandb", run_id, started))
    return found


def _at_home(path: Path, record: Mapping[str, Any]) -> bool:
    """Whether the record lies in its own run dir (the original rather than a copy)."""
    try:
        return path.resolve().parent == Path(record["output_dir"]).resolve()
    except (OSError, RuntimeError, ValueError):
        return False


def read_records(paths: Iterable[Path]) -> tuple[list[tuple[Path, dict[str, Any]]], list[str], int]:
    """The records at ``paths`` as ``(path, record)`` in the order given, each run once; the files skipped, as
    ``path: why``; and how many duplicates were dropped: a path that resolves to a file already read, or a record
    of a run already read (the same ``started_at`` and ``output_dir`` or W&B run id). Of two copies of
    one run the one in the run's own dir is kept, else the first."""
    records: list[tuple[Path, dict[str, Any]]] = []
    seen_files: set[Path] = set()
    seen_runs: dict[tuple[str, ...], int] = {}
    skipped: list[str] = []
    duplicates = 0
    for path in paths:
        resolved = Path(os.path.realpath(path))
        if resolved in seen_files:
            duplicates += 1
            continue
        seen_files.add(resolved)
        try:
            record = check_sections(read_record(path), path)
        except RecordError as error:
            lines = str(error).splitlines()
            skipped.append(lines[0] if lines else f"{path}: {type(error).__name__}")
            continue
        identities = _identities(record)
        earlier = next((seen_runs[i] for i in identities if i in seen_runs), None)
        if earlier is None:
            for identity in identities:
                seen_runs[identity] = len(records)
            records.append((path, record))
            continue
        duplicates += 1
        kept_path, kept = records[earlier]
        if _at_home(path, record) and not _at_home(kept_path, kept):
            records[earlier] = (path, record)
        for identity in identities:
            seen_runs.setdefault(identity, earlier)
    return records, skipped, duplicates


def load_runs(dirs: Iterable[str | Path]) -> RunSet:
    """Every ``result.json`` below ``dirs`` (a record file itself may be named too), each run once.

    Raises ReportError for a path that does not exist or holds no record, and when no record could be read. A
    record that cannot be read (see :func:`read_records`) is skipped and named in ``skipped``; duplicates are
    counted in ``duplicates``.
    """
    dirs = list(dirs)
    paths: list[Path] = []
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
        paths += found
    records, skipped, duplicates = read_records(paths)
    runs = sorted((Run(path.resolve(), record, settings_of(record)) for path, record in records),
                  key=lambda run: _natural(str(run.path)))
    if not runs:
        raise ReportError(f"no readable {RECORD_NAME} below {', '.join(map(str, dirs))}",
                          loading_warnings(skipped, duplicates))
    return RunSet(runs, skipped, duplicates)


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


NULL = "null"  # how a null setting is shown: Hydra reads ``key=null`` as null, and ``key=none`` as the text "none"


def display(value: Any) -> str:
    """A setting's value as a table shows it, spelt as a Hydra override takes it back (``key=VALUE``): ``null``
    for a missing or null value, ``true``/``false``, compact numbers."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(display(v) for v in value) + "]"
    return str(value)


def sort_key(value: Any) -> tuple:
    """Order for grouped rows: null first, then booleans, numbers (numeric order), text (natural order)."""
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
    """Whether a setting's value equals a parsed command-line value (1 == 1.0; 'null' and 'none' == null)."""
    if wanted is None or value is None:
        return value is None and wanted is None
    if isinstance(value, bool) or isinstance(wanted, bool):
        return isinstance(value, bool) and isinstance(wanted, bool) and value == wanted
    if isinstance(value, (int, float)) and isinstance(wanted, (int, float)):
        return float(value) == float(wanted)
    return display(value) == display(wanted)


def value_counts(values: Iterable[Any]) -> str:
    """``a (2 runs), b (1 run)``: the most frequent first, ties in alphabetical order (the same text whatever
    order the records were read in)."""
    counts: dict[str, int] = {}
    for value in values:
        text = display(value) if not isinstance(value, str) else value
        counts[text] = counts.get(text, 0) + 1
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{v} ({n} run{'s' if n != 1 else ''})" for v, n in ordered)


def _code_version(run: Run) -> str:
    git = run.record.get("git")
    if not isinstance(git, Mapping) or not git.get("commit"):
        return "unknown"
    return str(git["commit"])[:10] + ("+dirty" if git.get("dirty") else "")


_CODE_DIFFERENCE = "runs differ in {} version: {}"


def code_differences(runs: Sequence[Run]) -> list[str]:
    """One line per code-version item (git commit, package versions) that differs between runs."""
    lines = []
    commits = [_code_version(run) for run in runs]
    if len(set(commits)) > 1:
        lines.append(_CODE_DIFFERENCE.format("code", f"git commit {value_counts(commits)}"))
    for package in VERSION_KEYS:
        found = [str((run.record.get("versions") or {}).get(package)) for run in runs]
        if len(set(found)) > 1:
            lines.append(_CODE_DIFFERENCE.format(package, value_counts(found)))
    return lines


def is_code_difference(line: str) -> bool:
    """Whether a warning is one of :func:`code_differences`' lines (provenance to check, not a fault of the runs)."""
    prefix, _, rest = _CODE_DIFFERENCE.partition("{}")
    return line.startswith(prefix) and rest.split("{}")[0] in line


def history_path(run: Run) -> Path | None:
    """The run's CSVLogger history: ``<run dir>/csv/metrics.csv``, or where ``logger.csv`` put it."""
    candidates = [run.directory / "csv" / "metrics.csv"]
    logger = run.record["config"].get("logger")
    csv_logger = logger.get("csv") if isinstance(logger, Mapping) else None
    if isinstance(csv_logger, Mapping):
        root = Path(str(csv_logger["save_dir"])) if csv_logger.get("save_dir") else run.directory
        candidates.append(root / str(csv_logger.get("name") or "") / str(csv_logger.get("version") or "")
                          / "metrics.csv")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = sorted(run.directory.rglob("metrics.csv"))
    return found[0] if found else None


def history_offset(record: Mapping[str, Any]) -> int:
    """What to add to a step of the run's CSV history to count optimizer steps done: 0 for a record whose
    ``history_steps`` is ``completed``; 1 for an older one, logged by Lightning itself, whose training and validation
    rows sit one step lower."""
    return 0 if record.get("history_steps") == HISTORY_STEPS else 1


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
