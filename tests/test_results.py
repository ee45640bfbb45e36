"""Every committed results table is what its README's `rnnbench table` command prints from the committed records."""

from __future__ import annotations

import re
import shlex

import pytest

from rnnbench.cli import main

from conftest import REPO

COMMANDS = [(readme.parent.name, line)
            for readme in sorted((REPO / "results").glob("*/README.md"))
            for line in re.findall(r"^rnnbench table .*--output \S+$", readme.read_text(), flags=re.MULTILINE)]


@pytest.mark.skipif(not COMMANDS, reason="no committed results table yet")
@pytest.mark.parametrize("name,command", COMMANDS)
def test_committed_table_regenerates_from_its_readme_command(name, command, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    arguments = shlex.split(command)[1:]
    committed = REPO / arguments[arguments.index("--output") + 1]
    arguments[arguments.index("--output") + 1] = str(tmp_path / committed.name)
    assert main(arguments) == 0
    assert (tmp_path / committed.name).read_text() == committed.read_text()
