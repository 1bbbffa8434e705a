"""report.html: the web view, one self-contained file for people who do not open Excel.

Summary (scope, period, completeness, key figures, findings by severity), two inline SVG charts
drawn here (findings by severity; pass rate per check) and the findings of `tables.findings`,
sortable and filterable in the browser.

Nothing is fetched: the CSS and the script are inline, allowed by their SHA-256 in a
Content-Security-Policy that forbids every other source, and Trusted Types forbid assigning
strings to HTML sinks such as `innerHTML`. Values from Azure are data, never markup: the static
parts pass them through `html.escape`; the findings travel as JSON in a
`<script type="application/json">` block with `<`, `>`, `&`, U+2028 and U+2029 escaped, so no
value can close the element, and the script puts them on the page with `textContent` only.
The page holds what findings.json holds, nothing of the raw rows.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from auditor.results import ScanReport
from auditor.settings import Severity
from reports import tables
from reports.atomic import write_text
from reports.sanitize import visible
from reports.tables import CellValue, Table, iso_utc, scope_text

FILE_NAME = "report.html"

# Columns of `tables.findings` shown in the grid; the others go into each row's "More" details.
GRID_COLUMNS = ("Severity", "Check", "Title", "Status", "Resource name", "Resource group",
                "Owner", "Message")
# Grid columns of short codes that should not wrap.
NOWRAP_COLUMNS = ("Severity", "Check", "Status")
# The filter selects (element id "filter-<name>") and the column each one filters on.
FILTERS = {"severity": "Severity", "status": "Status", "owner": "Owner", "check": "Check"}

SEVERITIES = tuple(sorted(Severity, key=lambda s: -s.rank))  # most severe first
# Fill and text colour per severity, as in the workbook.
SEVERITY_COLOURS = {"critical": ("#c00000", "#ffffff"), "high": ("#ff7c80", "#000000"),
                    "medium": ("#ffd966", "#000000"), "low": ("#bdd7ee", "#000000"),
                    "info": ("#e7e6e6", "#000000")}
STATUS_COLOURS = {"failed": "#b42318", "unknown": "#8a8f98", "error": "#6e3fd1"}

_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                               "\u2028": "\\u2028", "\u2029": "\\u2029"})

STYLE = """
:root { color-scheme: light; --ink: #1d2430; --muted: #5b6473; --line: #d9dee7;
  --panel: #f5f7fa; --accent: #1f4e9a; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; color: var(--ink); background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
h1 { font-size: 24px; margin: 0 0 8px; }
h2 { font-size: 18px; margin: 32px 0 12px; }
h3 { font-size: 15px; margin: 0 0 8px; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0;
  color: var(--muted); }
.facts dt { font-weight: 600; color: var(--ink); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.banner { margin: 20px 0; padding: 12px 16px; border-radius: 6px; border: 2px solid; }
.banner p { margin: 0; }
.banner ul { margin: 8px 0 0; padding-left: 20px; }
.banner.complete { border-color: #1e7e34; background: #e9f6ec; color: #14532d; }
.banner.incomplete { border-color: #c00000; background: #c00000; color: #fff; }
.banner.incomplete strong { font-size: 18px; letter-spacing: .04em; }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; list-style: none; margin: 0; padding: 0; }
.kpis li { min-width: 130px; padding: 12px 16px; background: var(--panel);
  border: 1px solid var(--line); border-radius: 6px; }
.kpis .value { display: block; font-size: 24px; font-weight: 700; }
.kpis .label { color: var(--muted); }
.kpis .alert { border-color: #c00000; }
.kpis .alert .value { color: #c00000; }
.charts { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.chart { padding: 12px 16px; border: 1px solid var(--line); border-radius: 6px; }
.chart svg { display: block; max-width: 100%; height: auto; }
.chart text { font-size: 12px; fill: var(--ink); }
.chart .axis { fill: var(--muted); }
table { border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px;
  border-bottom: 1px solid var(--line); }
th { background: #e8edf5; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
.sev { display: inline-block; min-width: 64px; padding: 1px 8px; border-radius: 10px;
  font-weight: 600; text-align: center; }
""" + "".join(
    f".sev-{name} {{ background: {fill}; color: {text}; }}\n"
    for name, (fill, text) in SEVERITY_COLOURS.items()) + """
.controls { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: end; margin-bottom: 8px; }
.controls label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
.controls input, .controls select, .controls button { font: inherit; padding: 4px 6px;
  color: var(--ink); }
.controls input { width: 260px; }
.controls select { max-width: 260px; }
#findings-counter { font-weight: 600; margin: 8px 0; }
.table-wrap { max-height: 80vh; overflow: auto; border: 1px solid var(--line); }
#findings { width: 100%; }
#findings thead th { position: sticky; top: 0; z-index: 1; white-space: nowrap; }
#findings thead button { all: unset; cursor: pointer; font-weight: 700; }
#findings thead button:focus-visible { outline: 2px solid var(--accent); }
#findings th[aria-sort="ascending"] button::after { content: " \\25B2"; }
#findings th[aria-sort="descending"] button::after { content: " \\25BC"; }
#findings td { max-width: 420px; overflow-wrap: break-word; }
#findings td.nowrap { white-space: nowrap; }
#findings details summary { cursor: pointer; color: var(--accent); }
#findings dl { margin: 6px 0 0; min-width: 320px; }
#findings dt { font-weight: 600; margin-top: 6px; }
#findings dd { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
[hidden] { display: none !important; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media print { .controls, .table-wrap { max-height: none; overflow: visible; }
  .controls { display: none; } }
"""

SCRIPT = """
"use strict";
(() => {
  const data = JSON.parse(document.getElementById("findings-data").textContent);
  const { columns, rows, severities, filters } = data;
  const body = document.getElementById("findings-body");
  const counter = document.getElementById("findings-counter");
  const search = document.getElementById("filter-text");
  const rank = new Map(severities.map((name, i) => [name, i]));
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  // An element holding `value` as text: data never goes through innerHTML.
  function element(tag, value, className) {
    const node = document.createElement(tag);
    node.textContent = value ?? "";
    if (className) node.className = className;
    return node;
  }

  function gridCell(column, value) {
    const td = document.createElement("td");
    if (column.nowrap) td.className = "nowrap";
    if (column.kind === "severity" && rank.has(value)) {
      td.append(element("span", value, "sev sev-" + value));
    } else {
      td.textContent = value ?? "";
    }
    return td;
  }

  function detailsCell(cells) {
    const list = document.createElement("dl");
    columns.forEach((column, i) => {
      const value = cells[i];
      if (column.grid || value === null || value === "") return;
      list.append(element("dt", column.header));
      const dd = element("dd", value);
      if (column.kind === "url" && /^https:\\/\\//.test(value)) {
        const link = element("a", "Open in the Azure portal");
        link.href = value;
        link.rel = "noopener noreferrer";
        link.target = "_blank";
        dd.replaceChildren(link);
      }
      list.append(dd);
    });
    const details = document.createElement("details");
    details.append(element("summary", "More"), list);
    const td = document.createElement("td");
    td.append(details);
    return td;
  }

  const items = rows.map((cells, position) => {
    const tr = document.createElement("tr");
    columns.forEach((column, i) => { if (column.grid) tr.append(gridCell(column, cells[i])); });
    tr.append(detailsCell(cells));
    const haystack = cells.filter((v) => v !== null).join("\\n").toLocaleLowerCase();
    return { cells, position, tr, haystack };
  });
  const fragment = document.createDocumentFragment();
  items.forEach((item) => fragment.append(item.tr));
  body.append(fragment);

  function compareValues(a, b, severity) {
    if (a === b) return 0;
    if (a === null) return 1;
    if (b === null) return -1;
    return severity ? rank.get(a) - rank.get(b) : collator.compare(String(a), String(b));
  }

  // One select per filter, its options the values found, with how many findings have each.
  const selects = Object.entries(filters).map(([name, index]) => {
    const select = document.getElementById("filter-" + name);
    const tally = new Map();
    rows.forEach((cells) => tally.set(cells[index], (tally.get(cells[index]) || 0) + 1));
    const values = [...tally.keys()].sort((a, b) => compareValues(a, b, name === "severity"));
    values.forEach((value, i) => {
      select.append(new Option(`${value ?? "(none)"} (${tally.get(value)})`, String(i)));
    });
    return { select, index, values };
  });

  function applyFilters() {
    const needle = search.value.trim().toLocaleLowerCase();
    const chosen = selects.filter((s) => s.select.value !== "")
      .map((s) => [s.index, s.values[Number(s.select.value)]]);
    let shown = 0;
    for (const item of items) {
      const show = item.haystack.includes(needle)
        && chosen.every(([index, value]) => item.cells[index] === value);
      item.tr.hidden = !show;
      if (show) shown += 1;
    }
    counter.textContent = `${shown} of ${items.length} findings shown`;
  }

  let order = { index: -1, direction: 1 };
  document.querySelectorAll("#findings thead button").forEach((button) => {
    button.addEventListener("click", () => {
      const index = Number(button.dataset.column);
      order = { index, direction: order.index === index ? -order.direction : 1 };
      document.querySelectorAll("#findings thead th").forEach((th) => {
        th.removeAttribute("aria-sort");
      });
      button.parentElement.setAttribute(
        "aria-sort", order.direction > 0 ? "ascending" : "descending");
      const severity = columns[index].kind === "severity";
      const sorted = items.slice().sort((a, b) => order.direction
        * compareValues(a.cells[index], b.cells[index], severity) || a.position - b.position);
      const moved = document.createDocumentFragment();
      sorted.forEach((item) => moved.append(item.tr));
      body.append(moved);
    });
  });

  search.addEventListener("input", applyFilters);
  selects.forEach((s) => s.select.addEventListener("change", applyFilters));
  document.getElementById("filter-reset").addEventListener("click", () => {
    search.value = "";
    selects.forEach((s) => { s.select.value = ""; });
    applyFilters();
  });
  applyFilters();
})();
"""


def _source_hash(text: str) -> str:
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_source_hash(STYLE)}; script-src {_source_hash(SCRIPT)}; "
    "base-uri 'none'; form-action 'none'; require-trusted-types-for 'script'; "
    "trusted-types 'none'"
)


# --- values ------------------------------------------------------------------------------------

def escape(value: object) -> str:
    """`value` as literal HTML text (also inside a quoted attribute), hidden characters shown."""
    return html.escape(visible(str(value)), quote=True)


def script_json(value: Any) -> str:
    """`value` as JSON that can sit inside a script element: no `<`, `>` or `&` in it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_JSON_ESCAPES)


def _json_cell(value: CellValue) -> str | int | float | None:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return visible(value)
    return value


def _percent(value: float | None) -> str:
    """A whole percentage rounded down, so a rate short of 100% never reads as 100%."""
    return "n/a" if value is None else f"{int(value * 100)}%"


def findings_data(report: ScanReport) -> dict[str, Any]:
    """The findings table as the page's script reads it: columns, rows and what to filter on."""
    table: Table = tables.findings(report)
    headers = [c.header for c in table.columns]
    return {
        "columns": [{"header": c.header, "kind": c.kind, "grid": c.header in GRID_COLUMNS,
                     "nowrap": c.header in NOWRAP_COLUMNS}
                    for c in table.columns],
        "rows": [[_json_cell(value) for value in row] for row in table.rows],
        "severities": [s.value for s in SEVERITIES],
        "filters": {name: headers.index(header) for name, header in FILTERS.items()},
    }


# --- page parts --------------------------------------------------------------------------------

def _head(report: ScanReport) -> str:
    title = f"Audit report: Azure Container Apps jobs, {iso_utc(report.info.as_of)}"
    return "\n".join([
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{escape(CONTENT_SECURITY_POLICY)}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
    ])


def _facts(report: ScanReport) -> str:
    info = report.info
    source = info.source if info.source_detail == info.source else (
        f"{info.source} ({info.source_detail})")
    facts = [
        ("Scope", scope_text(info.scope)),
        ("Period", f"scan ran {iso_utc(info.started)} to {iso_utc(info.finished)}, "
                   f"evaluated as of {iso_utc(info.as_of)}"),
        ("Source", source),
        ("Tool", f"auditor {info.tool_version}; scan id {info.id}; "
                 f"settings digest {report.settings.digest()[:12]}"),
    ]
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    return f'<dl class="facts">{items}</dl>'


def _banner(report: ScanReport) -> str:
    if report.complete:
        return ('<div class="banner complete" id="completeness"><p><strong>Complete scan:'
                "</strong> every requested scope was read.</p></div>")
    gaps = "".join(f"<li>{escape(g.scope)} ({escape(g.source)}): {escape(g.reason)}</li>"
                   for g in report.coverage.gaps)
    return ('<div class="banner incomplete" id="completeness" role="alert"><p><strong>'
            "INCOMPLETE SCAN</strong>: the scan could not read everything it was asked to, so "
            "the results below cover only what was read. Missing:</p>"
            f"<ul>{gaps}</ul></div>")


def _kpis(report: ScanReport) -> str:
    figures = tables.counts(report)
    gaps = len(report.coverage.gaps)
    kpis = [
        ("Jobs scanned", str(figures["jobs"]), False),
        ("Checks", str(len(report.checks)), False),
        ("Results", str(figures["results"]), False),
        ("Findings", str(figures["findings"]), False),
        ("Waived", str(figures["waived"]), False),
        ("Pass rate", _percent(tables.pass_rate(report)), False),
        ("Coverage gaps", str(gaps), gaps > 0),
    ]
    items = "".join(
        f'<li class="{"alert" if alert else "figure"}"><span class="value">{escape(value)}'
        f'</span><span class="label">{escape(label)}</span></li>'
        for label, value, alert in kpis)
    return (f'<ul class="kpis" id="kpis">{items}</ul>'
            '<p class="note">Pass rate is passed / (passed + failed). A waived finding is an '
            "accepted risk: it keeps its status and stays in the findings.</p>")


def _severity_table(report: ScanReport) -> str:
    rows = "".join(
        f'<tr><td><span class="sev sev-{s.severity.value}">{escape(s.severity.value)}</span></td>'
        f'<td class="number">{s.failed}</td><td class="number">{s.unknown}</td>'
        f'<td class="number">{s.error}</td><td class="number">{s.total}</td></tr>'
        for s in tables.severity_counts(report))
    return ('<table id="severity-table"><thead><tr><th scope="col">Severity</th>'
            '<th scope="col" class="number">Failed</th><th scope="col" class="number">Unknown</th>'
            '<th scope="col" class="number">Error</th><th scope="col" class="number">Total</th>'
            f"</tr></thead><tbody>{rows}</tbody></table>")


def _svg(name: str, label: str, width: int, height: int, parts: Iterable[str]) -> str:
    return (f'<svg id="{name}" role="img" '
            f'aria-label="{escape(label)}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}"><title>{escape(label)}</title>'
            + "".join(parts) + "</svg>")


def severity_chart(report: ScanReport) -> str:
    """Horizontal stacked bars: findings per severity, split by status, with the total."""
    counts = tables.severity_counts(report)
    label_width, bar_width, row, top = 80, 360, 28, 30
    scale = bar_width / max([c.total for c in counts] + [1])
    parts = []
    for i, (status, colour) in enumerate(STATUS_COLOURS.items()):  # the legend
        legend = label_width + i * 90
        parts.append(f'<rect x="{legend}" y="6" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{legend + 16}" y="16">{status}</text>')
    for i, count in enumerate(counts):
        y = top + i * row
        severity = count.severity.value
        parts.append(f'<text x="0" y="{y + 15}">{escape(severity)}</text>')
        x = float(label_width)
        for status, n in (("failed", count.failed), ("unknown", count.unknown),
                          ("error", count.error)):
            if n:
                width = n * scale
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="20" '
                             f'fill="{STATUS_COLOURS[status]}"><title>{escape(severity)}: '
                             f"{n} {status}</title></rect>")
                x += width
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 15}">{count.total}</text>')
    height = top + len(counts) * row
    return _svg("chart-severity", "Findings by severity", label_width + bar_width + 50, height,
                parts)


def pass_rate_chart(report: ScanReport) -> str:
    """One bar per check: passed / (passed + failed), with the figures beside it."""
    label_width, bar_width, row = 80, 300, 24
    checks = tables.check_counts(report)
    parts = []
    for i, (check, n) in enumerate(checks):
        y = i * row
        decided = n["passed"] + n["failed"]
        rate = n["passed"] / decided if decided else None
        colour = ("#1e7e34" if rate is not None and rate >= 0.9 else
                  "#d98e04" if rate is not None and rate >= 0.5 else "#b42318")
        parts.append(f"<g><title>{escape(check.id)}: {escape(check.title)}</title>"
                     f'<text x="0" y="{y + 15}">{escape(check.id)}</text>'
                     f'<rect x="{label_width}" y="{y + 3}" width="{bar_width}" height="16" '
                     'fill="#e8ebf0"/>')
        if rate is not None:
            parts.append(f'<rect x="{label_width}" y="{y + 3}" width="{rate * bar_width:.1f}" '
                         f'height="16" fill="{colour}"/>')
            text = f"{_percent(rate)} ({n['passed']} of {decided})"
        else:
            text = "n/a (none passed or failed)"
        parts.append(f'<text x="{label_width + bar_width + 8}" y="{y + 15}">{escape(text)}'
                     "</text></g>")
    height = max(len(checks) * row, row)
    return _svg("chart-pass-rate", "Pass rate per check", label_width + bar_width + 190, height,
                parts)


def _findings(report: ScanReport) -> str:
    data = findings_data(report)
    headers = "".join(
        f'<th scope="col"><button type="button" data-column="{i}">{escape(c["header"])}'
        "</button></th>"
        for i, c in enumerate(data["columns"]) if c["grid"])
    selects = "".join(
        f'<label>{escape(FILTERS[name])}<select id="filter-{name}">'
        f'<option value="">All</option></select></label>'
        for name in FILTERS)
    empty = "" if data["rows"] else "<p>No findings.</p>"
    return "\n".join([
        '<section id="findings-section"><h2>Findings</h2>',
        empty,
        '<div class="controls"><label>Search<input id="filter-text" type="search" '
        'placeholder="job, check, message, evidence…" autocomplete="off"></label>'
        f'{selects}<button type="button" id="filter-reset">Clear filters</button></div>',
        '<p id="findings-counter" aria-live="polite"></p>',
        "<noscript><p>Sorting and filtering need JavaScript; findings.json and report.xlsx "
        "hold the same findings.</p></noscript>",
        '<div class="table-wrap"><table id="findings"><thead><tr>'
        f'{headers}<th scope="col">Details</th></tr></thead>'
        '<tbody id="findings-body"></tbody></table></div>',
        f'<script type="application/json" id="findings-data">{script_json(data)}</script>',
        "</section>",
    ])


def render(report: ScanReport) -> str:
    info = report.info
    body = "\n".join([
        "<body>",
        "<header><h1>Azure Container Apps jobs: audit report</h1>",
        _facts(report),
        "</header>",
        _banner(report),
        '<section id="summary"><h2>Key figures</h2>',
        _kpis(report),
        "</section>",
        '<section id="charts"><h2>Charts</h2><div class="charts">',
        f'<div class="chart"><h3>Findings by severity</h3>{severity_chart(report)}'
        f"{_severity_table(report)}</div>",
        f'<div class="chart"><h3>Pass rate per check</h3>{pass_rate_chart(report)}</div>',
        "</div></section>",
        _findings(report),
        f"<footer>auditor {escape(info.tool_version)}; scan {escape(info.id)}. The same "
        "findings are in findings.json and report.xlsx.</footer>",
        f"<script>{SCRIPT}</script>",
        "</body>",
    ])
    return f'<!DOCTYPE html>\n<html lang="en">\n{_head(report)}\n{body}\n</html>\n'


def write_html(report: ScanReport, folder: Path) -> Path:
    path = folder / FILE_NAME
    write_text(path, render(report))
    return path
