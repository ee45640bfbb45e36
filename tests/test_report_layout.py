"""What the tables and the report page show, on the committed records of results/: numbers a column shows alike,
null settings a Hydra override takes back, the answer before the detail (code versions folded, one-run rows
folded), and each grouping of the page once."""

from __future__ import annotations

import json

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from rnnbench.report.formatting import format_summary
from rnnbench.report.html import FOLD_FROM, _grouping_choices, build_page, page_data
from rnnbench.report.published import Published
from rnnbench.report.records import load_runs
from rnnbench.report.rows import grouping
from rnnbench.report.statistics import summarize
from rnnbench.report.table import build_table

from conftest import REPO

RESULTS = REPO / "results"


@pytest.fixture(scope="module")
def clipping():
    return load_runs([RESULTS / "clipping" / "runs"])


def column(table, name: str) -> list[str]:
    index = table.columns.index(name)
    return [row[index].text() for row in table.rows]


# --- numbers -------------------------------------------------------------------------------------------------------

def test_a_spread_of_exactly_zero_is_not_shown():
    assert format_summary(summarize([19809, 19809, 19809])) == "19809 (3)"  # a parameter count: no "± 0"
    assert format_summary(summarize([0.25, 0.25])) == "0.25 (2)"
    assert format_summary(summarize([1.0, 2.0])) == "1.50 ± 0.71 (2)"  # a spread is shown as before
    table = build_table(load_runs([RESULTS / "depth_direction" / "runs"]), metrics=["parameters"],
                        by=["model.cell", "model.num_layers", "model.bidirectional"])
    assert column(table, "parameters")[:2] == ["14858 (5)", "29706 (5)"]


def test_a_column_shows_its_large_numbers_in_one_notation(clipping):
    """gradients.max_norm spans 2 to 6e9: its large numbers all take an exponent (8.7e+05 beside 5.8e+09, not
    868214), its small ones stay as they read best."""
    table = build_table(clipping, metrics=["gradients.max_norm", "gradients.clip_rate"],
                        by=["model.cell", "trainer.gradient_clip_val"])
    rows = {(row[0].text(), row[1].text()): row[2].text() for row in table.rows}
    assert rows[("gru", "10")] == "5.8e+09 ± 1.3e+10 (5)"
    assert rows[("rnn", "10")] == "8.7e+05 ± 1.8e+06 (5)"
    assert rows[("gru", "0.1")] == "3.02 ± 0.49 (5)" and rows[("rnn", "1")] == "1263 ± 1152 (5)"
    for text in rows.values():  # no number of 5 digits or more without an exponent
        numbers = text.rsplit(" (", 1)[0].split(" ± ")
        assert all("e" in number or abs(float(number)) < 1e4 for number in numbers if number), text
    # the numbers themselves are unchanged in the machine-readable forms
    (gru_10,) = [row for row in json.loads(table.render("json"))
                 if row["model.cell"] == "gru" and row["trainer.gradient_clip_val"] == 10]
    assert gru_10["gradients.max_norm"]["mean"] == pytest.approx(5.765e9, rel=1e-3)
    # a column without an exponent keeps its plain numbers
    assert column(table, "gradients.clip_rate")[3] == "0.9918 ± 0.0051 (5)"


# --- null settings ----------------------------------------------------------------------------------------------

def test_a_null_setting_reads_back_as_a_hydra_override(clipping):
    """Each grouping value, pasted as KEY=VALUE on a command line, is the setting's value (null, not "none",
    which Hydra reads as the text 'none')."""
    parser = OverridesParser.create()
    table = build_table(clipping, by=["model.cell", "trainer.gradient_clip_val"])
    groups = grouping(clipping.runs, ["model.cell", "trainer.gradient_clip_val"]).rows
    assert column(table, "trainer.gradient_clip_val")[:4] == ["null", "0.1", "1", "10"]
    for row, group in zip(table.rows, groups):
        for key, cell, value in zip(group.keys, row, group.values):
            assert parser.parse_override(f"{key}={cell.text()}").value() == value
    markdown = table.render("markdown")
    assert "| gru | null |" in markdown and "none" not in markdown.split("\n- ")[0]
    # notes name null values alike: the pooled settings
    assert "model.nonlinearity (null, tanh)" in markdown
    assert parser.parse_override("trainer.gradient_clip_val=none").value() == "none"  # what the table used to say


def test_a_published_file_written_with_none_still_joins(clipping):
    table = build_table(clipping, by=["model.cell", "trainer.gradient_clip_val"])
    published = Published("p.csv", ("model.cell", "trainer.gradient_clip_val"),
                          ({"model.cell": "gru", "trainer.gradient_clip_val": "none", "published": "diverges"},
                           {"model.cell": "gru", "trainer.gradient_clip_val": "null", "published": "unstable"}))
    joined = published.add_to(table)
    assert column(joined, "published")[0] == "diverges; unstable" and column(joined, "published")[1] == ""


# --- the page ---------------------------------------------------------------------------------------------------

def test_differing_code_versions_are_a_folded_note_not_a_warning(clipping, tmp_path):
    data = page_data(clipping, [RESULTS / "clipping" / "runs"], tmp_path / "report.html",
                     by=["model.cell", "trainer.gradient_clip_val"])
    table = data["groupings"][0]["table"]
    assert not any("code version" in warning for warning in table["warnings"])
    assert table["code_versions"] == {"summary": "the runs ran different code versions (see which)",
                                 "lines": ["runs differ in code version: git commit 903971db71 (36 runs), "
                                           "e5f3a9f7cf (24 runs)"]}
    assert data["provenance"]["code_versions"] == table["code_versions"] and data["provenance"]["warnings"] == []
    assert set(data["provenance"]["versions"]) >= {"torch", "hydra_core"}  # the package versions, as they were
    # the markdown table, read without the page, still says it
    assert "- **Warning:** runs differ in code version" in build_table(clipping).render("markdown")


def test_a_long_table_folds_its_one_run_rows():
    """lstm_variants: 18 rows of 5 seeds each, and 32 learning-rate-search rows of one run each, which the page
    folds below the others; a table of rows with seeds only folds nothing."""
    dirs = [RESULTS / "lstm_variants" / "runs" / name
            for name in ("lr-search", "lr-search-0.1", "seeds-1-5", "timemachine-seeds-1-5")]
    runs = load_runs(dirs)
    table = page_data(runs, dirs, RESULTS / "lstm_variants" / "report.html",
                      by=["lstm_variant", "model.cell", "optim.lr"])["groupings"][0]["table"]
    completed = table["columns"].index("completed")
    folded = set(table["folded"])
    assert len(table["rows"]) > FOLD_FROM and len(folded) == 32
    assert all(table["rows"][i][completed]["t"] == "1/1" for i in folded)
    assert all(row[completed]["t"] == "5/5" for i, row in enumerate(table["rows"]) if i not in folded)
    clipping = load_runs([RESULTS / "clipping" / "runs"])
    assert page_data(clipping, [RESULTS / "clipping" / "runs"], RESULTS / "clipping" / "report.html")[
        "groupings"][0]["table"]["folded"] == []


def test_each_grouping_is_offered_once_and_the_page_shrinks(tmp_path):
    """polyphonic: data, data.name, data.file and data.sha256 split the runs alike, and so do the default grouping and
    data with model.cell: each of these is one choice, and the page is under 3 MB (it was 4.7 MB)."""
    dirs = [RESULTS / "polyphonic" / "runs" / name / "seeds-1-5" for name in ("jsb_chorales", "nottingham")]
    runs = load_runs(dirs)
    by = ["data", "model.cell", "optim.lr"]
    choices = _grouping_choices(runs.runs, by)
    partitions = [frozenset(frozenset(id(run) for run in row.runs) for row in grouping(runs.runs, choice).rows)
                  for choice in choices]
    assert len(set(partitions)) == len(partitions) == len(choices)
    assert choices == [by, ["data"], ["model.hidden_size"], ["optim.lr"]]
    page = build_page(page_data(runs, dirs, tmp_path / "report.html", by=by, metrics=["test/nll"]))
    assert len(page.encode()) < 3_000_000
