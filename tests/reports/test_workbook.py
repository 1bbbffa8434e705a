"""report.xlsx, read back with openpyxl: layout, links, chart, splitting, and no formulas."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from auditor.coverage import Gap
from auditor.model import Job
from auditor.results import ScanReport
from auditor.waivers import Waiver
from reports.tables import portal_url
from reports.workbook import EXCEL_MAX_TEXT, split_rows, write_workbook

MakeJob = Callable[..., Job]
MakeReport = Callable[..., ScanReport]
MakeWaiver = Callable[..., Waiver]

FINDINGS_HEADER = ["Severity", "Check", "Title", "Status", "Resource name", "Resource group",
                   "Subscription", "Owner", "Subject", "Message", "Evidence", "Remediation",
                   "Waiver", "Resource id", "Portal link", "Since last scan", "Fingerprint"]
FORMULAS = ['=HYPERLINK("http://evil","click")', "+1+1", "-1+1", "@SUM(1)", "\t=1", "#N/A"]


def read(report: ScanReport, folder: Path, **options: Any) -> Any:
    return load_workbook(write_workbook(report, folder, **options))


def rows(sheet: Worksheet) -> list[tuple[Any, ...]]:
    return list(sheet.iter_rows(values_only=True))


def test_sheets_in_order(make_report: MakeReport, tmp_path: Path) -> None:
    book = read(make_report(), tmp_path)
    assert book.sheetnames == ["Summary", "Findings", "Results", "Checks", "Controls",
                               "Waivers", "Inventory", "Changes", "Executions", "Cost by owner",
                               "Cost by job", "Cost allocation", "Dedicated profiles",
                               "Free grant", "Cost anomalies", "Coverage", "Manifest"]


def test_findings_sheet_layout(make_report: MakeReport, tmp_path: Path) -> None:
    report = make_report()
    sheet = read(report, tmp_path)["Findings"]
    table = rows(sheet)
    assert list(table[0]) == FINDINGS_HEADER
    assert len(table) == 1 + len(report.findings)
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:Q{len(table)}"
    assert sheet.print_title_rows == "$1:$1"
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.page_setup.fitToWidth == 1
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert all(c.font.b for c in sheet[1])
    assert sheet.column_dimensions["J"].width == 48
    assert sheet["J2"].alignment.wrap_text


def test_finding_row_values_link_and_colour(make_report: MakeReport, tmp_path: Path) -> None:
    report = make_report()
    sheet = read(report, tmp_path)["Findings"]
    first = report.findings[0]
    row = dict(zip(FINDINGS_HEADER, rows(sheet)[1], strict=True))
    assert row["Severity"] == "high"
    assert row["Check"] == "T-001"
    assert row["Resource name"] == "job-b"
    assert row["Owner"] == "alice"
    assert row["Evidence"] == "job 'job-b' identity = None"
    assert row["Resource id"] == first.job.id
    assert sheet["O2"].hyperlink.target == portal_url(first.job.id, "AzureCloud")
    assert sheet["O2"].hyperlink.target.startswith("https://portal.azure.com/#@/resource/subs")
    assert sheet["A2"].fill.fgColor.rgb.endswith("FF7C80")
    assert sheet["A3"].fill.fgColor.rgb.endswith("FFD966")  # medium


def test_evidence_is_one_cell_joined_by_newlines(make_job: MakeJob, make_report: MakeReport,
                                                 tmp_path: Path) -> None:
    sheet = read(make_report([make_job(tags={"owner": "bob"})]), tmp_path)["Findings"]
    assert sheet["K2"].value == "tag 'owner' = bob\nowners must start with 'team-'"
    assert sheet["K2"].alignment.wrap_text


@pytest.mark.parametrize("hostile", FORMULAS)
def test_formula_like_azure_values_stay_plain_text(hostile: str, make_job: MakeJob,
                                                   make_report: MakeReport,
                                                   tmp_path: Path) -> None:
    job = make_job(name=hostile, identity=None, tags={"owner": hostile})
    book = read(make_report([job]), tmp_path)
    names = [book["Findings"]["E2"], book["Results"]["A2"], book["Inventory"]["A2"]]
    owners = [book["Findings"]["H2"], book["Inventory"]["M2"]]  # owner values are stripped
    for cell in names + owners:
        assert cell.value == (hostile if cell in names else hostile.strip())
        assert cell.data_type == "s"  # not "f" (formula) nor "e" (error)
        assert cell.quotePrefix == (cell.value != "#N/A")  # Excel keeps it text when edited


def test_no_sheet_holds_a_formula(make_job: MakeJob, make_report: MakeReport,
                                  tmp_path: Path) -> None:
    jobs = [make_job(name=text, identity=None, tags={"owner": text}) for text in FORMULAS]
    path = write_workbook(make_report(jobs), tmp_path)
    with zipfile.ZipFile(path) as archive:
        sheets = [archive.read(n) for n in archive.namelist()
                  if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)]
    assert len(sheets) == 17
    assert not any(re.search(rb"<f[ >]", xml) for xml in sheets)


def test_control_characters_do_not_break_the_workbook(make_job: MakeJob,
                                                      make_report: MakeReport,
                                                      tmp_path: Path) -> None:
    book = read(make_report([make_job(name="a\x00b\x1b", identity=None)]), tmp_path)
    assert book["Findings"]["E2"].value == "a\ufffdb\ufffd"


def test_text_longer_than_an_excel_cell_is_cut_with_a_note(make_job: MakeJob,
                                                           make_report: MakeReport,
                                                           tmp_path: Path) -> None:
    book = read(make_report([make_job(name="x" * 40_000, identity=None)]), tmp_path)
    value = book["Findings"]["E2"].value
    assert len(value) == EXCEL_MAX_TEXT
    assert value.endswith("see findings.json)")


def test_results_sheet_is_the_whole_tested_population(make_report: MakeReport,
                                                      tmp_path: Path) -> None:
    report = make_report()
    table = rows(read(report, tmp_path)["Results"])
    assert len(table) == 1 + len(report.results)
    statuses = {(row[0], row[4]): row[7] for row in table[1:]}
    assert statuses[("job-a", "T-001")] == "pass"
    assert statuses[("job-c", "T-003")] == "not_applicable"
    assert statuses[("job-c", "T-002")] == "unknown"


def test_inventory_describes_every_job(make_report: MakeReport, tmp_path: Path) -> None:
    table = rows(read(make_report(), tmp_path)["Inventory"])
    header, job_a = table[0], dict(zip(table[0], table[1], strict=True))
    assert len(table) == 4
    assert "Tags" in header
    assert job_a["Name"] == "job-a"
    assert job_a["Trigger type"] == "Schedule"
    assert job_a["Cron"] == "0 2 * * *"
    assert job_a["Replica timeout (s)"] == 1800
    assert job_a["Identity type"] == "SystemAssigned"
    assert job_a["Images"] == "contoso.azurecr.io/app:1.0"
    assert job_a["Environment"] == "env-a"
    assert job_a["Owner"] == "team-a"
    assert job_a["Tags"] == "cost-center = cc-1\nowner = team-a"


def test_checks_and_coverage_sheets(make_report: MakeReport, tmp_path: Path) -> None:
    report = make_report(gaps=[Gap("subscription s", "resource-graph", "403")],
                         other_types={"microsoft.web/sites": 2})
    book = read(report, tmp_path)
    checks = rows(book["Checks"])
    assert [row[0] for row in checks[1:]] == ["T-001", "T-002", "T-003", "T-004"]
    assert checks[3][4:11] == (3, 1, 1, 0, 1, 0, 0)  # T-003: evaluated .. error
    coverage = rows(book["Coverage"])
    assert coverage[1:] == [
        ("read", "file jobs.json", "snapshot", 3, None),
        ("gap", "subscription s", "resource-graph", None, "403"),
        ("unrecognised type", "microsoft.web/sites", "input", 2, "not evaluated by any check"),
    ]


def summary_values(sheet: Worksheet) -> dict[Any, Any]:
    return {row[0]: row[1] for row in rows(sheet) if row[0] is not None}


def test_summary_states_scope_times_figures_and_has_a_chart(make_report: MakeReport,
                                                            tmp_path: Path) -> None:
    sheet = read(make_report(), tmp_path)["Summary"]
    values = summary_values(sheet)
    assert values["Scope"] == "snapshot: exports/2024-05-01"
    assert values["Scan started (UTC)"] == datetime(2024, 5, 1, 10, 0, 0)
    assert values["Jobs scanned"] == 3
    assert values["Findings"] == 3
    assert values["Pass rate: passed / (passed + failed)"] == pytest.approx(0.8)
    assert values["high"] == 1  # findings by severity: failed column
    assert str(sheet["A2"].value).startswith("Complete")
    assert len(sheet._charts) == 1


def test_incomplete_scan_is_big_and_red_on_the_summary(make_report: MakeReport,
                                                       tmp_path: Path) -> None:
    report = make_report(gaps=[Gap("subscription s", "resource-graph", "403")])
    banner = read(report, tmp_path)["Summary"]["A2"]
    assert banner.value.startswith("INCOMPLETE")
    assert banner.font.color.rgb.endswith("C00000")
    assert banner.font.sz >= 14


def test_long_tables_continue_on_further_sheets(make_report: MakeReport,
                                                tmp_path: Path) -> None:
    report = make_report()  # 12 results
    book = read(report, tmp_path, max_rows=5)  # a header and 4 rows per sheet
    assert [n for n in book.sheetnames if n.startswith("Results")] == [
        "Results", "Results (2)", "Results (3)"]
    parts = [rows(book[n]) for n in ("Results", "Results (2)", "Results (3)")]
    assert all(part[0] == parts[0][0] for part in parts)  # every part has the header
    continued = [row for part in parts for row in part[1:]]
    assert [(r[0], r[4]) for r in continued] == [(r.job.name, r.check.id)
                                                for r in report.results]
    assert book["Results (3)"].auto_filter.ref == "A1:M5"
    assert book["Results (2)"].freeze_panes == "A2"


@pytest.mark.parametrize(("count", "expected"), [(0, [[]]), (3, [[0, 1, 2]]),
                                                 (4, [[0, 1, 2], [3]]),
                                                 (7, [[0, 1, 2], [3, 4, 5], [6]])])
def test_split_rows(count: int, expected: list[list[int]]) -> None:
    assert [list(part) for part in split_rows(range(count), 3)] == expected


def test_saved_atomically(make_report: MakeReport, tmp_path: Path) -> None:
    path = write_workbook(make_report(), tmp_path)
    assert path == tmp_path / "report.xlsx"
    assert [p.name for p in tmp_path.iterdir()] == ["report.xlsx"]


def test_portal_link_is_percent_encoded_and_only_for_arm_ids(make_job: MakeJob,
                                                             make_report: MakeReport,
                                                             tmp_path: Path) -> None:
    job = make_job(id='/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/jobs/a b"\n<x>',
                   identity=None)
    target = read(make_report([job]), tmp_path)["Findings"]["O2"].hyperlink.target
    assert target == ("https://portal.azure.com/#@/resource/subscriptions/s/resourceGroups/rg/"
                      "providers/Microsoft.App/jobs/a%20b%22%0A%3Cx%3E")
    assert portal_url("not-an-arm-id", "AzureCloud") is None
    assert portal_url("/subscriptions/s", "AzureUSGovernment") == (
        "https://portal.azure.us/#@/resource/subscriptions/s")


def test_waivers_sheet_and_waiver_column(make_report: MakeReport, make_waiver: MakeWaiver,
                                         tmp_path: Path) -> None:
    book = read(make_report(waivers=[make_waiver()]), tmp_path)
    waivers = rows(book["Waivers"])
    assert waivers[0][:5] == ("State", "Check", "Resource", "Findings matched", "Expires")
    assert waivers[1][:5] == ("applied", "T-001", "*/jobs/job-b", 1, datetime(2024, 12, 31))
    assert book["Waivers"]["E2"].number_format == "yyyy-mm-dd"
    findings = dict(zip(FINDINGS_HEADER, rows(book["Findings"])[1], strict=True))
    assert findings["Status"] == "fail"
    assert findings["Waiver"].startswith("Waived until 2024-12-31 (CHG-1")
    assert summary_values(book["Summary"])["Findings waived (accepted risks)"] == 1
