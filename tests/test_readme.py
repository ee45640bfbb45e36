"""README.md's set-up commands are what CI runs."""

from __future__ import annotations

import re

from conftest import REPO


def test_ci_runs_the_readme_install_and_test_commands():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    commands = re.findall(r"```bash\n(python3 -m venv .*?)\n```", readme)
    assert len(commands) == 2, "README opens with two set-up commands"
    main_job, tests = commands
    assert "rnnbench train" in main_job
    install, test = tests.split(" && ")[2:4], tests.split(" && ")[4:]
    assert " && ".join(install) in ci and " && ".join(test) in ci
