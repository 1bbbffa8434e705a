"""The sample scan end to end, read back as a person would: the README's first command."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from auditor.cli import main

AS_OF = "2026-11-20T00:00:00Z"


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample") / "reports"
    assert main(["scan", "--sample", "--out", str(folder), "--as-of", AS_OF]) == 1
    return folder


def test_writes_every_output(out: Path) -> None:
    assert {p.name for p in out.iterdir()} == {
        "report.xlsx", "report.md", "report.html", "findings.json", "findings.csv",
        "findings.sarif", "cost.csv", "cost.parquet", "manifest.json", "owners", "snapshot"}


def test_findings_sheet_lists_the_sample_failures(out: Path) -> None:
    document = json.loads((out / "findings.json").read_text())
    failing = {(f["check_id"], f["resource_name"]) for f in document["findings"]
               if f["status"] == "fail"}
    assert ("CAJ-001", "customer-churn-scoring") in failing
    sheet = load_workbook(out / "report.xlsx")["Findings"]
    header = [c.value for c in sheet[1]]
    check, name, status = (header.index(h) for h in ("Check", "Resource name", "Status"))
    listed = {(row[check], row[name]) for row in sheet.iter_rows(min_row=2, values_only=True)
              if row[status] == "fail"}
    assert listed == failing
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref


def test_controls_sheet_matches_the_results(out: Path) -> None:
    book = load_workbook(out / "report.xlsx")
    rows = list(book["Controls"].iter_rows(values_only=True))
    header = rows[0]
    table = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    im8 = next(r for r in table if r["Control"] == "IM-8")
    assert im8["Checks"] == "CAJ-003, CAJ-004"
    # Jobs that failed CAJ-003 or CAJ-004 without a waiver, from the Results sheet.
    results = list(book["Results"].iter_rows(values_only=True))
    cols = results[0]
    failed_jobs = {r[cols.index("Resource id")] for r in results[1:]
                   if r[cols.index("Check")] in ("CAJ-003", "CAJ-004")
                   and r[cols.index("Status")] == "fail" and not r[cols.index("Waiver")]}
    assert im8["Failed"] == len(failed_jobs)
    assert im8["Pass rate"] == pytest.approx(im8["Passed"] / im8["Jobs tested"])
    frameworks = {r["Framework"] for r in table}
    assert len(frameworks) == 5


def test_waivers_are_applied_expired_and_stale(out: Path) -> None:
    document = json.loads((out / "findings.json").read_text())
    states = {w["check_id"]: w["state"] for w in document["waivers"]}
    assert states == {"CAJ-003": "applied", "CAJ-011": "expired", "CAJ-020": "stale"}
    waived = [f for f in document["findings"] if f["waiver"]]
    assert [(f["check_id"], f["resource_name"]) for f in waived] == [
        ("CAJ-003", "reporting-cube-rebuild")]
    assert waived[0]["status"] == "fail"


def test_no_planted_secret_leaks_into_any_report(out: Path) -> None:
    """Every literal CAJ-004 found in the sample: no 5 characters of it in any report."""
    snapshot = "".join(p.read_text() for p in (out / "snapshot").glob("*.json"))
    planted = ["AccountKey=", "sig=", "postgres://etl_loader:", "FLYWAY_PASSWORD"]
    assert all(marker in snapshot for marker in planted), "the sample plants these"
    secrets = _planted_values(out / "snapshot")
    assert len(secrets) == 4
    reports = {p.name: p.read_bytes().decode("utf-8", "replace")
               for p in out.iterdir() if p.is_file() and p.suffix in (".md", ".json", ".html")}
    reports["report.xlsx"] = _xlsx_text(out / "report.xlsx")
    for secret in secrets:
        for start in range(len(secret) - 4):
            window = secret[start:start + 5]
            for name, text in reports.items():
                assert window not in text, f"{window!r} of a secret is in {name}"


def _planted_values(snapshot: Path) -> list[str]:
    """The secret parts of the planted literals (the key, signature and passwords)."""
    strings: list[str] = []
    envs: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "name" in node and isinstance(node.get("value"), str):
                envs.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            strings.append(node)

    for path in snapshot.glob("*.json"):
        walk(json.loads(path.read_text()))
    patterns = (r"AccountKey=([^;]+)", r"[?&]sig=([^&'\s]+)", r"postgres://[^:/@]+:([^@/]+)@")
    values = [m for text in strings for p in patterns for m in re.findall(p, text)]
    values += [e["value"] for e in envs if e["name"] == "FLYWAY_PASSWORD"]
    return sorted(set(values))


def _xlsx_text(path: Path) -> str:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return "".join(archive.read(n).decode("utf-8", "replace") for n in archive.namelist())


def test_debug_log_holds_no_planted_secret(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug", "scan", "--sample", "--out", str(tmp_path / "r"),
                 "--as-of", AS_OF]) == 1
    logged = capsys.readouterr()
    text = logged.out + logged.err
    for secret in _planted_values(tmp_path / "r" / "snapshot"):
        for start in range(len(secret) - 4):
            assert secret[start:start + 5] not in text


def test_cost_anomalies_are_the_planted_ones(out: Path) -> None:
    document = json.loads((out / "findings.json").read_text())
    anomalies = {f["resource_name"]: f for f in document["findings"]
                 if f["check_id"] == "CAJ-050" and f["status"] == "fail"}
    # ml-batch-inference: a queue backlog day (80 extra runs); ml-model-training: two
    # training runs on one day where one is usual.
    assert set(anomalies) == {"ml-batch-inference", "ml-model-training"}
    assert "2026-11-17" in anomalies["ml-batch-inference"]["evidence"][0]
    assert "more executions" in anomalies["ml-batch-inference"]["evidence"][0]


def test_finops_sheets(out: Path) -> None:
    book = load_workbook(out / "report.xlsx")
    assert {"Executions", "Cost by owner", "Cost by job", "Free grant", "Cost anomalies"} <= set(
        book.sheetnames)
    executions = _records(book["Executions"])
    payment = next(r for r in executions if r["Job"] == "payment-reconciliation")
    assert payment["Failure rate"] > 0.2 and payment["History source"] == "export"
    by_job = _records(book["Cost by job"])
    by_owner = _records(book["Cost by owner"])
    assert sum(r["Estimated cost (USD)"] for r in by_owner) == pytest.approx(
        sum(r["Estimated cost (USD)"] for r in by_job), abs=0.01)
    assert "(unallocated)" in {r["Owner"] for r in by_owner}, "untagged cost is kept"
    assert book["Cost by owner"]._charts, "a native chart"
    allocation = _records(book["Cost allocation"])
    for dimension in ("owner tag", "cost center tag", "environment tag", "subscription",
                      "resource group"):
        rows = [r for r in allocation if r["Dimension"] == dimension]
        assert sum(r["Estimated cost (USD)"] for r in rows) == pytest.approx(
            sum(r["Estimated cost (USD)"] for r in by_job), abs=0.01), dimension
    profiles = {r["Profile"]: r for r in _records(book["Dedicated profiles"])}
    assert set(profiles) == {"D4-batch", "E8-ml"}
    assert profiles["D4-batch"]["Idle capacity (USD)"] > 0, "minimum instances nobody used"
    anomalies = _records(book["Cost anomalies"])
    assert {r["Job"] for r in anomalies} == {"ml-batch-inference", "ml-model-training"}


def test_markdown_names_top_spenders_anomalies_and_unhealthy_jobs(out: Path) -> None:
    text = (out / "report.md").read_text()
    section = text.split("## Cost and execution health", 1)[1]
    assert "### Top spenders" in section and "ml-model-training" in section
    assert "### Cost anomalies (2)" in section
    assert "payment-reconciliation" in section.split("### Unhealthy jobs", 1)[1]


def _records(sheet: Any) -> list[dict[str, Any]]:
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def test_manifest_sheet_hashes_the_evidence_and_summary_states_the_trend(out: Path) -> None:
    import hashlib

    book = load_workbook(out / "report.xlsx")
    rows = list(book["Manifest"].iter_rows(values_only=True))
    header = rows.index(("Input file (snapshot/)", "SHA-256", "Bytes"))
    listed = {name: digest for name, digest, _ in rows[header + 1:]}
    assert set(listed) == {p.name for p in (out / "snapshot").iterdir()}
    for name, digest in listed.items():
        assert hashlib.sha256((out / "snapshot" / name).read_bytes()).hexdigest() == digest
    summary = [row[0] for row in book["Summary"].iter_rows(values_only=True) if row]
    assert "Trend" in summary or "New since the previous scan" in summary


def test_top_risks_come_first(out: Path) -> None:
    text = (out / "report.md").read_text()
    assert text.index("## Top risks") < text.index("## Findings")
    assert "1. **critical**" in text.split("## Top risks", 1)[1]
