"""report.html without a browser: escaping, the CSP, self-containment and what the page states.

The browser tests (test_html_browser.py) show the page at work; these read the file as text and
with the standard library's HTML parser, so they run everywhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from auditor.coverage import Gap
from auditor.model import Job
from auditor.results import ScanReport
from reports import tables
from reports.html_report import (
    CONTENT_SECURITY_POLICY,
    FILTERS,
    findings_data,
    render,
    script_json,
    write_html,
)
from reports.sanitize import visible

MakeJob = Callable[..., Job]
MakeReport = Callable[..., ScanReport]

PAYLOADS = ("<img src=x onerror=alert(1)>", "</script><script>alert(1)</script>",
            "<!--<script>", "\" onmouseover=\"alert(1)", "&lt;b&gt;", "a\u2028b\u2029c",
            "</SCRIPT\t>", "]]><svg onload=alert(1)>")
HOSTILE = " ".join(PAYLOADS)
DATA_BLOCK = re.compile(r'<script type="application/json" id="findings-data">(.*?)</script>',
                        re.DOTALL)


class Page(HTMLParser):
    """What a browser's parser makes of the page: elements, attributes, text, scripts, styles."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self._raw: tuple[str, dict[str, str | None]] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._raw = (tag, dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        if self._raw is not None and tag == self._raw[0]:
            self._raw = None

    def handle_data(self, data: str) -> None:
        if self._raw is None:
            self.text.append(data)
        elif self._raw[0] == "script":
            self.scripts.append((self._raw[1], data))
        else:
            self.styles.append(data)

    def names(self) -> set[str]:
        return {tag for tag, _ in self.tags}

    def shown(self) -> str:
        return "".join(self.text)


def hostile_report(make_report: MakeReport, make_job: MakeJob) -> ScanReport:
    """A job named, tagged and owned by markup, and a coverage gap that quotes it."""
    job = make_job(name=HOSTILE, identity=None, tags={"owner": HOSTILE})
    return make_report([make_job(), job],
                       gaps=[Gap(f"subscription {HOSTILE}", "resource-graph", HOSTILE)])


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_writes_report_html_atomically(make_report: MakeReport, tmp_path: Path) -> None:
    path = write_html(make_report(), tmp_path)
    assert path == tmp_path / "report.html"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert path.read_text(encoding="utf-8") == render(make_report())


def test_hostile_values_in_the_static_parts_are_text(make_report: MakeReport,
                                                     make_job: MakeJob) -> None:
    page = Page(render(hostile_report(make_report, make_job)))
    # No element or attribute came from the data: only the page's own vocabulary.
    assert page.names() <= {
        "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "dl",
        "dt", "dd", "div", "p", "strong", "ul", "li", "span", "section", "svg", "rect",
        "text", "g", "table", "thead", "tbody", "tr", "th", "td", "label", "input", "select",
        "option", "button", "noscript", "script", "footer"}
    assert not [(tag, name) for tag, attrs in page.tags for name in attrs
                if name.startswith("on")]
    assert len(page.scripts) == 2
    # The gap is stated literally in the red banner.
    assert f"subscription {visible(HOSTILE)} (resource-graph): {visible(HOSTILE)}" in page.shown()


def test_json_block_cannot_leave_its_script_element(make_report: MakeReport,
                                                    make_job: MakeJob) -> None:
    report = hostile_report(make_report, make_job)
    text = render(report)
    blocks = DATA_BLOCK.findall(text)
    assert len(blocks) == 1
    block = blocks[0]
    assert not set(block) & {"<", ">", "&", "\u2028", "\u2029"}
    data = json.loads(block)
    assert data == json.loads(json.dumps(findings_data(report)))
    name = [c["header"] for c in data["columns"]].index("Resource name")
    assert visible(HOSTILE) in {row[name] for row in data["rows"]}


@given(st.text())
def test_script_json_round_trips_without_markup_characters(text: str) -> None:
    encoded = script_json({"value": text, "list": [text, None]})
    assert not set(encoded) & {"<", ">", "&", "\u2028", "\u2029"}
    assert json.loads(encoded) == {"value": text, "list": [text, None]}


def test_findings_data_is_the_findings_table(make_report: MakeReport) -> None:
    report = make_report()
    data = findings_data(report)
    table = tables.findings(report)
    assert [c["header"] for c in data["columns"]] == [c.header for c in table.columns]
    assert data["rows"] == [list(row) for row in table.rows]
    assert len(data["rows"]) == len(report.findings)
    headers = [c["header"] for c in data["columns"]]
    assert {name: headers[i] for name, i in data["filters"].items()} == FILTERS
    assert data["severities"] == ["critical", "high", "medium", "low", "info"]


def test_strict_csp_allows_exactly_the_inline_style_and_script(make_report: MakeReport) -> None:
    page = Page(render(make_report()))
    first_tags = [tag for tag, _ in page.tags[:4]]
    assert first_tags == ["html", "head", "meta", "meta"]  # charset, then the policy
    policy = page.tags[3][1]
    assert policy["http-equiv"] == "Content-Security-Policy"
    assert policy["content"] == CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["base-uri"] == "'none'" and directives["form-action"] == "'none'"
    assert directives["require-trusted-types-for"] == "'script'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    [style] = page.styles
    assert directives["style-src"] == sha256_source(style)
    code = [body for attrs, body in page.scripts if "type" not in attrs]
    assert len(code) == 1
    assert directives["script-src"] == sha256_source(code[0])


def test_self_contained_nothing_to_fetch(make_report: MakeReport) -> None:
    text = render(make_report())
    page = Page(text)
    fetching = {"src", "href", "srcset", "action", "formaction", "data", "poster",
                "xlink:href", "background", "manifest", "ping"}
    assert not [(tag, name) for tag, attrs in page.tags for name in attrs if name in fetching]
    assert not page.names() & {"link", "img", "iframe", "object", "embed", "base", "form"}
    assert "url(" not in page.styles[0] and "@import" not in page.styles[0]
    # Web addresses appear only as data (the portal links in the findings JSON).
    outside_data = DATA_BLOCK.sub("", text)
    assert not re.search(r"(https?:)?//[a-z0-9]", outside_data, re.IGNORECASE)
    assert "https://portal.azure.com/" in DATA_BLOCK.search(text).group(1)  # type: ignore[union-attr]
    assert not re.search(r"\b(fetch|XMLHttpRequest|WebSocket|import|eval)\b", outside_data)


def test_incomplete_scan_has_a_red_banner_naming_each_gap(make_report: MakeReport) -> None:
    gaps = [Gap("subscription sub-2", "resource-graph", "403 Forbidden"),
            Gap("file jobs-2.json", "snapshot", "only the first page")]
    page = Page(render(make_report(gaps=gaps)))
    [banner] = [attrs for tag, attrs in page.tags if attrs.get("id") == "completeness"]
    assert banner["class"] == "banner incomplete" and banner["role"] == "alert"
    shown = page.shown()
    assert "INCOMPLETE SCAN" in shown
    assert "subscription sub-2 (resource-graph): 403 Forbidden" in shown
    assert "file jobs-2.json (snapshot): only the first page" in shown
    complete = Page(render(make_report()))
    assert "Complete scan" in complete.shown() and "INCOMPLETE" not in complete.shown()


def test_summary_states_scope_period_and_key_figures(make_report: MakeReport) -> None:
    report = make_report()
    shown = re.sub(r"\s+", " ", Page(render(report)).shown())
    assert "snapshot: exports/2024-05-01" in shown
    assert ("scan ran 2024-05-01T10:00:00Z to 2024-05-01T10:00:07Z, evaluated as of "
            "2024-05-01T10:00:00Z") in shown
    figures = tables.counts(report)
    for label, value in (("Jobs scanned", figures["jobs"]), ("Findings", figures["findings"]),
                         ("Results", figures["results"]), ("Checks", len(report.checks)),
                         ("Coverage gaps", 0)):
        assert f"{value}{label}" in shown, label  # <span>value</span><span>label</span>


def test_charts_are_inline_svg_drawn_from_the_counts(make_report: MakeReport) -> None:
    report = make_report()
    text = render(report)
    page = Page(text)
    svgs = [attrs["id"] for tag, attrs in page.tags if tag == "svg"]
    assert svgs == ["chart-severity", "chart-pass-rate"]
    # One titled bar segment per severity and status that has findings.
    segments = re.findall(r"<title>(\w+): (\d+) (failed|unknown|error)</title>", text)
    expected = [(s.severity.value, str(n), status) for s in tables.severity_counts(report)
                for status, n in (("failed", s.failed), ("unknown", s.unknown),
                                  ("error", s.error)) if n]
    assert segments == expected
    # One row per check, with passed of (passed + failed).
    for check, n in tables.check_counts(report):
        decided = n["passed"] + n["failed"]
        assert (f"({n['passed']} of {decided})" if decided else "n/a") in text, check.id


def test_no_findings_says_so(make_report: MakeReport, make_job: MakeJob) -> None:
    report = make_report([make_job()])
    assert not report.findings
    text = render(report)
    assert "No findings." in Page(text).shown()
    assert json.loads(DATA_BLOCK.findall(text)[0])["rows"] == []
