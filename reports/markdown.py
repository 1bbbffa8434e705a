"""report.md: the two-minute read for a manager, in GitHub-flavoured Markdown.

Every value that came from Azure (names, tags, ids, and the messages and evidence that quote
them) passes through `escape_text` or `escape_cell`, so a hostile job name can neither break a
table nor inject HTML, links, mentions or formatting. Check titles and remediation come from our
own catalogue and are written as authored Markdown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from itertools import groupby
from pathlib import Path

from auditor.results import ScanReport
from reports.atomic import write_text
from reports.sanitize import visible
from reports.tables import (
    Record,
    check_counts,
    counts,
    finding_records,
    iso_utc,
    pass_rate,
    scope_text,
    severity_counts,
    waiver_note,
)

FILE_NAME = "report.md"

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Markup anywhere in a line: HTML, code, emphasis, strike-through, links and images, headings,
# GitHub math and @mentions, plus the `://` and `www.` that would become bare autolinks.
_INLINE = re.compile(r"://|(?i:www)\.|[\\`*_\[\]#~@$&<>]")
# Markup only at the start of a line: list items, ordered lists and setext underlines.
_LINE_START = re.compile(r"^([-+=]|\d+[.)])")
_NEWLINE = re.compile(r"\r\n|\r|\n")


def _escape_inline(match: re.Match[str]) -> str:
    found = match.group()
    if found in _ENTITIES:
        return _ENTITIES[found]
    if found == "://":
        return "\\://"
    if len(found) > 1:  # "www."
        return found[:-1] + "\\."
    return "\\" + found


def escape_text(text: str) -> str:
    """`text` as literal inline Markdown: it renders as written, on one line."""
    escaped = _INLINE.sub(_escape_inline, visible(text))
    escaped = _LINE_START.sub(lambda m: m.group()[:-1] + "\\" + m.group()[-1], escaped)
    return _NEWLINE.sub("<br>", escaped)


def escape_cell(text: str) -> str:
    """`text` as the literal content of one table cell: pipes no longer split it."""
    return escape_text(text).replace("|", "\\|")


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: int = 0) -> str:
    """A table of cells already escaped; the last `numeric` columns are right-aligned."""
    align = ["---"] * (len(headers) - numeric) + ["---:"] * numeric
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _heading(report: ScanReport) -> str:
    info = report.info
    source = info.source if info.source_detail == info.source else (
        f"{info.source} ({info.source_detail})")
    return "\n".join([
        "# Azure Container Apps jobs: audit report",
        "",
        f"- **Scope:** {escape_text(scope_text(info.scope))}",
        f"- **Period:** scan ran {iso_utc(info.started)} to {iso_utc(info.finished)}, "
        f"evaluated as of {iso_utc(info.as_of)}",
        f"- **Source:** {escape_text(source)}",
        f"- **Tool:** auditor {info.tool_version}; scan id {info.id}; "
        f"settings digest {report.settings.digest()[:12]}",
    ])


def _banner(report: ScanReport) -> str:
    if report.complete:
        return "> [!NOTE]\n> **Complete scan:** every requested scope was read."
    lines = ["> [!CAUTION]",
             "> **INCOMPLETE SCAN:** the scan could not read everything it was asked to, so the "
             "results below cover only what was read. Missing:"]
    lines += [f"> - {escape_text(g.scope)} ({escape_text(g.source)}): {escape_text(g.reason)}"
              for g in report.coverage.gaps]
    return "\n".join(lines)


def _key_figures(report: ScanReport) -> str:
    figures = _table(
        ["Jobs scanned", "Checks", "Results", "Findings", "Waived", "Pass rate"],
        [[len(report.estate.jobs), len(report.checks), len(report.results),
          len(report.findings), counts(report)["waived"], _percent(pass_rate(report))]],
        numeric=6)
    by_severity = _table(
        ["Severity", "Failed", "Unknown", "Error", "Total"],
        ([s.severity.value, s.failed, s.unknown, s.error, s.total]
         for s in severity_counts(report)),
        numeric=4)
    return (f"## Key figures\n\n{figures}\n\nPass rate is passed / (passed + failed). A waived "
            "finding is an accepted risk: it keeps its status and is listed below.\n\n"
            f"Findings by severity:\n\n{by_severity}")


def _checks(report: ScanReport) -> str:
    rows = ([c.id, escape_cell(c.title), c.severity.value, n["evaluated"], n["passed"],
             n["failed"], n["waived"], n["unknown"], n["not_applicable"], n["error"]]
            for c, n in check_counts(report))
    return "## Checks\n\n" + _table(
        ["Id", "Title", "Severity", "Evaluated", "Passed", "Failed", "Waived", "Unknown", "N/A",
         "Error"], rows, numeric=7)


def _finding(item: Record) -> list[str]:
    status = "" if item.status == "fail" else f" ({item.status})"
    where = [f"resource group {escape_text(item.resource_group or '(unknown)')}",
             f"subscription {escape_text(item.subscription_id or '(unknown)')}",
             f"owner {escape_text(item.owner)}" if item.owner else "no owner tag"]
    lines = [f"- **{escape_text(item.resource_name)}**{status}: {escape_text(item.message)}",
             f"  - {', '.join(where)}"]
    if item.subject:
        lines.append(f"  - Subject: {escape_text(item.subject)}")
    note = waiver_note(item)
    if note:
        lines.append(f"  - {escape_text(note)}")
    if item.evidence:
        lines.append("  - Evidence:")
        lines += [f"    - {escape_text(e)}" for e in item.evidence]
    return lines


def _findings(report: ScanReport) -> str:
    if not report.findings:
        return "## Findings\n\nNo findings."
    blocks = ["## Findings"]
    for severity, in_severity in groupby(finding_records(report), key=lambda r: r.severity):
        items = list(in_severity)
        blocks.append(f"### {severity.capitalize()} ({len(items)})")
        for check_id, of_check in groupby(items, key=lambda r: r.check_id):
            found = list(of_check)
            blocks.append(f"#### {check_id}: {escape_text(found[0].title)} ({len(found)})")
            blocks.append(f"**Remediation:** {found[0].remediation}")
            blocks.append("\n".join(line for item in found for line in _finding(item)))
    return "\n\n".join(blocks)


def _waivers(report: ScanReport) -> str:
    if not report.waivers:
        return "## Waivers\n\nNone."
    rows = ([r.state.value, escape_cell(r.waiver.check_id), escape_cell(r.waiver.resource),
             escape_cell(r.waiver.ticket), escape_cell(r.waiver.approver),
             r.waiver.expires.isoformat(), escape_cell(r.waiver.justification), r.matched]
            for r in report.waivers)
    return ("## Waivers\n\nAccepted risks. Expired waivers no longer apply; stale ones match no "
            "finding and can be removed.\n\n" + _table(
                ["State", "Check", "Resource", "Ticket", "Approver", "Expires", "Justification",
                 "Findings matched"], rows, numeric=1))


def _coverage(report: ScanReport) -> str:
    read = _table(["Scope", "Source", "Rows"],
                  ([escape_cell(r.scope), escape_cell(r.source), r.rows]
                   for r in report.coverage.reads), numeric=1)
    gaps = _table(["Scope", "Source", "Reason"],
                  ([escape_cell(g.scope), escape_cell(g.source), escape_cell(g.reason)]
                   for g in report.coverage.gaps)) if report.coverage.gaps else "None."
    return f"## Coverage\n\nRead:\n\n{read}\n\nCould not read:\n\n{gaps}"


def _other_types(report: ScanReport) -> str:
    found = report.info.other_types
    body = _table(["Type", "Items"], ([escape_cell(kind), count] for kind, count in found.items()),
                  numeric=1) if found else "None."
    return ("## Unrecognised item types\n\nItems in the input that no check evaluates:\n\n"
            + body)


def render(report: ScanReport) -> str:
    sections = [_heading(report), _banner(report), _key_figures(report), _checks(report),
                _findings(report), _waivers(report), _coverage(report), _other_types(report)]
    return "\n\n".join(sections) + "\n"


def write_markdown(report: ScanReport, folder: Path) -> Path:
    path = folder / FILE_NAME
    write_text(path, render(report))
    return path
