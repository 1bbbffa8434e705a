"""The jobs' configuration changes in the reports: the Changes sheet, the Markdown section and
`changes` in findings.json, with every value that could hold a secret masked."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from auditor.changes import changes_from
from auditor.results import ScanReport
from auditor.snapshot import RawItem
from reports.json_report import write_findings_json
from reports.markdown import render
from reports.workbook import write_workbook
from tests.azure_server import change_row

MakeReport = Callable[..., ScanReport]
SUB = "00000000-0000-0000-0000-000000000001"  # tests/reports/conftest.py
JOB_A = f"/subscriptions/{SUB}/resourceGroups/rg-a/providers/Microsoft.App/jobs/job-a"
GONE = f"/subscriptions/{SUB}/resourceGroups/rg-a/providers/Microsoft.App/jobs/job-gone"
FORMULA = '=HYPERLINK("http://example.invalid","x")'
KEY = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS1ub3QtcmVhbC0xMjM0NTY3ODkw"
CONNECTION = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY}"
PASSWORD = "Zq8rT3vLm9Xw2Kp"
SAS_SIG = "dGVzdC1zYXMtc2lnbmF0dXJlLW5vdC1yZWFs%3D"
PLANTED = (KEY, PASSWORD, SAS_SIG)
C = "properties.template.containers[0]"


def _prop(before: Any, after: Any) -> dict[str, Any]:
    kind = "Insert" if before is None else "Remove" if after is None else "Update"
    return {"propertyChangeType": kind, "changeCategory": "User", "previousValue": before,
            "newValue": after}


def _rows() -> list[dict[str, Any]]:
    return [
        change_row(JOB_A, "2024-04-20T08:00:00.000Z", changes={
            "properties.configuration.replicaTimeout": _prop("1800", "7200")}),
        change_row(JOB_A, "2024-04-25T12:30:00.000Z", changes={
            f"{C}.env[1].name": _prop(None, "STORAGE"),
            f"{C}.env[1].value": _prop(None, CONNECTION),
            f"{C}.args[0]": _prop("--dry-run", f"--url 'https://a.blob.core.windows.net/c?"
                                               f"sv=2022-11-02&sig={SAS_SIG}'"),
            "tags.owner": _prop("team-a", FORMULA),
        }, changed_by="mallory@contoso.com", client_type="ARM Template"),
        change_row(GONE, "2024-04-28T16:00:00.000Z", "Delete", changed_by="ops@contoso.com"),
        change_row(JOB_A, "2024-04-29T09:00:00.000Z", changes={
            "properties.template.initContainers[0].env[0].value": _prop(PASSWORD, None)}),
    ]


def _with_changes(report: ScanReport, rows: list[dict[str, Any]]) -> ScanReport:
    changes = changes_from(RawItem(row, "changes.json") for row in rows)
    return dataclasses.replace(report, estate=dataclasses.replace(report.estate, changes=changes))


def _leaks(text: str) -> list[str]:
    return [s[i:i + 5] for s in PLANTED for i in range(len(s) - 4) if s[i:i + 5] in text]


# --- the workbook --------------------------------------------------------------------------------

def test_changes_sheet_follows_inventory_with_one_row_per_property(
        make_report: MakeReport, tmp_path: Path) -> None:
    path = write_workbook(_with_changes(make_report(), _rows()), tmp_path)
    book = load_workbook(path)
    assert book.sheetnames.index("Changes") == book.sheetnames.index("Inventory") + 1
    sheet = book["Changes"]
    table = list(sheet.iter_rows(values_only=True))
    header = table[0]
    assert header[:10] == ("Time (UTC)", "Job", "Resource group", "Change", "Changed by",
                           "Changed by type", "Client", "Property", "Before", "After")
    rows = [dict(zip(header, row, strict=True)) for row in table[1:]]
    assert len(rows) == 1 + 1 + 4 + 1  # a Delete has no property changes: one row of its own
    times = [r["Time (UTC)"] for r in rows]
    assert all(isinstance(t, datetime) for t in times) and times == sorted(times, reverse=True)
    assert sheet["A2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:O{len(rows) + 1}"

    deleted = next(r for r in rows if r["Change"] == "Delete")
    assert (deleted["Job"], deleted["Property"], deleted["Changed by"]) == (
        "job-gone", None, "ops@contoso.com")
    assert deleted["Job in this scan"].startswith("no")
    timeout = next(r for r in rows if r["Property"] == "properties.configuration.replicaTimeout")
    assert (timeout["Before"], timeout["After"], timeout["Job in this scan"]) == (
        "1800", "7200", "yes")
    assert (timeout["Job"], timeout["Resource group"], timeout["Subscription"]) == (
        "job-a", "rg-a", SUB)
    by_path = {r["Property"]: r for r in rows if r["Changed by"] == "mallory@contoso.com"}
    assert by_path[f"{C}.env[1].name"]["After"] == "STORAGE"
    assert "****" in by_path[f"{C}.env[1].value"]["After"]
    assert "****" in by_path[f"{C}.args[0]"]["After"]
    assert by_path[f"{C}.args[0]"]["Client"] == "ARM Template"

    owner = sheet.cell(row=2 + [r["Property"] for r in rows].index("tags.owner"), column=10)
    assert (owner.value, owner.data_type, owner.quotePrefix) == (FORMULA, "s", True)


def test_no_planted_secret_is_in_the_workbook(make_report: MakeReport, tmp_path: Path) -> None:
    path = write_workbook(_with_changes(make_report(), _rows()), tmp_path)
    with zipfile.ZipFile(path) as archive:
        xml = "".join(archive.read(n).decode("utf-8") for n in archive.namelist()
                      if n.endswith(".xml"))
    assert "mallory@contoso.com" in xml  # the sheet was written
    assert not _leaks(xml)


def test_changes_sheet_without_changes_has_only_its_header(
        make_report: MakeReport, tmp_path: Path) -> None:
    sheet = load_workbook(write_workbook(make_report(), tmp_path))["Changes"]
    assert sheet.max_row == 1


# --- Markdown ------------------------------------------------------------------------------------

def _section(text: str) -> str:
    start = text.index("## Configuration changes in the last 14 days")
    return text[start:text.index("\n## ", start + 1)]


def test_markdown_section_counts_per_job_then_lists_the_most_recent(
        make_report: MakeReport) -> None:
    section = _section(render(_with_changes(make_report(), _rows())))
    assert "**4 changes to 2 jobs** between 2024-04-20T08:00:00Z and 2024-04-29T09:00:00Z" \
        in section
    lines = section.splitlines()
    job_a = next(line for line in lines if line.startswith("| job-a |"))
    assert job_a.endswith("| 0 | 3 | 0 | 6 |")  # created, updated, deleted, properties
    assert "2024-04-29T09:00:00Z" in job_a
    assert any(line.startswith("| job-gone (not in this scan) |") and line.endswith(
        "| 0 | 0 | 1 | 0 |") for line in lines)
    recent = lines[lines.index(next(line for line in lines if line.startswith("| Time"))) + 2:]
    assert recent[0].startswith("| 2024-04-29T09:00:00Z | job-a | Update |")
    assert "| 1800 → 7200 |" in section
    assert "(the whole job)" in section
    assert "\\=HYPERLINK" in section  # Markdown-escaped, as every value from Azure
    assert "mallory\\@contoso.com (User, ARM Template)" in section
    assert not _leaks(section)


def test_markdown_lists_only_the_20_most_recent(make_report: MakeReport) -> None:
    rows = [change_row(JOB_A, f"2024-04-{day:02}T10:00:00Z", changes={
        f"tags.t{n}": _prop(None, f"v{n}") for n in range(2)}) for day in range(1, 16)]
    section = _section(render(_with_changes(make_report(), rows)))
    assert "The 20 most recent of 30 changed properties, newest first" in section
    listed = [line for line in section.splitlines() if line.startswith("| 2024-04-")]
    assert len(listed) == 20
    assert listed[0].startswith("| 2024-04-15T10:00:00Z")


def test_markdown_says_when_no_change_was_recorded(make_report: MakeReport) -> None:
    section = _section(render(make_report()))
    assert "No change to a job was recorded in the input" in section


# --- findings.json -------------------------------------------------------------------------------

def test_findings_json_lists_the_changes_newest_first(make_report: MakeReport,
                                                     tmp_path: Path) -> None:
    path = write_findings_json(_with_changes(make_report(), _rows()), tmp_path)
    text = path.read_text(encoding="utf-8")
    changes = json.loads(text)["changes"]
    assert [c["timestamp"] for c in changes] == [
        "2024-04-29T09:00:00Z", "2024-04-28T16:00:00Z", "2024-04-25T12:30:00Z",
        "2024-04-20T08:00:00Z"]
    assert list(changes[0]) == [
        "id", "resource_id", "resource_name", "subscription_id", "resource_group",
        "job_in_scan", "change_type", "timestamp", "changed_by", "changed_by_type",
        "client_type", "operation", "correlation_id", "changes_count", "properties"]
    deleted = changes[1]
    assert (deleted["change_type"], deleted["resource_name"], deleted["job_in_scan"],
            deleted["properties"]) == ("Delete", "job-gone", False, [])
    first = changes[3]
    assert first["job_in_scan"] is True
    assert first["properties"] == [{
        "path": "properties.configuration.replicaTimeout", "before": "1800", "after": "7200",
        "property_change_type": "Update", "change_category": "User", "masked": False}]
    removed = changes[0]["properties"][0]
    assert removed["masked"] is True and removed["after"] is None
    assert not _leaks(text)


def test_findings_json_changes_is_empty_without_change_records(
        make_report: MakeReport, tmp_path: Path) -> None:
    document = json.loads(write_findings_json(make_report(), tmp_path).read_text())
    assert document["changes"] == []
