"""Keep credentials out of everything rnnbench and its loggers write or print.

A credential reaches a run in two ways: as the resolved value of an environment variable
(``'+extra.api_key=${oc.env:WANDB_API_KEY}'``, or any interpolation that lands it in a string), or as a
literal under a secret-looking key (``+extra.api_key=sekrit``). :class:`Secrets` collects both:

- every environment variable whose name contains ``KEY``, ``TOKEN``, ``SECRET``, ``PASSWORD``, ``PASSWD``
  or ``CREDENTIAL`` (case-insensitive; ``WANDB_API_KEY`` among them), and every variable named in
  ``RNNBENCH_SECRET_VARS`` (comma-separated), whose value has at least :data:`MIN_SECRET_LENGTH` characters;
- the literal value of every override whose key looks secret (:data:`SECRET_KEY`).

:meth:`Secrets.scrub` replaces each of those values by ``<redacted>`` in a string, :meth:`Secrets.scrub_tree` in a
config tree (a secret-looking key's value is redacted whatever it holds), :meth:`Secrets.scrub_override` in a
``KEY=VALUE`` override. The launch path scrubs its messages, the job its record, run name, logged config and
``sys.argv`` (which W&B records), a logging filter every log line, and :meth:`Secrets.scrub_files` rewrites the
text files a job leaves (Hydra's ``.hydra/`` dumps, logs, CSV, W&B's text files) at its end.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 6  # shorter values ("1", "true") are too common to scrub from text; keys still redact them
SECRET_VARIABLE = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
SECRET_KEY = re.compile(r"(api[_-]?key|access[_-]?key|private[_-]?key|token|secret|password|passwd|credential)",
                        re.IGNORECASE)
USER_LISTED = "RNNBENCH_SECRET_VARS"
# The launch path passes the literal secrets of the command line to every job process in variables named so
# (their names contain SECRET, so each process scrubs them like any credential of its environment).
SECRET_LITERAL_PREFIX = "RNNBENCH_SECRET_LITERAL_"
# Files a job writes that are text (scrubbed in place at its end); binary ones (.wandb, .ckpt) are kept clean at
# their source instead.
TEXT_SUFFIXES = (".yaml", ".yml", ".json", ".csv", ".log", ".txt", ".md", ".html", ".svg")


def secret_key(key: str) -> bool:
    """Whether a config key's last component looks like it holds a credential (``api_key``, ``db_password``)."""
    return bool(SECRET_KEY.search(str(key).rsplit(".", 1)[-1]))


class Secrets:
    """The credential values of this process's environment and of given overrides; see the module docstring."""

    def __init__(self, values: Iterable[str] = ()):
        found = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH}
        # longest first, so a secret that contains another is replaced whole
        self.values = sorted(found, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, self.values))) if self.values else None

    @classmethod
    def from_environment(cls, overrides: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> "Secrets":
        environ = os.environ if environ is None else environ
        listed = {name.strip() for name in environ.get(USER_LISTED, "").split(",") if name.strip()}
        values = [value for name, value in environ.items()
                  if (SECRET_VARIABLE.search(name) or name in listed) and name != USER_LISTED]
        values += cls.literals(overrides)
        return cls(values)

    @staticmethod
    def literals(overrides: Iterable[str]) -> list[str]:
        """The literal values of the secret-looking overrides among ``overrides``."""
        return [literal for literal in map(secret_literal, overrides) if literal]

    def scrub(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text) if self._pattern is not None and isinstance(text, str) else text

    def scrub_tree(self, value: Any) -> Any:
        """A copy of a config tree (dicts, lists, scalars) with secret-looking keys redacted and secrets scrubbed."""
        if isinstance(value, Mapping):
            # keys too: a setting named after a credential (``+extra.<token>=1``) carries it in its name
            return {self.scrub(k) if isinstance(k, str) else k:
                    REDACTED if secret_key(str(k)) and value[k] is not None else self.scrub_tree(v)
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub_tree(v) for v in value]
        return self.scrub(value) if isinstance(value, str) else value

    def scrub_override(self, override: str) -> str:
        """``+extra.api_key=sekrit`` -> ``+extra.api_key=<redacted>``; any other override with its secrets scrubbed."""
        key, equals, value = override.partition("=")
        if equals and secret_key(key.lstrip("+~")) and value:
            return f"{key}={REDACTED}"
        return self.scrub(override)

    def scrub_overrides(self, overrides: Iterable[str]) -> list[str]:
        return [self.scrub_override(o) for o in overrides]

    def scrub_file(self, path: Path) -> None:
        """Rewrite a text file without its secrets (only when it holds one; a file that is not text is left)."""
        if self._pattern is None:
            return
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            return
        clean = self.scrub(text)
        if clean != text:
            temporary = path.with_name(f".{path.name}.scrub")
            temporary.write_text(clean)
            os.replace(temporary, path)

    def scrub_files(self, root: Path) -> None:
        """Scrub every text file below ``root`` (see :data:`TEXT_SUFFIXES`)."""
        if self._pattern is None or not root.is_dir():
            return
        for path in root.rglob("*"):
            if path.suffix in TEXT_SUFFIXES and path.is_file():
                self.scrub_file(path)


def secret_literal(override: str) -> str | None:
    """The literal value of ``override`` when its key looks secret (``+extra.api_key=sekrit`` -> ``sekrit``); None
    for other keys and for an interpolation (``${oc.env:NAME}``), whose value is the environment's."""
    key, equals, value = str(override).partition("=")
    if not equals or not secret_key(key.lstrip("+~")):
        return None
    value = value.strip().strip("'\"")
    return None if not value or value.startswith("${") else value


class ScrubFilter(logging.Filter):
    """A logging filter (for every handler of ``conf/hydra/rnnbench.yaml``) that scrubs each line of secrets.

    The credentials are read from the environment and from ``sys.argv`` when the filter is built: the job's own
    overrides are on Hydra's command line in every process that logs them."""

    def __init__(self) -> None:
        super().__init__()
        import sys

        self.secrets = Secrets.from_environment(sys.argv[1:])

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets.values:
            record.msg, record.args = self.secrets.scrub(record.getMessage()), None
        return True
