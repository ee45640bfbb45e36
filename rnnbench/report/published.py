"""``--published FILE``: published numbers joined onto a table's rows, in a column named ``published``.

The file is a CSV whose header names some of the table's columns (grouping keys such as ``model.cell``, or
``metric`` in a ``--compare`` table) and a ``published`` column (free text: the number or verdict and where it was
published). A table row takes the ``published`` text of the file's row whose named columns all read as the table
row's cells do (``lstm``, ``200``, ``none``); rows the file does not cover get an empty cell. Every file row must
match some table row, so a typo in the file cannot silently drop a published number.
"""

from __future__ import annotations

import csv
from pathlib import Path

from rnnbench.report.cells import Text
from rnnbench.report.records import ReportError
from rnnbench.report.table import Table

__all__ = ["PUBLISHED", "add_published", "published_columns"]

PUBLISHED = "published"


def _read(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
            header = [name.strip() for name in reader.fieldnames or []]
    except OSError as error:
        raise ReportError(f"--published {path}: cannot read it ({error.strerror or error})") from None
    if PUBLISHED not in header:
        raise ReportError(f"--published {path}: its header ({', '.join(header) or 'empty'}) has no "
                          f"'{PUBLISHED}' column")
    return [name for name in header if name != PUBLISHED], rows


def published_columns(path: str | Path) -> list[str]:
    """The table columns the CSV at ``path`` joins on (its header less ``published``)."""
    return _read(path)[0]


def add_published(table: Table, path: str | Path) -> Table:
    """``table`` with a ``published`` column read from the CSV at ``path`` (see the module docstring)."""
    keys, entries = _read(path)
    unknown = [name for name in keys if name not in table.columns]
    if unknown:
        raise ReportError(f"--published {path}: column {unknown[0]!r} is not a column of the table (allowed: "
                          f"{', '.join(c for c in table.columns if c != PUBLISHED)})")
    positions = [table.columns.index(name) for name in keys]
    texts = []
    used = set()
    for row in table.rows:
        found = [i for i, entry in enumerate(entries)
                 if all(row[p].text() == entry[name] for p, name in zip(positions, keys))]
        used.update(found)
        texts.append("; ".join(entries[i][PUBLISHED] for i in found))
    unmatched = [i for i in range(len(entries)) if i not in used]
    if unmatched:
        entry = entries[unmatched[0]]
        raise ReportError(f"--published {path}: row {unmatched[0] + 2} ("
                          + ", ".join(f"{name}={entry[name]}" for name in keys)
                          + ") matches no row of the table")
    columns = [*table.columns, PUBLISHED]
    rows = [[*row, Text(text)] for row, text in zip(table.rows, texts)]
    return Table(columns, rows, list(table.warnings), list(table.notes))
