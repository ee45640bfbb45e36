// rnnbench report: draws the page from its embedded data (rnnbench.report.html). No library, no network.
"use strict";
(function () {
  var SVG_NS = "http://www.w3.org/2000/svg";
  var DASHES = { solid: null, dashed: "6,4", dotted: "2,3" };
  var PANEL = { width: 430, height: 300, left: 70, right: 14, top: 26, bottom: 46 };
  var PROSE_CHARACTERS = 40;  // a text cell longer than this (a published verdict, an error) keeps a readable width
  var DECADE_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500];  // decades between labelled log ticks
  var RUNS_SHOWN = 25;  // a longer list of runs starts folded
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var COLORS = data.palette;  // rnnbench.report.figures.PALETTE: the figures' colours, as rnnbench plot draws them
  var root = document.getElementById("report");
  var tooltip;

  // --- elements -------------------------------------------------------------------------------------------------
  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    setAll(node, attributes);
    append(node, children);
    return node;
  }
  function svg(tag, attributes, children) {
    var node = document.createElementNS(SVG_NS, tag);
    setAll(node, attributes);
    append(node, children);
    return node;
  }
  function setAll(node, attributes) {
    Object.keys(attributes || {}).forEach(function (key) {
      var value = attributes[key];
      if (value === null || value === undefined) return;
      if (key === "text") node.textContent = value;
      else if (key === "onclick" || key === "onchange") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    });
  }
  function append(node, children) {
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
  }
  // Warnings (red), notes, and differing code versions as a folded neutral note (provenance, not a fault).
  function notes(warnings, lines, versions) {
    var items = (warnings || []).map(function (w) { return el("li", { "class": "warning", text: "Warning: " + w }); })
      .concat((lines || []).map(function (n) { return el("li", { text: n }); }));
    var list = items.length ? el("ul", { "class": "notes" }, items) : null;
    if (!versions) return list;
    return el("div", {}, [list, el("details", { "class": "versions" }, [
      el("summary", { text: "Note: " + versions.summary }),
      el("ul", { "class": "notes" }, versions.lines.map(function (n) { return el("li", { text: n }); }))])]);
  }
  // A column name that may break after its dots, slashes and underscores (gradients.vanishing_log10_first).
  function breakable(name) {
    var parts = String(name).split(/(?<=[./_])/), nodes = [];
    parts.forEach(function (part, i) { nodes.push(part); if (i < parts.length - 1) nodes.push(el("wbr")); });
    return nodes;
  }

  // --- numbers --------------------------------------------------------------------------------------------------
  function format(value) {
    if (value === null || value === undefined) return "–";
    var magnitude = Math.abs(value);
    if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6)) return value.toExponential(3);
    return String(Number(value.toPrecision(4)));
  }
  function finite(value) { return value !== null && value !== undefined && isFinite(value); }

  // --- sortable tables ------------------------------------------------------------------------------------------
  // columns: names; numeric: per column; rows: arrays of cells {t: text, v: sort value, href, cls, title}.
  function sortableTable(columns, numeric, rows, id) {
    var body = el("tbody");
    var headers = columns.map(function (name, index) {
      return el("th", { scope: "col", title: "sort by " + name, onclick: function () { sortBy(index); } },
                [el("div", { "class": "head" }, breakable(name))]);
    });
    var table = el("table", { "class": "sortable", id: id }, [el("thead", {}, [el("tr", {}, headers)]), body]);
    var order = rows.slice();
    var state = { column: -1, ascending: true };
    function fill() {
      body.textContent = "";
      order.forEach(function (row) {
        body.appendChild(el("tr", {}, row.map(function (cell, index) {
          var content = cell.href ? el("a", { href: cell.href, text: cell.t }) : cell.t;
          var prose = !numeric[index] && String(cell.t).length > PROSE_CHARACTERS;  // a published verdict: wrap it
          return el("td", { "class": (numeric[index] ? "num " : "") + (prose ? "prose " : "") + (cell.cls || ""),
                            title: cell.title, "data-sort": cell.v === null ? "" : String(cell.v) },
                    [prose ? el("div", { "class": "prose" }, [content]) : content]);
        })));
      });
    }
    function compare(a, b) {
      if (a === null || a === undefined) return b === null || b === undefined ? 0 : 1;
      if (b === null || b === undefined) return -1;
      if (typeof a === "number" && typeof b === "number") return a - b;
      return String(a).localeCompare(String(b), undefined, { numeric: true });
    }
    function sortBy(index) {
      state.ascending = state.column === index ? !state.ascending : true;
      state.column = index;
      order.sort(function (x, y) {
        var c = compare(x[index].v, y[index].v);
        var nullish = x[index].v === null || y[index].v === null;
        return nullish || state.ascending ? c : -c;  // blanks stay last either way
      });
      headers.forEach(function (h, i) {
        if (i === index) h.setAttribute("aria-sort", state.ascending ? "ascending" : "descending");
        else h.removeAttribute("aria-sort");
      });
      fill();
    }
    fill();
    return el("div", { "class": "scroll" }, [table]);
  }

  // --- charts ---------------------------------------------------------------------------------------------------
  function niceStep(span, count) {
    var raw = span / Math.max(1, count), power = Math.pow(10, Math.floor(Math.log10(raw))), unit = raw / power;
    return (unit < 1.5 ? 1 : unit < 3 ? 2 : unit < 7 ? 5 : 10) * power;
  }
  function linearTicks(low, high, count) {
    var step = niceStep(high - low, count), ticks = [];
    for (var t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
    return ticks;
  }
  function extent(panel, hidden) {
    var xs = [], ys = [];
    panel.series.forEach(function (s) {
      if (hidden[s.row]) return;
      s.x.forEach(function (x, i) {
        [s.y[i], s.low ? s.low[i] : null, s.high ? s.high[i] : null].forEach(function (y) {
          if (finite(y) && (!panel.log_y || y > 0)) { xs.push(x); ys.push(panel.log_y ? Math.log10(y) : y); }
        });
      });
    });
    panel.reference_lines.forEach(function (line) {
      if (!panel.log_y || line[0] > 0) ys.push(panel.log_y ? Math.log10(line[0]) : line[0]);
    });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (!xs.length) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
    if (panel.categories) { x0 = -0.5; x1 = panel.categories.length - 0.5; }
    if (panel.y_range && !panel.log_y) { y0 = panel.y_range[0]; y1 = panel.y_range[1]; }
    if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
    if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
    var pad = panel.y_range ? 0 : (y1 - y0) * 0.05;
    return { x0: x0, x1: x1, y0: y0 - pad, y1: y1 + pad };
  }
  // Six marker shapes: circle, square, diamond, triangle up, triangle down, plus; odd rows hollow.
  var SHAPES = { 2: [[0, -1.3], [1.1, 0], [0, 1.3], [-1.1, 0]], 3: [[0, -1.3], [1.2, 1], [-1.2, 1]],
                 4: [[0, 1.3], [1.2, -1], [-1.2, -1]],
                 5: [[-1.2, -0.4], [-0.4, -0.4], [-0.4, -1.2], [0.4, -1.2], [0.4, -0.4], [1.2, -0.4], [1.2, 0.4],
                     [0.4, 0.4], [0.4, 1.2], [-0.4, 1.2], [-0.4, 0.4], [-1.2, 0.4]] };
  function marker(shape, x, y, color, hollow) {
    var r = 3.2, kind = shape % 6, common = { fill: hollow ? "#fff" : color, stroke: color, "stroke-width": 1.2 };
    if (kind === 0) return svg("circle", Object.assign({ cx: x, cy: y, r: r }, common));
    if (kind === 1) return svg("rect", Object.assign({ x: x - r, y: y - r, width: 2 * r, height: 2 * r }, common));
    return svg("polygon", Object.assign({
      points: SHAPES[kind].map(function (p) { return (x + p[0] * r) + "," + (y + p[1] * r); }).join(" ")
    }, common));
  }
  function drawPanel(figure, panel, hidden) {
    var P = PANEL, w = P.width - P.left - P.right, h = P.height - P.top - P.bottom, box = extent(panel, hidden);
    var sx = function (x) { return P.left + (x - box.x0) / (box.x1 - box.x0) * w; };
    var sy = function (y) { return P.top + h - ((panel.log_y ? Math.log10(y) : y) - box.y0) / (box.y1 - box.y0) * h; };
    var chart = svg("svg", { width: P.width, height: P.height, viewBox: "0 0 " + P.width + " " + P.height,
                             role: "img", "aria-label": figure.title + ": " + panel.title, "data-panel": panel.title });
    chart.appendChild(svg("text", { x: P.width / 2, y: 16, "text-anchor": "middle",
                                    "font-size": fitting(panel.title, P.width - 8, 13), "font-weight": 600,
                                    text: panel.title }));
    // axes, grid, ticks
    var yTicks = panel.log_y ? logTicks(box.y0, box.y1) : linearTicks(box.y0, box.y1, 6);
    yTicks.forEach(function (t) {
      var y = P.top + h - (t - box.y0) / (box.y1 - box.y0) * h;
      chart.appendChild(svg("line", { x1: P.left, x2: P.left + w, y1: y, y2: y, stroke: "#e6e8eb" }));
      chart.appendChild(svg("text", { x: P.left - 5, y: y + 4, "text-anchor": "end", "font-size": 11,
                                      text: panel.log_y ? "1e" + t : format(t) }));
    });
    var xTicks = panel.categories ? panel.categories.map(function (_, i) { return i; }) : linearTicks(box.x0, box.x1, 6);
    xTicks.forEach(function (t) {
      var x = sx(t);
      chart.appendChild(svg("line", { x1: x, x2: x, y1: P.top, y2: P.top + h, stroke: "#f0f1f3" }));
      chart.appendChild(svg("text", { x: x, y: P.top + h + 15, "text-anchor": "middle", "font-size": 11,
                                      text: panel.categories ? panel.categories[t] : format(t) }));
    });
    chart.appendChild(svg("rect", { x: P.left, y: P.top, width: w, height: h, fill: "none", stroke: "#8a9099" }));
    chart.appendChild(svg("text", { x: P.width / 2, y: P.height - 8, "text-anchor": "middle",
                                    "font-size": fitting(panel.xlabel, P.width - 8, 12), text: panel.xlabel }));
    chart.appendChild(svg("text", { x: 14, y: P.top + h / 2, "text-anchor": "middle",
                                    "font-size": fitting(panel.ylabel, P.height - 8, 12),
                                    transform: "rotate(-90 14 " + (P.top + h / 2) + ")", text: panel.ylabel }));
    var clip = "clip-" + Math.random().toString(36).slice(2);
    chart.appendChild(svg("clipPath", { id: clip }, [svg("rect", { x: P.left, y: P.top, width: w, height: h })]));
    var plot = svg("g", { "clip-path": "url(#" + clip + ")" });
    chart.appendChild(plot);
    panel.reference_lines.forEach(function (line) {
      if (panel.log_y && line[0] <= 0) return;
      var y = sy(line[0]);
      plot.appendChild(svg("line", { x1: P.left, x2: P.left + w, y1: y, y2: y, stroke: "#666", "stroke-dasharray": "2,3" }));
      plot.appendChild(svg("text", { x: P.left + w - 4, y: y - 4, "text-anchor": "end", "font-size": 10, fill: "#555",
                                     text: line[1] }));
    });
    var rows = [];
    panel.series.forEach(function (s) { if (rows.indexOf(s.row) < 0) rows.push(s.row); });
    var points = [];
    panel.series.forEach(function (s) {
      if (hidden[s.row]) return;
      var color = COLORS[s.row % COLORS.length], valid = function (v) { return finite(v) && (!panel.log_y || v > 0); };
      var dodge = panel.categories ? (rows.indexOf(s.row) - (rows.length - 1) / 2) * Math.min(0.08, 0.6 / rows.length) : 0;
      var X = function (i) { return sx(s.x[i] + dodge); };
      if (s.low && s.high && !panel.categories) {  // band: one polygon per stretch where both bounds are known
        var stretch = [];
        var flush = function () {
          if (stretch.length > 1) {
            var upper = stretch.map(function (i) { return X(i) + "," + sy(s.high[i]); });
            var lower = stretch.slice().reverse().map(function (i) { return X(i) + "," + sy(s.low[i]); });
            plot.appendChild(svg("polygon", { points: upper.concat(lower).join(" "), fill: color, "fill-opacity": 0.13,
                                              stroke: "none", "data-row": s.row }));
          }
          stretch = [];
        };
        s.x.forEach(function (_, i) { if (valid(s.low[i]) && valid(s.high[i])) stretch.push(i); else flush(); });
        flush();
      }
      if (s.low && s.high && panel.categories) {  // bars: min–max at each category
        s.x.forEach(function (_, i) {
          if (valid(s.low[i]) && valid(s.high[i])) {
            plot.appendChild(svg("line", { x1: X(i), x2: X(i), y1: sy(s.low[i]), y2: sy(s.high[i]), stroke: color }));
          }
        });
      }
      var d = "", pen = false;
      s.x.forEach(function (_, i) {
        if (!valid(s.y[i])) { pen = false; return; }
        d += (pen ? "L" : "M") + X(i).toFixed(1) + "," + sy(s.y[i]).toFixed(1);
        pen = true;
        points.push({ x: X(i), y: sy(s.y[i]), series: s, index: i });
      });
      plot.appendChild(svg("path", { d: d, fill: "none", stroke: color, "stroke-width": s.style === "dotted" ? 1.2 : 1.8,
                                     "stroke-dasharray": DASHES[s.style], "data-row": s.row, "data-label": s.label,
                                     "class": "series" }));
      var n = s.x.length, step = panel.categories || n <= 12 ? 1 : Math.max(1, Math.floor(n / 8));
      var offset = step > 1 ? (s.row * Math.max(1, Math.floor(step / 5))) % step : 0;
      var shape = s.marker === null || s.marker === undefined ? s.row : s.marker;
      s.x.forEach(function (_, i) {
        var last = s.style === "dotted" && i === n - 1;
        if (valid(s.y[i]) && (s.style === "dotted" ? last : (i - offset) % step === 0)) {
          plot.appendChild(last ? svg("text", { x: X(i), y: sy(s.y[i]) + 4, "text-anchor": "middle", fill: color,
                                                "font-size": 12, text: "×" })
                                : marker(shape, X(i), sy(s.y[i]), color, s.row % 2 === 1));
        }
      });
    });
    if (!points.length) {
      chart.appendChild(svg("text", { x: P.left + w / 2, y: P.top + h / 2, "text-anchor": "middle", "font-size": 12,
                                      fill: "#777", text: panel.empty || "nothing to show" }));
    }
    hover(chart, points, panel);
    return chart;
  }
  // A font size (px) at which ``text`` fits in ``room`` pixels (about 0.58 em a character), at most ``largest``.
  function fitting(text, room, largest) {
    return Math.max(7, Math.min(largest, room / (0.58 * Math.max(1, String(text).length)))).toFixed(1);
  }
  // Exponents to label: every k-th decade at multiples of k, the smallest k of DECADE_STEPS giving at most 7 ticks
  // (1e-20, 1e-40, ..., never 1e-31); as rnnbench.report.plot.decade_ticks.
  function logTicks(low, high) {
    var first = Math.ceil(low), last = Math.floor(high), ticks = [];
    for (var k = 0; k < DECADE_STEPS.length; k++) {
      var step = DECADE_STEPS[k];
      ticks = [];
      for (var t = Math.ceil(first / step) * step; t <= last; t += step) ticks.push(t === 0 ? 0 : t);
      if (ticks.length <= 7) break;
    }
    if (!ticks.length) ticks.push(Math.round((low + high) / 2));
    return ticks;
  }
  function hover(chart, points, panel) {
    var ring = svg("circle", { r: 5, fill: "none", stroke: "#000", "stroke-width": 1.5, visibility: "hidden" });
    chart.appendChild(ring);
    chart.addEventListener("mousemove", function (event) {
      var bounds = chart.getBoundingClientRect(), scale = PANEL.width / bounds.width;
      var mx = (event.clientX - bounds.left) * scale, my = (event.clientY - bounds.top) * scale, best = null, distance = 400;
      points.forEach(function (p) {
        var d = (p.x - mx) * (p.x - mx) + (p.y - my) * (p.y - my);
        if (d < distance) { distance = d; best = p; }
      });
      if (!best) { ring.setAttribute("visibility", "hidden"); tooltip.style.display = "none"; return; }
      var s = best.series, i = best.index, x = s.x[i];
      ring.setAttribute("cx", best.x); ring.setAttribute("cy", best.y); ring.setAttribute("visibility", "visible");
      var band = s.low && s.high && finite(s.low[i]) ? " [" + format(s.low[i]) + ", " + format(s.high[i]) + "]" : "";
      tooltip.textContent = s.label + " — " + panel.xlabel.split(" (")[0] + " " +
        (panel.categories ? panel.categories[x] : format(x)) + ": " + format(s.y[i]) + band;
      tooltip.style.display = "block";
      tooltip.style.left = (event.clientX + 14) + "px";
      tooltip.style.top = (event.clientY + 10) + "px";
    });
    chart.addEventListener("mouseleave", function () {
      ring.setAttribute("visibility", "hidden"); tooltip.style.display = "none";
    });
  }
  function drawFigure(figure) {
    var hidden = {}, panels = el("div", { "class": "panels" });
    var buttons = figure.rows.map(function (label, row) {
      var button = el("button", { type: "button", "data-row": row, title: "show or hide " + label,
                                  onclick: function () {
                                    hidden[row] = !hidden[row];
                                    button.className = hidden[row] ? "off" : "";
                                    redraw();
                                  } },
                      [el("span", { "class": "swatch", style: "background:" + COLORS[row % COLORS.length] }), label]);
      return button;
    });
    function hideEvery(hide) {
      figure.rows.forEach(function (_, row) { hidden[row] = hide; buttons[row].className = hide ? "off" : ""; });
      redraw();
    }
    var everyRow = [el("button", { type: "button", "class": "all", onclick: function () { hideEvery(false); },
                                   text: "show all" }),
                    el("button", { type: "button", "class": "all", onclick: function () { hideEvery(true); },
                                   text: "hide all" })];
    function redraw() {
      panels.textContent = "";
      figure.panels.forEach(function (panel) { panels.appendChild(drawPanel(figure, panel, hidden)); });
    }
    redraw();
    return el("figure", { "class": "chart", "data-kind": figure.kind, id: "figure-" + slug(figure.title) }, [
      el("h3", { text: figure.title }),
      el("div", { "class": "legend", "aria-label": figure.legend_title },
         [el("span", { text: figure.legend_title + ":" })].concat(buttons, figure.rows.length > 2 ? everyRow : [])),
      panels, notes([], figure.notes)]);
  }
  function slug(text) { return text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, ""); }

  // --- sections -------------------------------------------------------------------------------------------------
  // The table; its rows of one run each (a search, a pilot) folded below the others; its notes.
  function tableOf(table, id) {
    var folded = table.folded || [];
    var kept = table.rows.filter(function (_, i) { return folded.indexOf(i) < 0; });
    var rest = folded.map(function (i) { return table.rows[i]; });
    return el("div", {}, [
      sortableTable(table.columns, table.numeric, kept, id),
      rest.length ? el("details", { "class": "folded" }, [
        el("summary", { text: rest.length + " more row(s) of one run each (a search or a pilot: no seeds to average)" }),
        sortableTable(table.columns, table.numeric, rest, id + "-one-run")]) : null,
      notes(table.warnings, table.notes, table.code_versions)]);
  }
  function renderGrouping(index) {
    var grouping = data.groupings[index];
    root.setAttribute("data-grouping", grouping.name);
    var tableBox = document.getElementById("results-table"), figureBox = document.getElementById("figure-list");
    tableBox.textContent = "";
    tableBox.appendChild(tableOf(grouping.table, "results"));
    figureBox.textContent = "";
    if (!grouping.figures.length) figureBox.appendChild(el("p", { text: "The records hold nothing to draw." }));
    grouping.figures.forEach(function (figure) { figureBox.appendChild(drawFigure(figure)); });
  }
  function runsTable() {
    var runs = data.runs, base = data.link_base === "." ? "" : data.link_base + "/";
    var numeric = runs.columns.map(function (c) { return c === "steps" || c === "wall time (s)"; });
    var rows = runs.rows.map(function (run) {
      var status = run.status + (run.diverged_at_step !== null && run.diverged_at_step !== undefined
        ? " at step " + run.diverged_at_step : "");
      return [{ t: run.dir, v: run.dir, href: base + run.record, title: "result.json" }]
        .concat(run.values.map(function (v) { return { t: v, v: v }; }))
        .concat([{ t: run.seed, v: run.seed }, { t: status, v: run.status, cls: "status-" + run.status },
                 { t: run.error, v: run.error }, { t: run.steps === null ? "" : String(run.steps), v: run.steps },
                 { t: run.wall_seconds === null ? "" : String(run.wall_seconds), v: run.wall_seconds }]);
    });
    runs.rows.forEach(function (run, i) {
      rows[i].push({ t: "result.json", v: null, href: base + run.record });
      rows[i].push(run.log ? { t: "log", v: null, href: base + run.log } : { t: "", v: null });
    });
    var table = sortableTable(runs.columns.concat(["record", "log"]), numeric.concat([false, false]), rows, "runs-table");
    if (rows.length <= RUNS_SHOWN) return table;
    return el("details", { "class": "runs" }, [el("summary", { text: "show the " + rows.length + " runs" }), table]);
  }
  function provenance() {
    var p = data.provenance, items = [];
    function entry(term, values) {
      items.push(el("dt", { text: term }));
      values.forEach(function (v) { items.push(el("dd", {}, [v])); });
    }
    entry("commands", p.commands.map(function (c) { return el("code", { text: c }); }));
    entry("git commit", [p.commits]);
    entry("package versions", Object.keys(p.versions).map(function (k) { return k + ": " + p.versions[k]; }));
    entry("machine", ["device: " + p.machine.device, "torch threads: " + p.machine.threads]);
    entry("dates (UTC)", ["first start: " + p.dates["first start"], "last finish: " + p.dates["last finish"]]);
    return el("div", {}, [el("dl", { "class": "provenance" }, items),
                          p.warnings.length || p.code_versions ? notes(p.warnings, [], p.code_versions)
                            : el("p", { text: "Every run ran the same code and package versions." })]);
  }
  function statusLine() {
    var statuses = Object.keys(data.summary.statuses);
    return el("p", { "class": "summary" }, [data.summary.runs + " run(s): "].concat(statuses.map(function (s, i) {
      return el("span", { "class": "status-" + s, text: data.summary.statuses[s] + " " + s +
                                                          (i < statuses.length - 1 ? ", " : "") });
    })));
  }
  // The answer first: the table and the comparisons' verdicts; then the figures; then the runs and provenance.
  function render() {
    tooltip = el("div", { "class": "tooltip", role: "tooltip" });
    document.body.appendChild(tooltip);
    var select = el("select", { id: "grouping", onchange: function () { renderGrouping(Number(select.value)); } },
                    data.groupings.map(function (g, i) { return el("option", { value: i, text: g.name }); }));
    var compared = data.comparisons.length > 0;
    var links = [["results", "table"]].concat(compared ? [["comparisons", "comparisons"]] : [],
                                              [["figures", "figures"], ["runs", "runs"], ["provenance", "provenance"]]);
    append(root, [
      el("h1", { text: data.title }),
      statusLine(),
      el("nav", {}, links.map(function (a) { return el("a", { href: "#" + a[0], text: a[1] }); })),
      el("section", { id: "results" }, [el("h2", { text: "Results" }),
        el("div", { "class": "controls" }, [el("label", { "for": "grouping", text: "Group rows and lines by: " }), select]),
        el("p", { "class": "summary", text: "Each cell: mean ± std (n) over the completed seeds; completed, diverged " +
                  "and failed: fractions of the row's runs. Click a column to sort." }),
        el("div", { id: "results-table" }),
        compared ? null : el("p", { "class": "hint", text: "No comparison asked for: rnnbench report DIR --compare " +
                                                           "KEY=A KEY=B adds one, with its interval and verdict." })]),
      compared ? el("section", { id: "comparisons" }, [el("h2", { text: "Comparisons" })].concat(
        data.comparisons.map(function (c, i) {
          return el("div", {}, [el("h3", { text: c.title }), tableOf(c.table, "comparison-" + i)]);
        }))) : null,
      el("section", { id: "figures" }, [el("h2", { text: "Figures" }),
        el("p", { "class": "summary", text: "Click a legend entry to hide or show its lines; hover for values." }),
        el("div", { id: "figure-list" })]),
      el("section", { id: "runs" }, [el("h2", { text: "Runs" }), runsTable()]),
      el("section", { id: "provenance" }, [el("h2", { text: "Provenance" }), provenance()])]);
    renderGrouping(0);
    root.setAttribute("data-ready", "true");
  }
  try {
    render();
  } catch (error) {
    root.appendChild(el("pre", { text: "rnnbench report: the page failed to draw: " + error }));
    console.error(error);
  }
})();
