"""Every cell the tests must cover: the registry's, and the worked example of README.md's "Write your own cell"
section, loaded from README.md as written. Tests parametrised over ``all_cells()`` cover a new cell without
being edited."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from rnnbench.models.cells import CELLS, Cell

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLE_MODULE = "my_cells"  # the file name README.md tells the user to save the example as
EXAMPLE_CLASS = "PeepholeLSTM"


def readme_example_source() -> str:
    """The first python block after the heading "## Write your own cell" in README.md."""
    text = README.read_text()
    section = text[text.index("## Write your own cell"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def readme_example_class() -> type[Cell]:
    if EXAMPLE_MODULE not in sys.modules:
        spec = importlib.util.spec_from_loader(EXAMPLE_MODULE, loader=None)
        module = importlib.util.module_from_spec(spec)
        exec(compile(readme_example_source(), str(README) + ":" + EXAMPLE_MODULE, "exec"), module.__dict__)
        sys.modules[EXAMPLE_MODULE] = module
    return getattr(sys.modules[EXAMPLE_MODULE], EXAMPLE_CLASS)


def all_cells() -> dict[str, type[Cell]]:
    """Registry name (or the example's dotted path) -> class."""
    return {**CELLS, f"{EXAMPLE_MODULE}.{EXAMPLE_CLASS}": readme_example_class()}
