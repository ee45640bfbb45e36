"""``rnnbench train ... resume=true``: find the earlier run or sweep of the same command and continue it.

Run and sweep dirs carry a timestamp (``multirun/<experiment>/<time>``), so running a command again
would start a new dir. With ``resume=true`` and no explicit ``hydra.sweep.dir`` (``hydra.run.dir``
for a single run), :func:`resume_arguments` looks in the dirs the command's own dir pattern allows
(its ``${now:...}`` parts as wildcards) for the latest one whose saved overrides are this command's,
and passes ``hydra.sweep.dir=<it>``. In there, every job whose ``result.json`` is completed or
diverged for the identical config is skipped (:func:`rnnbench.training.run.run` does that) and the
rest run again, each in its own job dir as before.

Overrides that do not change any job's result are ignored when comparing commands: ``resume``,
``threads``, the launcher and the run/sweep dir.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import open_dict, read_write

from rnnbench.config import config_dir
from rnnbench.preflight import split_multirun

IGNORED_KEYS = ("resume", "threads")
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
    change a result (``resume``, ``threads``, the launcher, the output dirs)."""
    parser = OverridesParser.create()
    kept_task = sorted(o.input_line for o in parser.parse_overrides(list(task)) if _key(o) not in IGNORED_KEYS)
    kept_hydra = sorted(o.input_line for o in parser.parse_overrides(list(hydra))
                        if not _key(o).startswith(IGNORED_HYDRA_PREFIXES))
    return tuple(kept_task), tuple(kept_hydra)


def _saved_signature(saved: Path) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    try:
        overrides = (yaml.safe_load(saved.read_text()) or {})["hydra"]["overrides"]
        return command_signature(overrides.get("task") or [], overrides.get("hydra") or [])
    except Exception:  # an unreadable or foreign file is simply not a match
        return None


def _dir_pattern(overrides: list[str], multirun: bool) -> str | None:
    """The glob of every dir this command could have written to (``${now:...}`` parts as ``*``), or
    None when the dir has no timestamp (the same command always reuses it: nothing to find)."""
    parser = OverridesParser.create()
    base = [o.input_line for o in parser.parse_overrides(overrides) if not (multirun and o.is_sweep_override())]
    with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="resume"):
        cfg = compose("train", overrides=base, return_hydra_config=True)
    node = cfg.hydra.sweep if multirun else cfg.hydra.run
    raw = node._get_node("dir")._value()
    if not isinstance(raw, str) or not _NOW.search(raw):
        return None
    with read_write(node), open_dict(node):
        node.dir = _NOW.sub("*", raw)
        return str(node.dir)


def find_previous(overrides: list[str], multirun: bool) -> tuple[Path | None, str | None]:
    """(the latest earlier dir of this command or None, the glob searched or None)."""
    pattern = _dir_pattern(overrides, multirun)
    if pattern is None:
        return None, None
    parsed = OverridesParser.create().parse_overrides(overrides)
    wanted = command_signature([o.input_line for o in parsed if not o.is_hydra_override()],
                               [o.input_line for o in parsed if o.is_hydra_override()])
    saved_name = "multirun.yaml" if multirun else ".hydra/hydra.yaml"
    matches = [Path(saved).parent if multirun else Path(saved).parent.parent
               for saved in sorted(map(str, Path().glob(f"{pattern}/{saved_name}")))
               if _saved_signature(Path(saved)) == wanted]
    return (matches[-1] if matches else None), pattern


def _quote(path: Path) -> str:
    text = str(path).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def resume_arguments(arguments: list[str]) -> list[str]:
    """``arguments`` plus ``hydra.sweep.dir=<previous>`` (``hydra.run.dir`` without ``-m``) when they
    ask for ``resume=true``, name no dir themselves and an earlier dir of the same command exists."""
    multirun, overrides = split_multirun(arguments)
    parsed = OverridesParser.create().parse_overrides(overrides)
    if not _resume_requested(parsed):
        return arguments
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    if any(_key(o) == key for o in parsed):
        return arguments
    previous, pattern = find_previous(overrides, multirun)
    what = "sweep" if multirun else "run"
    if previous is None:
        if pattern is not None:
            print(f"rnnbench: resume: no earlier {what} of this command in {pattern}; starting a new one", flush=True)
        return arguments
    print(f"rnnbench: resume: continuing the {what} in {previous}", flush=True)
    return [*arguments, f"{key}={_quote(previous)}"]
