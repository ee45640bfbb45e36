"""What the tables and the report page show, on the committed records of results/: numbers a column shows alike,
null settings a Hydra override takes back, the answer before the detail (code versions folded, one-run rows
folded), each grouping of the page once, and comparisons whose verdicts say what their intervals show."""

from __future__ import annotations

import json

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from scipy import stats

from rnnbench.cli import main
from rnnbench.report.compare import build_comparison
from rnnbench.report.formatting import format_summary
from rnnbench.report.html import FOLD_FROM, _grouping_choices, build_page, page_data
from rnnbench.report.published import Published
from rnnbench.report.records import load_runs
from rnnbench.report.rows import grouping
from rnnbench.report.statistics import ALPHA, summarize
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


# --- comparisons ----------------------------------------------------------------------------------------------

VERDICTS = ("A > B", "A < B", "equivalent within ±", "inconclusive")


@pytest.mark.parametrize("dirs,compare,metrics,by", [
    (["cells_vs_length/runs"], ["model.cell=gru", "model.cell=lstm"],
     ["test/mse", "steps_to:val/mse<0.01", "best/val/mse", "gradients.vanishing_log10_first"], None),
    (["polyphonic/runs/jsb_chorales/seeds-1-5", "polyphonic/runs/nottingham/seeds-1-5"],
     ["model.cell=*", "model.cell=rnn"], ["test/nll", "test/frame_accuracy"], ["data"]),
    (["clipping_learning/runs"], ["trainer.gradient_clip_val=0.25", "trainer.gradient_clip_val=none"],
     ["test/loss", "best/val/perplexity"], None)])
def test_a_verdict_reads_the_interval_it_shows(dirs, compare, metrics, by):
    """Each verdict is one of four; A > B and A < B where the interval shown excludes 0 (on that side), and only
    there; equivalent where it lies inside ±δ; an inconclusive row's interval holds 0 and reaches past ±δ. The
    interval is at its Holm step's level (no narrower than the unadjusted 95% one), and the family is stated."""
    table = build_comparison(load_runs([RESULTS / d for d in dirs]), compare, metrics=metrics, by=by)
    rows = json.loads(table.render("json"))
    for row in rows:
        verdict, interval, margin = row["verdict"], row["CI (Holm level)"], row["±δ"]
        assert verdict.startswith(VERDICTS), verdict
        if interval["low"] is None:
            assert verdict.startswith("inconclusive")
            continue
        low, high = interval["low"], interval["high"]
        assert (row["p (Holm)"] < ALPHA) == verdict.startswith(("A > B", "A < B"))
        if verdict.startswith("A > B"):
            assert low > 0
        elif verdict.startswith("A < B"):
            assert high < 0
        elif verdict.startswith("equivalent"):
            assert interval["reads"] == "equivalence" and -margin < low and high < margin
            assert interval["confidence"] >= 1 - 2 * ALPHA and row["p equiv. (Holm)"] < ALPHA
        else:
            assert low <= 0 <= high and (margin is None or low <= -margin or high >= margin)
            assert "80% power" in verdict or "(undefined" in verdict
        if interval["reads"] == "difference":
            assert 1 - ALPHA <= interval["confidence"] <= 1 - ALPHA / len(rows)
    tested = sum(row["p"] is not None for row in rows)
    assert any(note.startswith(f"the family: this table's {tested} tested row(s)") for note in table.notes)


def test_outcome_rows_compare_who_reached_the_threshold():
    """long_adding at T=150: irnn reached test/mse < 0.01 in 4 of its 5 runs (its diverged run counts as not
    reaching it), lstm and rnn in none; Boschloo's exact test, Holm-adjusted with the metric rows; a steps_to:
    metric has its reached row too. test/loss equals test/mse on every run: one row. The default margin is 10% of
    B's distance from the input-blind baseline."""
    runs = load_runs([RESULTS / "long_adding" / "runs" / "T150"])
    table = build_comparison(runs, ["model=*", "model=irnn"], metrics=["test/mse", "test/loss",
                                                                         "steps_to:val/mse<0.01"],
                             success=["test/mse<0.01"])
    rows = json.loads(table.render("json"))
    assert [(row["model"], row["metric"]) for row in rows] == [
        (cell, metric) for cell in ("lstm", "rnn") for metric in
        ("test/mse (= test/loss)", "steps_to:val/mse<0.01", "steps_to:val/mse<0.01 (reached)",
         "test/mse<0.01 (reached)")]
    reached = rows[3]
    assert (reached["A"]["reached"], reached["A"]["n"], reached["B: model=irnn"]["reached"],
            reached["B: model=irnn"]["n"]) == (0, 5, 4, 5)
    assert reached["p"] == pytest.approx(stats.boschloo_exact([[0, 4], [5, 1]]).pvalue, rel=1e-12)
    assert reached["A - B"] == pytest.approx(-0.8) and reached["CI (Holm level)"]["low"] is None
    assert reached["verdict"] == "inconclusive (no difference has 80% power at these n)"  # 6 rows' Holm level
    assert any(note.startswith("(reached) rows: ") and "a diverged run counts as not reaching it" in note
               for note in table.notes)
    assert "test/mse (= test/loss): equal on every run, one row" in table.notes
    irnn = [run.value("test/mse") for run in runs.runs if run.settings.get("model") == "irnn"
            and run.status == "completed"]
    assert rows[0]["±δ"] == pytest.approx(0.1 * abs(sum(irnn) / len(irnn) - 1 / 6), rel=1e-3)
    assert rows[0]["verdict"] == "A > B (n < 5 on a side: indicative only)"
    # the published file may name the row by either metric
    published = Published("p.csv", ("model", "metric"), ({"model": "lstm", "metric": "test/loss", "published": "x"},))
    assert column(published.add_to(table), "published")[0] == "x"
    # a plain table counts the threshold too
    plain = build_table(runs, metrics=["test/mse"], success=["test/mse<0.01"])
    assert column(plain, "test/mse<0.01") == ["4/5", "0/5", "0/5"]


@pytest.mark.parametrize("arguments,error", [
    (["--margin", "test/mse"], "--margin test/mse is not allowed: METRIC=δ, e.g. test/mse=0.01"),
    (["--margin", "test/mse=-1"], "--margin test/mse=-1 is not allowed: a number > 0"),
    (["--margin", "test/mse=wide"], "--margin test/mse=wide is not allowed: a number > 0"),
    (["--margin", "test/accuracy=0.1"],
     "--margin test/accuracy=0.1 is not allowed: test/accuracy is not a compared metric (compared: test/mse)"),
    (["--margin", "test/mse=0.1", "--margin", "test/mse=0.2"],
     "--margin test/mse=0.2 is not allowed: test/mse has a margin already (0.1)"),
    (["--metric", "test/loss", "--margin", "test/mse=0.03", "--margin", "test/loss=0.02"],
     "--margin test/loss=0.02 is not allowed: test/loss equals test/mse on every run (one row), whose margin is 0.03"),
    (["--success", "test/mse"], "--success 'test/mse' is not allowed: METRIC<THRESHOLD or METRIC>THRESHOLD, "
                                "e.g. 'test/mse<0.01'"),
    (["--success", "test/mse<low"], "--success 'test/mse<low' is not allowed: the threshold must be a finite "
                                    "number, e.g. 'test/mse<0.01'"),
    (["--success", "steps_to:val/mse<0.01"], "--success 'steps_to:val/mse<0.01' is not allowed: a steps_to: metric "
                                             "is already reached or not: give it as --metric steps_to:val/mse<0.01 "
                                             "(a comparison shows its reached fraction as a row)"),
    (["--success", "test/nope<1"], "--success 'test/nope<1' is not allowed: no record holds test/nope (the "
                                   "records' metrics: ")])
def test_margins_and_thresholds_are_refused_in_one_line(arguments, error, capsys):
    runs = str(RESULTS / "long_adding" / "runs" / "T150")
    assert main(["table", runs, "--metric", "test/mse", "--compare", "model=*", "model=irnn", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"rnnbench: error: {error}"), err
    if "--margin" in arguments:
        assert main(["table", runs, *arguments]) == 2
        assert "is not allowed without --compare" in capsys.readouterr().err


def test_a_budget_chooses_each_cells_hidden_size_without_confounding_a_comparison_of_cells():
    """Under model.param_budget or model.state_budget the cells' hidden sizes differ by design: comparing cells is
    allowed (and the note names the size each side got); a hidden size that differs without a budget still is not."""
    budgeted = load_runs([RESULTS / "sequential_images" / "runs" / "rows-state256"])
    table = build_comparison(budgeted, ["model.cell=*", "model.cell=lstm"], ["test/accuracy"])
    assert [row[0].text() for row in table.rows] == ["gru", "rnn"]
    assert any("model.hidden_size (256 against 128)" in note for note in table.notes)
    unbudgeted = load_runs([RESULTS / "length_generalization" / "runs" / "adding",
                            RESULTS / "length_generalization" / "runs" / "adding-mingru"])
    with pytest.raises(Exception, match="the sides differ in more than model.cell: model.recurrent_init"):
        build_comparison(unbudgeted, ["model.cell=*", "model.cell=lstm"], ["test/mse"])
