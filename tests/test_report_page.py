"""`rnnbench report`: the page of one tiny real sweep, read back as data and rendered by a real headless Chromium
with the network disabled (zero console errors, zero requests outside the file)."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from rnnbench.cli import main
from rnnbench.report.html import MAX_GROUPINGS, embedded_data
from rnnbench.report.figures import KINDS as FIGURE_KINDS
from rnnbench.record.schema import find_records

from conftest import PATIENCE, cli_env

# 2 cells x clipping off/0.5 x 2 seeds: three groupings to choose from (both keys, the cell, the threshold).
SWEEP = ("train", "-m", "model.cell=rnn,gru", "trainer.gradient_clip_val=null,0.5", "seed=0,1", "threads=1",
         "logger=csv", "trainer.max_steps=30", "trainer.val_check_interval=15", "model.hidden_size=8",
         "data.num_train=256", "data.num_val=64", "data.num_test=64", "data.seq_len=10", "data.test_seq_len=[20]")
MAX_BYTES = 5_000_000
KINDS = set(FIGURE_KINDS)  # every kind of figure rnnbench draws


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("page_sweep")
    result = subprocess.run([sys.executable, "-m", "rnnbench", *SWEEP], cwd=cwd, env=cli_env(),
                            capture_output=True, text=True, timeout=PATIENCE)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (cwd / "multirun").iterdir()
    assert len(list(find_records(sweep_dir))) == 8
    return sweep_dir


@pytest.fixture(scope="module")
def page(sweep) -> Path:
    """The page at its default place, report.html inside the sweep dir, with one comparison."""
    assert main(["report", str(sweep), "--compare", "model.cell=gru", "model.cell=rnn"]) == 0
    return sweep / "report.html"


def records(sweep: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(find_records(sweep))]


def mean_of(sweep: Path, metric: str, **settings) -> float:
    def matches(record: dict) -> bool:
        return (record["config"]["model"]["cell"] == settings.get("cell", record["config"]["model"]["cell"])
                and record["config"]["trainer"]["gradient_clip_val"] == settings.get(
                    "clip", record["config"]["trainer"]["gradient_clip_val"]))

    return statistics.mean(r["metrics"][metric] for r in records(sweep) if matches(r))


@pytest.mark.slow  # its fixture trains a sweep in a subprocess
def test_page_is_one_self_contained_file(page, sweep):
    text = page.read_text()
    assert len(text.encode()) < MAX_BYTES
    # nothing loads from outside the file: no external script, style, image, font or frame
    assert not re.search(r"<(link|img|iframe|object|embed)\b", text)
    assert not re.search(r"<script[^>]*\bsrc=", text) and "@import" not in text and "url(http" not in text
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", text)
    assert "default-src 'none'" in text  # and the page itself forbids it
    data = embedded_data(text)
    assert [g["name"] for g in data["groupings"]] == [
        "model.cell, trainer.gradient_clip_val (every setting that varies)", "model.cell", "trainer.gradient_clip_val"]
    assert len(data["groupings"]) <= MAX_GROUPINGS
    # the default table is rnnbench table's: one row per cell and threshold, test/mse mean ± std (n) over seeds
    table = data["groupings"][0]["table"]
    assert table["columns"][:3] == ["model.cell", "trainer.gradient_clip_val", "test/mse"]
    rows = {(row[0]["t"], row[1]["t"]): row for row in table["rows"]}
    assert list(rows) == [("gru", "null"), ("gru", "0.5"), ("rnn", "null"), ("rnn", "0.5")]
    for (cell, clip), row in rows.items():
        expected = mean_of(sweep, "test/mse", cell=cell, clip=None if clip == "null" else 0.5)
        assert row[2]["v"] == pytest.approx(expected, rel=1e-12) and row[2]["t"].endswith("(2)")
        assert [c["t"] for c in row[-3:]] == ["2/2", "0/2", "0/2"]
    _, markdown = table_text(sweep)
    for row in table["rows"]:
        assert "| " + " | ".join(c["t"] for c in row) + " |" in markdown
    assert {f["kind"] for f in data["groupings"][0]["figures"]} == KINDS
    # the comparison, as rnnbench table --compare computes it
    (comparison,) = data["comparisons"]
    assert comparison["title"] == "model.cell=gru against model.cell=rnn"
    assert comparison["table"]["columns"][-1] == "verdict"
    # runs: every record and log linked relative to the page
    assert len(data["runs"]["rows"]) == 8
    for run in data["runs"]["rows"]:
        assert run["status"] == "completed" and run["steps"] == 30
        assert (page.parent / data["link_base"] / run["record"]).is_file()
        assert (page.parent / data["link_base"] / run["log"]).is_file()
    provenance = data["provenance"]
    assert provenance["commands"] == ["rnnbench train -m " + " ".join(SWEEP[2:])]
    assert provenance["versions"]["torch"].endswith("(8 runs)") and provenance["dates"]["first start"]
    assert build_again(sweep, page) == text  # deterministic: the same records give the same bytes


def table_text(sweep: Path) -> tuple[int, str]:
    from rnnbench.report.records import load_runs
    from rnnbench.report.table import build_table

    return 0, build_table(load_runs([sweep])).render("markdown")


def build_again(sweep: Path, page: Path) -> str:
    again = page.with_name("again.html")
    assert main(["report", str(sweep), "-o", str(again), "--compare", "model.cell=gru", "model.cell=rnn"]) == 0
    text = again.read_text()
    again.unlink()
    return text


@pytest.mark.slow  # its fixture trains a sweep in a subprocess
def test_report_errors_are_one_line(sweep, tmp_path, capsys):
    for arguments, message in (
            (["report", str(tmp_path / "missing")], f"{tmp_path / 'missing'}: no such file or directory"),
            (["report", str(sweep), "-o", str(tmp_path)], f"-o {tmp_path} is not allowed: it is a dir"),
            (["report", str(sweep), "--by", "model.cel"], "--by model.cel: no run has this setting"),
            (["report", str(sweep), "--compare", "model.cell=gru", "model.cell=tcn"],
             "--compare model.cell=tcn: no run has it")):
        assert main(arguments) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"rnnbench: error: {message}") and len(err.strip().splitlines()) == 1


# --- in a real browser -------------------------------------------------------------------------------------------

def chromium() -> str | None:
    return next((found for name in ("chromium", "chromium-browser", "google-chrome")
                 if (found := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser():
    executable = chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("CI has no chromium: .ci/run installs it with apt-get")
        pytest.skip("no headless Chromium here (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # the network is off three ways: an offline context, a proxy that refuses, no host resolves
        launched = playwright.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"])
        yield launched
        launched.close()


@pytest.mark.slow  # its fixture trains a sweep in a subprocess
def test_the_page_renders_offline_in_chromium(browser, page, sweep, tmp_path):
    context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1100})
    tab = context.new_page()
    problems, requests = [], []
    tab.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning")
           else None)
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on("request", lambda request: requests.append(request.url))
    tab.goto(page.as_uri())
    tab.wait_for_selector("#report[data-ready=true]", timeout=PATIENCE * 1000)
    assert problems == [] and requests == [page.as_uri()]

    # the table's means, as the records give them
    def table_rows() -> list[list[str]]:
        return tab.eval_on_selector_all("#results tbody tr", "rows => rows.map(r => Array.from(r.cells, "
                                        "c => c.dataset.sort))")
    rows = table_rows()
    assert [row[:2] for row in rows] == [["gru", "null"], ["gru", "0.5"], ["rnn", "null"], ["rnn", "0.5"]]
    for row in rows:
        clip = None if row[1] == "null" else 0.5
        assert float(row[2]) == pytest.approx(mean_of(sweep, "test/mse", cell=row[0], clip=clip), rel=1e-12)
    # sorting by test/mse orders the rows by their means
    tab.click("#results thead th:nth-child(3)")
    means = [float(row[2]) for row in table_rows()]
    assert means == sorted(means)

    # every figure is drawn, with one line per row
    kinds = tab.eval_on_selector_all("figure.chart", "figures => figures.map(f => f.dataset.kind)")
    assert set(kinds) == KINDS
    labels = "f => Array.from(f.querySelectorAll('path.series'), p => p.dataset.label)"
    curves = tab.eval_on_selector("figure[data-kind=curves]", labels)
    assert {label.split(" (n=")[0] for label in curves} == {"gru, null", "gru, 0.5", "rnn, null", "rnn, 0.5"}

    # hiding a row removes its lines; showing it brings them back
    legend = "figure[data-kind=curves] .legend button[data-row='0']"
    tab.click(legend)
    assert not any(label.startswith("gru, null") for label in tab.eval_on_selector("figure[data-kind=curves]", labels))
    tab.click(legend)
    assert len(tab.eval_on_selector("figure[data-kind=curves]", labels)) == len(curves)
    tab.click("figure[data-kind=curves] .legend button.all >> text=hide all")
    assert tab.eval_on_selector("figure[data-kind=curves]", labels) == []
    tab.click("figure[data-kind=curves] .legend button.all >> text=show all")
    assert len(tab.eval_on_selector("figure[data-kind=curves]", labels)) == len(curves)

    # hovering a line's point shows its row, step and value
    chart = tab.locator("figure[data-kind=curves] svg").nth(1)  # validation loss
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    first_point = re.match(r"M([\d.]+),([\d.]+)", chart.locator("path.series").first.get_attribute("d"))
    tab.mouse.move(box["x"] + float(first_point[1]), box["y"] + float(first_point[2]))
    tip = tab.locator(".tooltip")
    assert tip.is_visible() and re.search(r"\(n=2\) — optimizer step 15: \d", tip.inner_text())

    # choosing the grouping changes the table and what is drawn: by cell, two rows and two lines per panel
    tab.select_option("#grouping", label="model.cell")
    assert [row[0] for row in table_rows()] == ["gru", "rnn"]
    by_cell = tab.eval_on_selector("figure[data-kind=curves]", labels)
    assert {label.split(" (n=")[0] for label in by_cell} == {"gru", "rnn"}
    assert tab.get_attribute("#report", "data-grouping") == "model.cell"
    assert problems == [] and requests == [page.as_uri()]

    tab.select_option("#grouping", index=0)
    shot = tmp_path / "report.png"
    tab.screenshot(path=str(shot), full_page=True)
    context.close()
    assert_screenshot_has_content(shot)


def assert_screenshot_has_content(path: Path) -> None:
    """Not blank: the page's text and the figures' coloured lines are in the picture."""
    import matplotlib.image
    import numpy as np

    image = matplotlib.image.imread(path)[..., :3]
    height, width = image.shape[:2]
    assert width == 1400 and height > 1500  # the whole page, figures below the table
    assert image.std() > 0.05
    dark = (image.max(axis=2) < 0.3).mean()  # text
    assert dark > 0.001
    for color in ((0x1f, 0x77, 0xb4), (0xff, 0x7f, 0x0e)):  # the first two rows' lines
        target = np.asarray(color) / 255
        assert (np.abs(image - target).max(axis=2) < 0.08).sum() > 200, color


COMMITTED = sorted((Path(__file__).resolve().parent.parent / "results").glob("*/report.html"))


@pytest.mark.parametrize("committed", COMMITTED, ids=[p.parent.name for p in COMMITTED])
def test_every_committed_page_renders_offline(browser, committed):
    """The committed pages (diverged runs, several layers and directions, comparisons) draw without an error and
    every figure of their data, offline."""
    data = embedded_data(committed.read_text())
    context = browser.new_context(offline=True)
    tab = context.new_page()
    problems, requests = [], []
    tab.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.on("request", lambda request: requests.append(request.url))
    tab.goto(committed.as_uri())
    tab.wait_for_selector("#report[data-ready=true]", timeout=PATIENCE * 1000)
    figures = tab.eval_on_selector_all("figure.chart", "figures => figures.map(f => f.querySelectorAll('svg').length)")
    assert figures == [len(f["panels"]) for f in data["groupings"][0]["figures"]]
    assert tab.eval_on_selector_all("#runs tbody tr", "rows => rows.length") == len(data["runs"]["rows"])
    context.close()
    assert problems == [] and requests == [committed.as_uri()]


@pytest.mark.slow  # its fixture trains a sweep in a subprocess
def test_the_page_data_cannot_become_markup_or_script(browser, sweep, tmp_path):
    """A config string that opens a comment and a script, a run dir named like a javascript: link, and the
    published text a spreadsheet would run as a formula: the page renders all of it as text, runs nothing else,
    and the CSV export defuses the formula."""
    hostile = tmp_path / "hostile"
    shutil.copytree(sweep, hostile)
    job = next(p.parent for p in sorted(find_records(hostile)))
    record = json.loads((job / "result.json").read_text())
    record["error"] = "<!--<script>window.pwned = 1</script>"
    (job / "result.json").write_text(json.dumps(record))
    job.rename(job.with_name("javascript:window.pwned=2"))
    out = tmp_path / "page.html"
    assert main(["report", str(hostile), "-o", str(out)]) == 0
    text = out.read_text()
    assert "<!--<script>" not in text and "script-src 'unsafe-inline'" not in text
    assert any("<!--<script>" in row["error"] for row in embedded_data(text)["runs"]["rows"])

    context = browser.new_context(offline=True)
    tab = context.new_page()
    dialogs, problems = [], []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.goto(out.as_uri())
    tab.wait_for_selector("#report[data-ready=true]", timeout=PATIENCE * 1000)
    hrefs = tab.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
    assert any("javascript%3Awindow.pwned" in href for href in hrefs)
    assert not any(href.lower().startswith("javascript:") for href in hrefs)
    assert "<!--<script>window.pwned = 1</script>" in tab.inner_text("body")  # shown, as text
    assert tab.evaluate("window.pwned") is None and dialogs == [] and problems == []
    context.close()


def test_a_csv_table_defuses_spreadsheet_formulas():
    from rnnbench.report.table import _spreadsheet_safe

    assert _spreadsheet_safe('=HYPERLINK("http://x","y")') == '\'=HYPERLINK("http://x","y")'
    assert [_spreadsheet_safe(v) for v in ("+1+1", "@SUM(A1)", "-x", "\tcmd")] == ["'+1+1", "'@SUM(A1)", "'-x", "'\tcmd"]
    assert [_spreadsheet_safe(v) for v in ("-1.5", "+3", "gru", 0.25, None)] == ["-1.5", "+3", "gru", 0.25, None]


def lstm_variants_page(tmp_path: Path) -> Path:
    """results/lstm_variants' page, as its README makes it: 122 runs of three code versions, 32 one-run search rows,
    a wide table, a comparison."""
    import shlex

    from conftest import REPO

    readme = (REPO / "results" / "lstm_variants" / "README.md").read_text()
    (line,) = re.findall(r"^rnnbench report .* -o \S+$", readme, flags=re.MULTILINE)
    arguments = [a if not a.startswith("results/") else str(REPO / a) for a in shlex.split(line)[1:]]
    arguments[arguments.index("-o") + 1] = str(tmp_path / "report.html")
    assert main(arguments) == 0
    return tmp_path / "report.html"


def test_the_page_opens_on_its_answer(browser, tmp_path):
    """At 1400 px: the table and the comparisons first, then figures, runs, provenance; a wide table scrolls in its
    own box whose scroll bar is in the window, its long texts wrapped; the code versions a folded grey note, not a
    red warning; the one-run search rows and the 122 runs folded."""
    page = lstm_variants_page(tmp_path)
    context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.goto(page.as_uri())
    tab.wait_for_selector("#report[data-ready=true]", timeout=PATIENCE * 1000)
    assert tab.eval_on_selector_all("main > section", "s => s.map(x => x.id)") == [
        "results", "comparisons", "figures", "runs", "provenance"]
    assert tab.evaluate("document.documentElement.scrollWidth") <= 1400  # the page itself never scrolls sideways
    boxes = tab.eval_on_selector_all("table.sortable", """tables => tables.map(t => {
        const box = t.parentElement, r = box.getBoundingClientRect();
        return {id: t.id, overflow: getComputedStyle(box).overflowX, wide: box.scrollWidth > box.clientWidth,
                height: r.height, width: r.width}; })""")
    assert {b["id"] for b in boxes} >= {"results", "results-one-run", "comparison-0", "runs-table"}
    for box in boxes:
        assert box["overflow"] == "auto" and box["width"] <= 1400 - 2 * 24, box
    shown = [b for b in boxes if b["id"] in ("results", "comparison-0")]
    assert all(b["wide"] and 0 < b["height"] <= 0.85 * 1000 + 1 for b in shown), shown  # its scroll bar in view
    verdicts = tab.eval_on_selector_all("#comparison-0 td div.prose", """cells => cells.map(c => ({
        text: c.textContent, width: c.getBoundingClientRect().width, height: c.getBoundingClientRect().height,
        fits: c.scrollWidth <= c.clientWidth + 1}))""")
    long = [v for v in verdicts if len(v["text"]) > 100]
    assert long and all(v["fits"] and v["width"] <= 32 * 13 + 1 and v["height"] > 20 for v in long)  # wrapped
    # code versions: no red line says so; a closed grey note does
    assert not any("code version" in w for w in tab.eval_on_selector_all(
        "li.warning", "items => items.map(i => i.textContent)"))
    notes = tab.eval_on_selector_all("#results details.versions", "d => d.map(x => [x.open, x.textContent])")
    assert notes and not notes[0][0] and "runs differ in code version: git commit" in notes[0][1]
    assert tab.eval_on_selector("#results details.versions", "d => getComputedStyle(d).color") != "rgb(160, 64, 11)"
    # the first table's rows have seeds to average; the one-run rows and the long list of runs wait folded
    assert "1/1" not in tab.eval_on_selector_all("#results tbody tr", "rows => rows.map(r => r.textContent)")[0]
    assert tab.eval_on_selector("table#results", "t => t.tBodies[0].rows.length") == 18
    assert tab.eval_on_selector("details.folded", "d => d.open") is False
    assert tab.eval_on_selector("details.runs", "d => d.open") is False
    assert tab.eval_on_selector_all("#runs tbody tr", "rows => rows.length") == 122
    provenance = tab.inner_text("dl.provenance")
    assert "torch: " in provenance and "numpy: " in provenance  # the package versions, beside the folded note
    # figures: log axes at round decades; the rows in as many colours as the palette has
    from rnnbench.report.plot import DECADE_STEPS

    panels = tab.eval_on_selector_all("figure[data-kind=gradient-flow] svg", "svgs => svgs.map(s => Array.from("
                                      "s.querySelectorAll('text'), t => t.textContent).filter(t => /^1e-?\\d+$/.test(t)))")
    assert len(panels) >= 2
    for labels in panels:  # 1e-20, 1e-15, ...: every k-th decade at multiples of k
        exponents = [int(label[2:]) for label in labels]
        step = abs(exponents[1] - exponents[0])
        assert step in DECADE_STEPS and all(e % step == 0 for e in exponents), labels
    tab.select_option("#grouping", label="data, data.seq_len, lstm_variant")
    colours = tab.eval_on_selector("figure[data-kind=curves]", "f => Array.from(f.querySelectorAll("
                                   "'path.series'), p => [p.dataset.row, p.getAttribute('stroke')])")
    rows = {row for row, _ in colours}
    assert len(rows) == 19 and len({colour for _, colour in colours}) == 19
    context.close()
