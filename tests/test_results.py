"""Every committed results table and report page is what its README's `rnnbench table` or `rnnbench report` command
makes from the committed records."""

from __future__ import annotations

import re
import shlex

import pytest

from rnnbench.cli import main
from rnnbench.report.html import embedded_data

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


REPORTS = [(readme.parent.name, line)
           for readme in sorted((REPO / "results").glob("*/README.md"))
           for line in re.findall(r"^rnnbench report .* -o \S+$", readme.read_text(), flags=re.MULTILINE)]
LINK_BASE = re.compile(r'"link_base":"[^"]*"')


def test_every_results_folder_with_runs_has_a_report_command():
    with_runs = sorted(p.parent.name for p in (REPO / "results").glob("*/runs"))
    assert sorted({name for name, _ in REPORTS}) == with_runs  # a folder of two tasks may have a page for each


@pytest.mark.parametrize("name,command", REPORTS)
def test_committed_report_regenerates_from_its_readme_command(name, command, tmp_path, monkeypatch):
    """The same page but for where its links start from (the page's own dir, which differs here)."""
    monkeypatch.chdir(REPO)
    arguments = shlex.split(command)[1:]
    committed = REPO / arguments[arguments.index("-o") + 1]
    arguments[arguments.index("-o") + 1] = str(tmp_path / committed.name)
    assert main(arguments) == 0
    text, expected = (tmp_path / committed.name).read_text(), committed.read_text()
    assert LINK_BASE.sub("", text) == LINK_BASE.sub("", expected)
    assert len(expected.encode()) < 5_000_000  # results/clipping: 36 runs in 0.3 MB
    data = embedded_data(expected)
    assert data["link_base"] == "runs"
    assert all((committed.parent / "runs" / run["record"]).is_file() for run in data["runs"]["rows"])
