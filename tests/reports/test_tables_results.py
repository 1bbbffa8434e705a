"""reports.tables: the Results rows and key figures, made the fast way, say what records say."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from auditor.check import Status
from auditor.results import ScanReport
from auditor.settings import Severity
from auditor.waivers import Waiver
from reports import tables

MakeJob = Callable[..., Any]
MakeReport = Callable[..., ScanReport]
MakeWaiver = Callable[..., Waiver]


def test_results_rows_are_each_results_record_in_the_columns(
        make_job: MakeJob, make_report: MakeReport, make_waiver: MakeWaiver) -> None:
    jobs = [make_job(), make_job(name="job-b", identity=None, tags={"owner": "bob"}),
            make_job(name="job-c", resource_group="rg-c", replica_timeout=None, tags={}),
            make_job(name="job-d", identity=None, tags={"Owner": " carol "})]
    report = make_report(jobs, waivers=[
        make_waiver(),  # applies to job-b
        make_waiver(resource="*/jobs/job-d", expires=date(2024, 1, 1))])  # expired
    table = tables.results(report)
    assert list(table.rows) == [tuple(column.value(tables.record(report, result))
                                      for column in table.columns)
                                for result in report.results]
    waivers = [row[11] for row in tables.results(report).rows if row[11]]
    assert len(waivers) == 2  # one applied, one expired: both noted


def test_pass_rate_and_severity_counts_count_the_results(make_report: MakeReport) -> None:
    report = make_report()
    passed = sum(r.status is Status.PASS for r in report.results)
    failed = sum(r.status is Status.FAIL for r in report.results)
    assert tables.pass_rate(report) == passed / (passed + failed)
    counted = [(c.severity, c.failed, c.unknown, c.error) for c in tables.severity_counts(report)]
    assert counted == [
        (severity, *(sum(r.check.severity is severity and r.status is status
                         for r in report.findings)
                     for status in (Status.FAIL, Status.UNKNOWN, Status.ERROR)))
        for severity in sorted(Severity, key=lambda s: -s.rank)]
    assert sum(c.total for c in tables.severity_counts(report)) == len(report.findings)


def test_no_pass_rate_without_a_pass_or_a_fail(make_report: MakeReport) -> None:
    assert tables.pass_rate(make_report([])) is None
