"""report.md: Azure values are escaped so they render literally and cannot break the layout."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor.coverage import Gap
from auditor.model import Job
from auditor.results import ScanReport
from auditor.waivers import Waiver
from reports.markdown import escape_cell, escape_text, render, write_markdown
from reports.sanitize import visible

HOSTILE = 'evil|name\n# Heading `code` <script>alert(1)</script> [x](http://e.vil) *b* @team'
MakeJob = Callable[..., Job]
MakeReport = Callable[..., ScanReport]
MakeWaiver = Callable[..., Waiver]


def unescape(markdown: str) -> str:
    """What a CommonMark renderer shows for escaped inline text (the inverse of escaping)."""
    text = markdown.replace("<br>", "\n")
    text = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)
    return html.unescape(text)


def live_markup(escaped: str) -> str:
    """What is left of `escaped` once escapes, entities and our line breaks are taken out."""
    return re.sub(r"\\.|&(amp|lt|gt);|<br>", "", escaped)


def cells(line: str) -> list[str]:
    """Split a table row where GFM does: at pipes that no backslash escapes."""
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


@given(st.text())
def test_escaped_text_renders_as_written(text: str) -> None:
    expected = re.sub(r"\r\n|\r", "\n", visible(text))
    assert unescape(escape_text(text)) == expected
    assert unescape(escape_cell(text)) == expected


@given(st.text())
def test_escaped_cell_leaves_no_markup(text: str) -> None:
    left = live_markup(escape_cell(text))
    assert not re.search(r"[\\`*_\[\]#~@$<>|&\r\n]", left)
    assert "://" not in left
    assert "www." not in left.lower()


@pytest.mark.parametrize("text", ["- item", "+ item", "= underline", "12. ordered", "3) ordered"])
def test_block_markup_at_the_start_is_escaped(text: str) -> None:
    assert escape_text(text).startswith(("\\", "12\\", "3\\"))


def test_hostile_values_in_tables_keep_every_row_intact(make_report: MakeReport) -> None:
    report = make_report(gaps=[Gap(HOSTILE, "resource-graph", HOSTILE)],
                         other_types={HOSTILE: 2})
    blocks = [block.splitlines() for block in render(report).split("\n\n")
              if block.startswith("|")]
    assert len(blocks) == 6  # key figures, severities, checks, read, gaps, other types
    for block in blocks:
        assert {len(cells(line)) for line in block} == {len(cells(block[0]))}
    gap_row = next(line for block in blocks for line in block if "resource-graph" in line)
    scope, _, reason = (unescape(cell.strip()) for cell in cells(gap_row))
    assert scope == reason == HOSTILE


def test_hostile_job_name_cannot_inject_html_or_headings(make_job: MakeJob,
                                                         make_report: MakeReport) -> None:
    report = make_report([make_job(name=HOSTILE, identity=None)])
    text = render(report)
    assert "<script" not in text
    assert not re.search(r"(?<!\\)\]\(", text)  # no link: every "](" is escaped
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert all(re.match(r"#{1,4} [A-Z]", line) for line in headings)
    assert not any("Heading" in line for line in headings)
    finding = next(line for line in text.splitlines()
                   if "no identity" in line and line.startswith("- **"))
    assert unescape(finding.split("**")[1]) == HOSTILE


def test_incomplete_scan_shows_a_banner_listing_the_gaps(make_report: MakeReport) -> None:
    report = make_report(gaps=[Gap("subscription sub-1", "resource-graph", "403 Forbidden")])
    top = render(report).split("## Key figures")[0]
    assert "INCOMPLETE" in top
    assert "subscription sub-1" in top
    assert "403 Forbidden" in top


def test_complete_scan_says_so(make_report: MakeReport) -> None:
    text = render(make_report())
    assert "INCOMPLETE" not in text
    assert "Complete scan" in text


def test_key_figures_and_check_table(make_report: MakeReport) -> None:
    text = render(make_report())
    # 8 passed, 2 failed (unknown, n/a and error do not count).
    assert "| 3 | 4 | 12 | 3 | 0 | 80.0% |" in text
    assert "| T-003 | Owner tag names a team | low | 3 | 1 | 1 | 0 | 0 | 1 | 0 |" in text
    assert "| critical | 0 | 0 | 1 | 1 |" not in text  # nothing errors in the default estate
    assert "| high | 1 | 0 | 0 | 1 |" in text


def test_findings_are_grouped_by_severity_with_evidence_and_remediation(
        make_report: MakeReport) -> None:
    text = render(make_report()).split("## Findings")[1].split("## Coverage")[0]
    assert text.index("### High (1)") < text.index("### Medium (1)") < text.index("### Low (1)")
    assert "**Remediation:** Assign one: `az containerapp job identity assign`." in text
    assert "- **job-b**: The job has no identity." in text
    assert "    - job 'job-b' identity = None" in text
    assert "- **job-c** (unknown): replicaTimeout is not in the data." in text
    assert "owner alice" in text


def test_no_findings(make_job: MakeJob, make_report: MakeReport) -> None:
    assert "No findings." in render(make_report([make_job()]))


def test_written_atomically_to_the_folder(make_report: MakeReport, folder: Path) -> None:
    path = write_markdown(make_report(), folder)
    assert path == folder / "report.md"
    assert path.read_text(encoding="utf-8") == render(make_report())
    assert not list(folder.glob(".report.md.*"))


def test_waivers_are_shown_on_the_finding_and_reviewed(make_report: MakeReport,
                                                       make_waiver: MakeWaiver) -> None:
    expired = make_waiver(check_id="T-003", resource="*/jobs/job-b", ticket="CHG-0",
                          expires=date(2024, 1, 31))
    text = render(make_report(waivers=[make_waiver(justification="Q3 | <b>move</b>"), expired]))
    assert "| 3 | 4 | 12 | 3 | 1 | 80.0% |" in text
    finding = text.split("#### T-001")[1].split("####")[0]
    assert ("  - Waived until 2024-12-31 (CHG-1, approved by ciso\\@contoso.com): Q3 | "
            "&lt;b&gt;move&lt;/b&gt;") in finding
    assert "Waiver CHG-0 expired on 2024-01-31" in text.split("#### T-003")[1]
    review = text.split("## Waivers")[1].split("## Coverage")[0]
    rows = [line for line in review.splitlines() if line.startswith(("| applied", "| expired"))]
    assert len(rows) == 2
    assert all(len(cells(row)) == 8 for row in rows)
