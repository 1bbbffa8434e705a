"""findings.sarif: valid against the official SARIF 2.1.0 schema, with levels, fingerprints,
suppressions, coverage and history that code-scanning tools read.

tests/reports/schemas/sarif-schema-2.1.0.json is the OASIS schema (errata 01, the `id` below),
copied from the oasis-tcs/sarif-spec repository (Schemata/sarif-schema-2.1.0.json); its SHA-256 is
pinned so that nobody loosens it to make a test pass. `format` keywords (uri, date-time) need
optional packages that jsonschema does not install; the tests check those fields themselves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import jsonschema
import pytest

from auditor.coverage import Gap
from auditor.fingerprint import fingerprint
from auditor.history import HistoryStore
from auditor.model import Job
from auditor.results import ScanReport
from auditor.scan import ScanRequest, run_scan
from auditor.settings import load_settings
from auditor.waivers import Waiver
from reports.sarif import document, write_sarif
from tests.factories import job_row

MakeJob = Callable[..., Job]
MakeReport = Callable[..., ScanReport]
MakeWaiver = Callable[..., Waiver]

SCHEMA_PATH = Path(__file__).parent / "schemas" / "sarif-schema-2.1.0.json"
SCHEMA_SHA256 = "ddddcccbf95c7c50c037b5b07eff4140556278ca574ff374db46786b5fce7949"
GOLDEN_SARIF = Path(__file__).parent / "golden" / "expected" / "findings.sarif"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def assert_valid(validator: jsonschema.Draft4Validator, log: Any) -> None:
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    _check_formats(log)


def _check_formats(log: Any) -> None:
    """What the schema's `format` keywords ask, checked here (see the module docstring)."""
    assert urlsplit(log["$schema"]).scheme == "https"
    run = log["runs"][0]
    base = run["originalUriBaseIds"]["AZURE_RESOURCE_MANAGER"]["uri"]
    assert urlsplit(base).scheme == "https" and base.endswith("/")
    for rule in run["tool"]["driver"]["rules"]:
        if "helpUri" in rule:
            assert urlsplit(rule["helpUri"]).scheme == "https"
    for invocation in run["invocations"]:
        for key in ("startTimeUtc", "endTimeUtc"):
            assert datetime.fromisoformat(invocation[key].replace("Z", "+00:00")).tzinfo
    for result in run["results"]:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert not urlsplit(uri).scheme and not uri.startswith("/")  # a relative reference
        assert " " not in uri and unquote(uri) == unquote(uri).lower()


def sarif(report: ScanReport) -> Any:
    return json.loads(json.dumps(document(report)))


def test_the_vendored_schema_is_the_official_one(validator: jsonschema.Draft4Validator) -> None:
    assert hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest() == SCHEMA_SHA256
    schema = validator.schema
    assert schema["id"] == ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
                            "sarif-schema-2.1.0.json")
    assert len(schema["definitions"]) == 52


def test_the_schema_rejects_what_sarif_forbids(validator: jsonschema.Draft4Validator,
                                               make_report: MakeReport) -> None:
    """So a passing validation means something: a wrong level, a stray key, a missing message."""
    log = sarif(make_report())
    broken = json.loads(json.dumps(log))
    broken["runs"][0]["results"][0]["level"] = "critical"
    assert not validator.is_valid(broken)
    broken = json.loads(json.dumps(log))
    broken["runs"][0]["results"][0]["severity"] = "high"
    assert not validator.is_valid(broken)
    broken = json.loads(json.dumps(log))
    del broken["runs"][0]["results"][0]["message"]
    assert not validator.is_valid(broken)


def test_valid_with_waivers_gaps_and_hostile_text(validator: jsonschema.Draft4Validator,
                                                  make_job: MakeJob, make_report: MakeReport,
                                                  make_waiver: MakeWaiver) -> None:
    jobs = [make_job(name='=cmd|"/c calc"!A1 <b>\n', identity=None),
            make_job(name="job-b", identity=None, tags={"owner": "alice"}),
            make_job(name="job-c", resource_group="RG C", replica_timeout=None, tags={})]
    report = make_report(jobs, waivers=[make_waiver()],
                         gaps=[Gap("subscription s", "resource-graph", "403 Forbidden")])
    assert_valid(validator, sarif(report))


def test_golden_sarif_of_the_real_catalogue_is_valid(
        validator: jsonschema.Draft4Validator) -> None:
    assert_valid(validator, json.loads(GOLDEN_SARIF.read_text(encoding="utf-8")))


def test_rules_carry_the_catalogue(make_report: MakeReport) -> None:
    report = make_report()
    rules = sarif(report)["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [c.id for c in report.checks]
    identity = rules[0]
    assert identity["name"] == "JobHasAnIdentity"
    assert identity["shortDescription"] == {"text": "Job has an identity"}
    assert identity["fullDescription"] == {"text": "r"}
    assert "az containerapp job identity assign" in identity["help"]["text"]
    assert identity["help"]["markdown"].startswith("**Remediation:**")
    assert identity["defaultConfiguration"] == {"level": "error"}
    assert identity["properties"]["tags"] == ["security", "Identity"]
    assert identity["properties"]["security-severity"] == "8.0"
    severities = {r["id"]: r["properties"]["security-severity"] for r in rules}
    assert severities == {"T-001": "8.0", "T-002": "5.5", "T-003": "3.0", "T-004": "9.5"}


def test_levels_follow_severity(make_report: MakeReport) -> None:
    results = sarif(make_report())["runs"][0]["results"]
    levels = {(r["ruleId"], r["level"]) for r in results}
    # T-001 high -> error, T-002 medium (unknown) -> warning, T-003 low -> note.
    assert levels == {("T-001", "error"), ("T-002", "warning"), ("T-003", "note")}
    unknown = next(r for r in results if r["ruleId"] == "T-002")
    assert unknown["properties"]["status"] == "unknown"
    assert all(r["ruleIndex"] == ["T-001", "T-002", "T-003", "T-004"].index(r["ruleId"])
               for r in results)


def test_location_names_the_resource(make_report: MakeReport) -> None:
    report = make_report()
    result = sarif(report)["runs"][0]["results"][0]
    job = report.findings[0].job
    location = result["locations"][0]
    uri = location["physicalLocation"]["artifactLocation"]
    assert uri["uriBaseId"] == "AZURE_RESOURCE_MANAGER"
    assert urljoin("https://management.azure.com/", uri["uri"]) == (
        "https://management.azure.com" + job.id.lower())
    assert location["logicalLocations"] == [
        {"name": job.name, "fullyQualifiedName": job.id, "kind": "resource"}]
    assert result["message"]["text"].startswith(f"{job.name}: ")


def test_suppression_for_a_waived_finding_only(make_report: MakeReport,
                                               make_waiver: MakeWaiver) -> None:
    expired = make_waiver(check_id="T-003", resource="*/jobs/job-b", ticket="CHG-9",
                          expires=datetime(2020, 1, 1).date())
    results = sarif(make_report(waivers=[make_waiver(), expired]))["runs"][0]["results"]
    waived = next(r for r in results if r["ruleId"] == "T-001")
    assert waived["suppressions"] == [{
        "kind": "external", "status": "accepted", "justification": "Replaced in Q3",
        "properties": {"approver": "ciso@contoso.com", "ticket": "CHG-1",
                       "expires": "2024-12-31", "source": "waivers.toml:2"}}]
    lapsed = next(r for r in results if r["ruleId"] == "T-003")
    assert "suppressions" not in lapsed
    assert lapsed["properties"]["expiredWaiver"]["ticket"] == "CHG-9"
    assert all("suppressions" not in r for r in results if r["ruleId"] == "T-002")


def test_incomplete_scan_is_not_a_successful_execution(make_report: MakeReport) -> None:
    run = sarif(make_report(gaps=[Gap("subscription s", "resource-graph", "403")]))["runs"][0]
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"] == [
        {"level": "error", "message": {"text": "Not read: subscription s (resource-graph): 403"},
         "descriptor": {"id": "coverage-gap"}}]
    complete = sarif(make_report())["runs"][0]["invocations"][0]
    assert complete["executionSuccessful"] is True
    assert complete["toolExecutionNotifications"] == []


def test_fingerprints_differ_for_different_subjects(make_job: MakeJob,
                                                    make_report: MakeReport) -> None:
    def owner_finding(owner: str) -> str:
        report = make_report([make_job(tags={"owner": owner})])
        result = next(r for r in sarif(report)["runs"][0]["results"] if r["ruleId"] == "T-003")
        prints = result["partialFingerprints"]
        assert prints["primaryLocationLineHash"] == prints["auditorFinding/v1"]
        return str(prints["auditorFinding/v1"])

    assert owner_finding("alice") != owner_finding("bob")
    assert owner_finding("alice") == owner_finding("alice")
    job = make_job().id
    assert fingerprint("T-003", job, "alice") == fingerprint("T-003", job.upper(), "alice")
    assert fingerprint("T-003", job, "alice") != fingerprint("T-003", job, "Alice")


def _scan(folder: Path, out: Path, minute: int, history: Path | None = None) -> Any:
    request = ScanRequest(source="snapshot", out=out, settings=load_settings(), snapshot=folder,
                          as_of=datetime(2026, 11, 20, tzinfo=UTC), history=history)
    run_scan(request, clock=lambda: datetime(2026, 11, 20, 8, minute, tzinfo=UTC))
    return json.loads((out / "findings.sarif").read_text(encoding="utf-8"))


def _prints(log: Any) -> list[tuple[str, str]]:
    return [(r["ruleId"], r["partialFingerprints"]["auditorFinding/v1"])
            for r in log["runs"][0]["results"]]


def test_fingerprints_are_equal_across_two_scans(tmp_path: Path) -> None:
    """Two scans (two scan ids) of one estate: every result keeps its fingerprint."""
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "jobs.json").write_text(json.dumps([job_row(identity=None),
                                                  job_row("second", tags={})]))
    first, second = _scan(folder, tmp_path / "a", 1), _scan(folder, tmp_path / "b", 2)
    assert first["runs"][0]["properties"]["scanId"] != second["runs"][0]["properties"]["scanId"]
    assert _prints(first) == _prints(second)
    assert len(set(_prints(first))) == len(_prints(first)) > 1


def test_history_gives_baseline_state(tmp_path: Path,
                                      validator: jsonschema.Draft4Validator) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "jobs.json").write_text(json.dumps([job_row(identity=None)]))
    store = tmp_path / "history.sqlite"
    first = _scan(folder, tmp_path / "a", 1, store)
    assert all("baselineState" not in r for r in first["runs"][0]["results"])  # no baseline yet
    (folder / "jobs.json").write_text(json.dumps([job_row(identity=None), job_row("new", tags={})]))
    second = _scan(folder, tmp_path / "b", 2, store)
    assert_valid(validator, second)
    run = second["runs"][0]
    assert run["baselineGuid"] == first["runs"][0]["automationDetails"]["guid"]
    states = {(r["ruleId"], r["locations"][0]["logicalLocations"][0]["name"]): r["baselineState"]
              for r in run["results"]}
    assert states[("CAJ-001", "nightly-export")] == "unchanged"
    assert states[("CAJ-030", "new")] == "new"


def test_written_file_is_the_document(make_report: MakeReport, tmp_path: Path) -> None:
    report = make_report()
    path = write_sarif(report, tmp_path)
    assert path.name == "findings.sarif"
    assert json.loads(path.read_text(encoding="utf-8")) == sarif(report)
    assert sarif(replace(report, history=None))["version"] == "2.1.0"
    with HistoryStore(tmp_path / "h.sqlite") as store:  # a history with no baseline yet
        history = store.compare(report)
    assert history.baseline is None and history.new == len(report.findings)
