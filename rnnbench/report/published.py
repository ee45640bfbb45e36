"""``--published FILE``: published numbers joined onto a table's rows, in a column named ``published``.

The file is a CSV whose header names some of the table's columns (grouping keys such as ``model.cell``, or
``metric`` in a ``--compare`` table) and a ``published`` column (free text: the number or verdict and where it was
published). A table row takes the ``published`` text of the file's row whose named columns all read as the table
row's cells do (``lstm``, ``200``, ``null``; ``none``, as older tables showed null, reads as ``null`` too); rows
the file does not cover get an empty cell. Every file row must match some table row, so a typo in the file cannot
silently drop a published number.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from rnnbench.report.cells import Text
from rnnbench.report.records import NULL, ReportError
from rnnbench.report.table import Table

__all__ = ["PUBLISHED", "Published", "read_published"]

PUBLISHED = "published"


@dataclass(frozen=True)
class Published:
    """The rows of a ``--published`` CSV: ``keys``, the table columns it joins on, and each row's text."""

    path: str
    keys: tuple[str, ...]
    entries: tuple[dict[str, str], ...]

    def joins(self, table: Table) -> bool:
        """Whether ``table`` has every column the file joins on."""
        return set(self.keys) <= set(table.columns)

    def add_to(self, table: Table) -> Table:
        """``table`` with the ``published`` column (see the module docstring); ReportError for a column the table
        lacks or a file row that matches no table row."""
        unknown = [name for name in self.keys if name not in table.columns]
        if unknown:
            raise ReportError(f"--published {self.path}: column {unknown[0]!r} is not a column of the table "
                              f"(allowed: {', '.join(c for c in table.columns if c != PUBLISHED)})")
        positions = [table.columns.index(name) for name in self.keys]
        texts, used = [], set()
        for row in table.rows:
            found = [i for i, entry in enumerate(self.entries)
                     if all(row[p].answers_to(_cell(entry[name])) for p, name in zip(positions, self.keys))]
            used.update(found)
            texts.append("; ".join(self.entries[i][PUBLISHED] for i in found))
        unmatched = [i for i in range(len(self.entries)) if i not in used]
        if unmatched:
            entry = self.entries[unmatched[0]]
            raise ReportError(f"--published {self.path}: row {unmatched[0] + 2} ("
                              + ", ".join(f"{name}={entry[name]}" for name in self.keys)
                              + ") matches no row of the table")
        rows = [[*row, Text(text)] for row, text in zip(table.rows, texts)]
        return Table([*table.columns, PUBLISHED], rows, list(table.warnings), list(table.notes))


def _cell(text: str) -> str:
    """A file's value as the table's cell reads: ``none`` (the tables' old word for null) as ``null``."""
    return NULL if text == "none" else text


def read_published(path: str | Path) -> Published:
    """The CSV at ``path``; ReportError if it cannot be read or has no ``published`` column."""
    try:
        # utf-8-sig: a spreadsheet's UTF-8 export starts with a byte-order mark, which is not part of the header
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
            header = [name.strip() for name in reader.fieldnames or []]
    except OSError as error:
        raise ReportError(f"--published {path}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise ReportError(f"--published {path}: not UTF-8 text (byte {error.start}); save it as UTF-8 CSV") from None
    except csv.Error as error:
        raise ReportError(f"--published {path}: not a CSV file ({error})") from None
    if PUBLISHED not in header:
        raise ReportError(f"--published {path}: its header ({', '.join(header) or 'empty'}) has no "
                          f"'{PUBLISHED}' column")
    return Published(str(path), tuple(name for name in header if name != PUBLISHED), tuple(rows))
