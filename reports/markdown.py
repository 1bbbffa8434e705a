"""report.md: the two-minute read for a manager, in GitHub-flavoured Markdown.

Every value that came from Azure (names, tags, ids, and the messages and evidence that quote
them) passes through `escape_text` or `escape_cell`, so a hostile job name can neither break a
table nor inject HTML, links, mentions or formatting. Check titles and remediation come from our
own catalogue and are written as authored Markdown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import groupby
from pathlib import Path

from auditor.check import Status
from auditor.cost import ALLOCATION, UNALLOCATED
from auditor.results import ScanReport
from reports import config_changes, finops
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
    since_last_scan,
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


@lru_cache(maxsize=65_536)  # a large estate's report repeats names thousands of times
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


def _resource(resource_id: str) -> str:
    """A resource's name (the last segment of its id) and its resource group, escaped."""
    parts = resource_id.strip("/").split("/")
    lower = [p.lower() for p in parts]
    group = parts[lower.index("resourcegroups") + 1] if "resourcegroups" in lower[:-1] else ""
    name = escape_cell(parts[-1])
    return f"{name} ({escape_cell(group)})" if group else name


def _changes(report: ScanReport) -> str:
    """New and resolved findings against the last complete scan of the same scope."""
    title = "## What changed since the last scan"
    history = report.history
    if history is None:
        return f"{title}\n\nNot tracked: this scan kept no history store (`--no-history`)."
    scope = f"Scope: {escape_text(history.scope_key)}."
    if history.baseline is None:
        return (f"{title}\n\nThis is the first complete scan of this scope in the history "
                f"store, so all {history.new} findings are new. {scope}")
    base = history.baseline
    lines = [title, f"Compared with scan {base.id}, evaluated as of {iso_utc(base.as_of)}: "
             f"**{history.new} new**, **{len(history.resolved)} resolved**, "
             f"{history.persisting} persisting. {scope}"]
    if not report.complete:
        lines.append("> [!CAUTION]\n> This scan is incomplete: findings in what it could not "
                     "read are listed as resolved although nobody checked them.")
    new = [r for r in finding_records(report) if since_last_scan(report, r) == "new"]
    if new:
        lines.append("New findings:\n\n" + _table(
            ["Severity", "Check", "Resource", "Subject", "Status"],
            ([r.severity, r.check_id, _resource(r.resource_id), escape_cell(r.subject),
              r.status] for r in new)))
    if history.resolved:
        lines.append("Resolved findings (in the last scan, not in this one):\n\n" + _table(
            ["Severity", "Check", "Resource", "Subject", "First seen", "Now"],
            ([f.finding.severity, escape_cell(f.finding.check_id),
              _resource(f.finding.resource_id), escape_cell(f.finding.subject),
              f.finding.first_seen.date().isoformat(), escape_cell(f.now)]
             for f in history.resolved)))
    return "\n\n".join(lines)


def _checks(report: ScanReport) -> str:
    rows = ([c.id, escape_cell(c.title), c.severity.value, n["evaluated"], n["passed"],
             n["failed"], n["waived"], n["unknown"], n["not_applicable"], n["error"]]
            for c, n in check_counts(report))
    return "## Checks\n\n" + _table(
        ["Id", "Title", "Severity", "Evaluated", "Passed", "Failed", "Waived", "Unknown", "N/A",
         "Error"], rows, numeric=7)


def _finding(report: ScanReport, item: Record) -> list[str]:
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
    if report.history is not None:
        lines.append(f"  - Since last scan: {since_last_scan(report, item)}")
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
            blocks.append("\n".join(line for item in found for line in _finding(report, item)))
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


def _top_risks(report: ScanReport, limit: int = 5) -> str:
    """The most severe open failures, for the reader who stops after the first screen."""
    risks = [r for r in report.findings if r.status is Status.FAIL and not r.waived][:limit]
    if not risks:
        return "## Top risks\n\nNo failing finding is open."
    lines = ["## Top risks", ""]
    lines += [f"{n}. **{r.check.severity.value}** {escape_text(r.check.title)}: "
              f"{escape_text(r.job.name)} ({escape_text(report.owner(r.job) or 'no owner')}) "
              f"— {escape_text(r.outcome.message)}" for n, r in enumerate(risks, start=1)]
    more = len([r for r in report.findings if r.status is Status.FAIL and not r.waived]) - limit
    if more > 0:
        lines += ["", f"…and {more} more failing findings below."]
    return "\n".join(lines)


def _health_and_cost(report: ScanReport) -> str:
    """Top spenders, cost anomalies and unhealthy jobs: what FinOps and operators read."""
    if report.cost is None:
        return ""
    currency = report.settings.cost.currency
    costs = finops.job_cost_rows(report)
    total = sum(c.total for c in costs)
    lines = ["## Cost and execution health", "",
             f"Estimated cost of the executions from {report.cost.since:%Y-%m-%d} to "
             f"{report.cost.until:%Y-%m-%d}: **{total:,.2f} {currency}** (consumption rates; "
             "dedicated workload profiles as allocations). The monthly free grant is credited "
             "separately (see the Free grant sheet). Missing log rows are not proof that "
             "nothing ran: execution history can have gaps."]
    actual = report.cost.actual
    if actual is not None:
        billed = sum(actual.by_job.values())
        lines += ["", f"Billed cost of these jobs in the cost export "
                      f"({len(actual.files)} file(s), {actual.rows_used} rows): "
                      f"**{billed:,.2f} {actual.currency or currency}** against an estimate of "
                      f"{total:,.2f} {currency} (see the Cost by job sheet, job by job)."]
    lines += ["", "### Top spenders", ""]
    lines.append(_table(["Job", "Owner", "Executions", f"Estimated ({currency})"], [
        (escape_cell(c.job.name), escape_cell(report.owner(c.job) or UNALLOCATED),
         len(c.executions), f"{c.total:,.2f}" + (" (allocation)" if c.method == ALLOCATION
                                                  else ""))
        for c in costs[:10] if c.total > 0], numeric=2))
    found = finops.anomalies(report)
    lines += ["", f"### Cost anomalies ({len(found)})", ""]
    lines.append(_table(["Job", "Day", "Expected", "Actual", "Likely driver"], [
        (escape_cell(a.job.name), f"{a.anomaly.day:%Y-%m-%d}", f"{a.anomaly.expected:,.2f}",
         f"{a.anomaly.actual:,.2f}", escape_cell(a.anomaly.driver)) for a in found])
        if found else "No day departs from its job's baseline.")
    sick = finops.unhealthy(report)
    lines += ["", f"### Unhealthy jobs ({len(sick)})", ""]
    lines.append(_table(["Job", "Runs", "Failed", "Failure rate", "Hit timeout", "History"], [
        (escape_cell(h.job.name), h.runs, h.failed, _percent(h.failure_rate), h.timeouts,
         escape_cell(h.source)) for h in sick[:15]], numeric=0)
        if sick else "No job failed or hit its timeout in the window.")
    return "\n".join(lines)


_RECENT_CHANGES = 20  # property changes listed in the Markdown; the workbook has them all
_SHOWN_VALUE = 120  # characters of a before/after value shown in a table cell


def _value(text: str | None) -> str:
    if text is None:
        return "(none)"
    cut = text if len(text) <= _SHOWN_VALUE else text[: _SHOWN_VALUE - 1] + "…"
    return escape_cell(cut)


def _configuration_changes(report: ScanReport) -> str:
    """Who changed which job in the period Resource Graph keeps: counts per job, then the most
    recent property changes. Values come masked from auditor.changes."""
    title = f"## Configuration changes in the last {config_changes.WINDOW_DAYS} days"
    jobs = config_changes.per_job(report)
    if not jobs:
        return (f"{title}\n\nNo change to a job was recorded in the input. A live scan reads "
                "them from Resource Graph (`resourcechanges`, which keeps 14 days); for exported "
                "files, add the output of `az graph query -q \"resourcechanges | where "
                "properties.targetResourceType =~ 'microsoft.app/jobs'\"`.")
    span = config_changes.period(report)
    between = f" between {iso_utc(span[0])} and {iso_utc(span[1])}" if span else ""
    records = sum(j.records for j in jobs)
    lines = [title, f"Resource Graph recorded **{records} changes to {len(jobs)} jobs**{between}. "
             "Values that could hold a secret (env values, secrets, args, commands, scale-rule "
             "metadata, and anything that looks like a credential) are masked. Every change is "
             "on the Changes sheet of report.xlsx."]

    def name(job: config_changes.JobChanges) -> str:
        return escape_cell(job.name) + ("" if job.in_scan else " (not in this scan)")

    def who(actors: tuple[str, ...]) -> str:
        more = f" and {len(actors) - 3} more" if len(actors) > 3 else ""
        return escape_cell(", ".join(actors[:3]) + more)

    lines.append(_table(
        ["Job", "Resource group", "Changed by", "Last change (UTC)", "Created", "Updated",
         "Deleted", "Properties changed"],
        ([name(j), escape_cell(j.resource_group or ""), who(j.actors),
          iso_utc(j.last) if j.last else "", j.kinds["Create"], j.kinds["Update"],
          j.kinds["Delete"], j.properties] for j in jobs), numeric=4))
    every = config_changes.lines(report)
    recent = every[:_RECENT_CHANGES]
    lead = ("Every change, newest first, one line per changed property:" if recent == every else
            f"The {len(recent)} most recent of {len(every)} changed properties, newest first "
            "(the Changes sheet has them all):")
    lines.append(f"{lead}\n\n" + _table(
        ["Time (UTC)", "Job", "Change", "Changed by", "Property", "Before → after"],
        ([iso_utc(c.change.timestamp) if c.change.timestamp else "",
          escape_cell(c.change.resource_name), escape_cell(c.change.change_type or ""),
          escape_cell(config_changes.actor(c.change)),
          escape_cell(c.property.path) if c.property else "(the whole job)",
          f"{_value(c.property.before)} → {_value(c.property.after)}" if c.property else ""]
         for c in recent)))
    return "\n\n".join(lines)


def render(report: ScanReport) -> str:
    sections = [_heading(report), _banner(report), _key_figures(report), _top_risks(report),
                _changes(report),
                _configuration_changes(report), _checks(report), _health_and_cost(report),
                _findings(report), _waivers(report), _coverage(report), _other_types(report)]
    sections = [s for s in sections if s]
    return "\n\n".join(sections) + "\n"


def write_markdown(report: ScanReport, folder: Path) -> Path:
    path = folder / FILE_NAME
    write_text(path, render(report))
    return path
