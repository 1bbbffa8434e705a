"""findings.json: the documented schema, one object per finding, the same bytes every time."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from auditor.check import Status
from auditor.coverage import Gap
from auditor.model import Job
from auditor.results import ScanReport
from auditor.waivers import Waiver
from reports.json_report import write_findings_json

MakeJob = Callable[..., Job]
MakeReport = Callable[..., ScanReport]
MakeWaiver = Callable[..., Waiver]

SCAN_KEYS = ["id", "started", "finished", "as_of", "source", "source_detail", "tool_version",
             "settings_digest", "scope", "complete", "coverage", "other_types", "counts"]
CHECK_KEYS = ["id", "title", "severity", "category", "evaluated", "passed", "failed", "waived",
              "not_applicable", "unknown", "error"]
FINDING_KEYS = ["check_id", "title", "status", "severity", "resource_id", "resource_name",
                "subscription_id", "resource_group", "owner", "subject", "message", "evidence",
                "remediation", "waiver", "expired_waiver", "fingerprint", "history"]


def load(report: ScanReport, folder: Path) -> Any:
    return json.loads(write_findings_json(report, folder).read_text(encoding="utf-8"))


def test_schema_keys_in_documented_order(make_report: MakeReport, tmp_path: Path) -> None:
    document = load(make_report(), tmp_path)
    assert list(document) == ["schema_version", "scan", "checks", "findings", "waivers",
                              "history", "resolved", "changes"]
    assert document["schema_version"] == 1
    assert list(document["scan"]) == SCAN_KEYS
    assert all(list(c) == CHECK_KEYS for c in document["checks"])
    assert all(list(f) == FINDING_KEYS for f in document["findings"])


def test_scan_section_states_times_in_utc_and_the_counts(make_report: MakeReport,
                                                         tmp_path: Path) -> None:
    report = make_report(gaps=[Gap("subscription s", "resource-graph", "403")],
                         other_types={"microsoft.web/sites": 2})
    scan = load(report, tmp_path)["scan"]
    assert scan["started"] == "2024-05-01T10:00:00Z"
    assert scan["finished"] == "2024-05-01T10:00:07Z"
    assert scan["complete"] is False
    assert scan["coverage"]["gaps"] == [
        {"scope": "subscription s", "source": "resource-graph", "reason": "403"}]
    assert scan["other_types"] == {"microsoft.web/sites": 2}
    assert scan["settings_digest"] == report.settings.digest()
    assert scan["counts"] == {"jobs": 3, "environments": 1, "executions": 0,
                              "role_assignments": 0, "results": 12, "findings": 3,
                              "waived": 0}


def test_one_finding_per_non_passing_result_in_report_order(make_report: MakeReport,
                                                            tmp_path: Path) -> None:
    report = make_report()
    findings = load(report, tmp_path)["findings"]
    non_passing = [r for r in report.results
                   if r.status in (Status.FAIL, Status.UNKNOWN, Status.ERROR)]
    assert len(findings) == len(non_passing) == 3
    assert [(f["check_id"], f["resource_name"]) for f in findings] == [
        (r.check.id, r.job.name) for r in report.findings]
    assert [f["status"] for f in findings] == ["fail", "unknown", "fail"]


def test_finding_carries_owner_evidence_and_remediation(make_report: MakeReport,
                                                        tmp_path: Path) -> None:
    findings = load(make_report(), tmp_path)["findings"]
    tagged = next(f for f in findings if f["check_id"] == "T-003")
    assert tagged["owner"] == "alice"
    assert tagged["subject"] == "alice"
    assert tagged["evidence"] == ["tag 'owner' = alice", "owners must start with 'team-'"]
    assert tagged["remediation"] == "Tag the owner."
    assert tagged["resource_group"] == "rg-a"


def test_checks_carry_their_counts(make_report: MakeReport, tmp_path: Path) -> None:
    checks = load(make_report(), tmp_path)["checks"]
    owner = next(c for c in checks if c["id"] == "T-003")
    assert owner == {"id": "T-003", "title": "Owner tag names a team", "severity": "low",
                     "category": "Governance", "evaluated": 3, "passed": 1, "failed": 1,
                     "waived": 0, "not_applicable": 1, "unknown": 0, "error": 0}


def test_same_report_gives_identical_bytes(make_report: MakeReport, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    report = make_report()
    written = write_findings_json(report, first).read_bytes()
    assert write_findings_json(report, second).read_bytes() == written
    assert write_findings_json(make_report(), second).read_bytes() == written  # rebuilt input


def test_values_are_exact_not_escaped(make_job: MakeJob, make_report: MakeReport,
                                      tmp_path: Path) -> None:
    name = '=cmd|"/c calc"!A1 <b>|\n`x`'
    findings = load(make_report([make_job(name=name, identity=None)]), tmp_path)["findings"]
    assert findings[0]["resource_name"] == name


def test_waived_finding_keeps_its_status_and_names_its_waiver(
        make_report: MakeReport, make_waiver: MakeWaiver, tmp_path: Path) -> None:
    live = make_waiver()
    stale = make_waiver(check_id="T-002", resource="*/jobs/nothing", ticket="CHG-2")
    document = load(make_report(waivers=[live, stale]), tmp_path)
    waived = next(f for f in document["findings"] if f["check_id"] == "T-001")
    assert waived["status"] == "fail"
    assert waived["waiver"] == live.to_dict()
    assert waived["waiver"]["expires"] == "2024-12-31"
    assert waived["expired_waiver"] is None
    assert document["scan"]["counts"]["waived"] == 1
    assert [(w["state"], w["ticket"], w["matched"]) for w in document["waivers"]] == [
        ("applied", "CHG-1", 1), ("stale", "CHG-2", 0)]
    assert next(c for c in document["checks"] if c["id"] == "T-001")["waived"] == 1
