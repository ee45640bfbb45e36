"""``rnnbench train ... resume=true``: find the earlier run or sweep of the same command and continue it.

Run and sweep dirs carry a timestamp (``multirun/<experiment>/<time>``), so running a command again
would start a new dir. With ``resume=true`` and no explicit ``hydra.sweep.dir`` (``hydra.run.dir``
for a single run), :func:`resolve_output_dir` looks in the dirs the command's own dir pattern allows
(its ``${now:...}`` parts as wildcards) for the latest one whose saved overrides are this command's,
and the launch path pins ``hydra.sweep.dir=<it>``. In there, every job whose ``result.json`` is completed or
diverged for the identical config is skipped (:func:`rnnbench.job.run.run` does that) and the
rest run again, each in its own job dir as before.

Overrides that do not change any job's result are ignored when comparing commands: the run settings
(:data:`rnnbench.record.keys.RUN_SETTINGS`: ``resume``, ``threads``, ``verbose``, ``checkpoint``), the launcher and
the run/sweep dir.

A grid that grew (more seeds, a new value) is a new command, so it gets a new sweep dir; but with ``resume=true``
the launch path first indexes every finished record in the dirs of the command's pattern
(:func:`write_finished_index`, ``.rnnbench-finished.json`` in the new sweep dir), and each job whose
``config_hash`` is there copies that record (``reused_from``) instead of training again: only the new jobs run.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from rnnbench.record.keys import LAUNCHER_ADDED, RUN_SETTINGS
from rnnbench.record.plan import FINISHED_INDEX
from rnnbench.record.schema import FINISHED, RecordError, read_record, write_json_atomic

IGNORED_HYDRA_PREFIXES = ("hydra.mode", "hydra.sweep.dir", "hydra.run.dir", "hydra/launcher", "hydra.launcher.")
_NOW = re.compile(r"\$\{now:[^}]*\}")


def _key(override: Override) -> str:
    return override.key_or_group


def _resume_requested(parsed: list[Override]) -> bool:
    for override in parsed:
        if _key(override) == "resume" and not override.is_sweep_override() and not override.is_delete():
            value = override.value()
            return value is True or str(value).lower() in ("true", "1", "yes")
    return False


def command_signature(task: list[str], hydra: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What identifies a command's jobs: its task and Hydra overrides, sorted, less those that never
    change a result (the run settings, the launcher, the output dirs)."""
    parser = OverridesParser.create()
    kept_task = sorted(o.input_line for o in parser.parse_overrides(list(task)) if _key(o) not in RUN_SETTINGS)
    kept_hydra = sorted(o.input_line for o in parser.parse_overrides(list(hydra))
                        if not _key(o).startswith(IGNORED_HYDRA_PREFIXES) and o.input_line not in LAUNCHER_ADDED)
    return tuple(kept_task), tuple(kept_hydra)


def _saved_signature(saved: Path) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    try:
        overrides = (yaml.safe_load(saved.read_text()) or {})["hydra"]["overrides"]
        return command_signature(overrides.get("task") or [], overrides.get("hydra") or [])
    except Exception:  # an unreadable or foreign file is simply not a match
        return None


def dir_pattern(hydra_root: DictConfig, multirun: bool) -> str | None:
    """The glob of every dir this command could have written to (``${now:...}`` parts as ``*``), or
    None when the dir has no timestamp (the same command always reuses it: nothing to find).
    ``hydra_root`` is the command's composed config with Hydra's settings (the launch path's)."""
    node = copy.deepcopy(hydra_root).hydra
    node = node.sweep if multirun else node.run
    raw = OmegaConf.to_container(node, resolve=False)["dir"]  # the pattern as written, ${now:...} unresolved
    if not isinstance(raw, str) or not _NOW.search(raw):
        return None
    with read_write(node), open_dict(node):
        node.dir = _NOW.sub("*", raw)
        return str(node.dir)


def find_previous(overrides: list[str], pattern: str | None, multirun: bool) -> Path | None:
    """The latest earlier dir matching ``pattern`` whose saved command is this one, else None."""
    if pattern is None:
        return None
    parsed = OverridesParser.create().parse_overrides(overrides)
    wanted = command_signature([o.input_line for o in parsed if not o.is_hydra_override()],
                               [o.input_line for o in parsed if o.is_hydra_override()])
    saved_name = "multirun.yaml" if multirun else ".hydra/hydra.yaml"
    matches = [Path(saved).parent if multirun else Path(saved).parent.parent
               for saved in sorted(map(str, Path().glob(f"{pattern}/{saved_name}")))
               if _saved_signature(Path(saved)) == wanted]
    return matches[-1] if matches else None


def output_dir_of(hydra_root: DictConfig, multirun: bool) -> Path:
    """The run dir (the sweep dir with ``-m``) Hydra would make for the command now: its ``${now:...}`` resolved."""
    return Path(str(hydra_root.hydra.sweep.dir if multirun else hydra_root.hydra.run.dir))


def resolve_output_dir(overrides: list[str], hydra_root: DictConfig, multirun: bool) -> Path:
    """The dir this command writes to. A new sweep dir under ``resume=true`` gets the index of the finished jobs
    of the command's earlier sweeps (:data:`FINISHED_INDEX`).

    With ``resume=true`` and no dir on the command line, the latest earlier dir of the same command (printed);
    else the dir Hydra would make now."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    fresh = output_dir_of(hydra_root, multirun)
    if not _resume_requested(parsed) or any(_key(o) == key for o in parsed):
        return fresh
    pattern = dir_pattern(hydra_root, multirun)
    previous = find_previous(overrides, pattern, multirun)
    what = "sweep" if multirun else "run"
    if previous is None:
        if pattern is not None:
            print(f"rnnbench: resume: no earlier {what} of this command in {pattern}; starting a new one", flush=True)
            if multirun and (reusable := write_finished_index(fresh, pattern)):
                print(f"rnnbench: resume: {reusable} finished job(s) of earlier sweeps in {pattern} are reused "
                      "where this grid has the same config", flush=True)
        return fresh
    print(f"rnnbench: resume: continuing the {what} in {previous}", flush=True)
    return previous


def pin_output_dir(arguments: list[str], directory: Path, multirun: bool) -> list[str]:
    """``arguments`` with ``hydra.sweep.dir`` (``hydra.run.dir`` without ``-m``) set to ``directory``, so that
    Hydra writes where the launch path resolved, locked and will summarise."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    kept = [a for a in arguments if not a.startswith(f"{key}=")]
    return [*kept, f"{key}={_quote(directory)}"]


def _quote(path: Path) -> str:
    text = str(path).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def write_finished_index(sweep_dir: Path, pattern: str | None) -> int:
    """Write ``sweep_dir/.rnnbench-finished.json``: ``{config_hash: path of a finished record}`` over the sweep
    dirs matching ``pattern`` (this command's earlier sweeps, whatever their grid). Returns how many it holds."""
    if pattern is None:
        return 0
    found: dict[str, str] = {}
    for path in sorted(Path().glob(f"{pattern}/*/result.json")):
        if path.parent.parent.resolve() == sweep_dir.resolve():
            continue  # the sweep's own records: its jobs find them in their own dirs
        try:
            record = read_record(path)
        except RecordError:
            continue
        if record["status"] in FINISHED and record.get("reused_from") is None:
            found.setdefault(record["config_hash"], os.path.abspath(path))
    if found:
        write_json_atomic(sweep_dir / FINISHED_INDEX, found)
    return len(found)
