"""End to end through the CLI: `auditor scan --auth cli` against the loopback Azure.

A live scan must keep what Azure returned as evidence, find exactly what an offline scan of the
same rows finds, and say when it could not read everything (exit 3, reports still written).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import EXIT_FINDINGS, EXIT_INCOMPLETE, main
from auditor.normalize import normalize
from auditor.snapshot import read_snapshot
from tests.azure_server import (
    AzureServer,
    environment_row,
    execution_log_row,
    execution_row,
    job_row,
    logs_error,
    role_assignment_row,
    role_definition_row,
    serve,
    subscription_id,
    system_identity,
)

SUB_A, SUB_B = subscription_id(0xA1), subscription_id(0xB2)
AS_OF = "2025-06-01T00:00:00Z"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
PRINCIPAL = "5f1c7a0e-0000-4000-8000-00000000a001"
TAGS = {"owner": "data-platform@contoso.com", "cost-center": "cc-1042", "environment": "prod"}
FINDING_KEYS = ("check_id", "status", "severity", "resource_id", "resource_name",
                "subscription_id", "resource_group", "owner", "message", "evidence")


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AzureServer]:
    with serve(monkeypatch, tmp_path) as server:
        yield server


def _estate(azure: AzureServer) -> dict[str, list[dict[str, Any]]]:
    """A small estate in two subscriptions, with something to find; returns its rows by file."""
    rows = {
        "jobs": [
            job_row(SUB_A, "payroll-export", identity=system_identity(PRINCIPAL), tags=TAGS),
            job_row(SUB_A, "legacy-sync", tags={"owner": "ops@contoso.com"},
                    replica_timeout=86400, retry_limit=10, image="docker.io/library/busybox:1"),
            job_row(SUB_B, "invoice-render", group="rg-billing", tags=TAGS),
        ],
        "environments": [environment_row(SUB_A), environment_row(SUB_B, "rg-billing")],
        "role-definitions": [role_definition_row(CONTRIBUTOR, "Contributor", actions=("*",)),
                             role_definition_row(READER, "Reader")],
        "role-assignments": [role_assignment_row(SUB_A, PRINCIPAL, CONTRIBUTOR)],
    }
    graph = azure.resource_graph
    for sub in (SUB_A, SUB_B):
        graph.add_subscription(sub)
    graph.add("resources", *rows["jobs"], *rows["environments"])
    graph.add("authorizationresources", *rows["role-definitions"], *rows["role-assignments"],
              role_assignment_row(SUB_A, "0c0c0000-0000-4000-8000-00000000b002", READER,
                                  principal_type="User"))
    return rows


def _scan(*args: str) -> int:
    return main(["scan", "--as-of", AS_OF, *args])


def _findings(out: Path) -> list[dict[str, Any]]:
    document = json.loads((out / "findings.json").read_text())
    return [{k: f.get(k) for k in FINDING_KEYS} for f in document["findings"]]


def _export(folder: Path, rows: dict[str, list[dict[str, Any]]]) -> None:
    """The same rows as a person exports them with `az graph query`, one file per type."""
    folder.mkdir()
    for name, data in rows.items():
        document = {"count": len(data), "data": data, "skip_token": None,
                    "total_records": len(data)}
        (folder / f"{name}.json").write_text(json.dumps(document))


def test_a_live_scan_keeps_evidence_and_finds_what_an_offline_scan_of_the_same_rows_finds(
        azure: AzureServer, tmp_path: Path) -> None:
    rows = _estate(azure)
    live = tmp_path / "live"

    code = _scan("--auth", "cli", "--subscription", SUB_A, "--subscription", SUB_B,
                 "--out", str(live))

    assert code == EXIT_FINDINGS  # legacy-sync has no managed identity (high)
    evidence = live / "snapshot"
    for name in ("jobs", "environments", "role-assignments", "role-definitions",
                 "subscriptions"):
        assert (evidence / f"resource-graph-{name}.json").is_file()
    jobs = json.loads((evidence / "resource-graph-jobs.json").read_text())["data"]
    assert sorted(j["id"] for j in jobs) == sorted(j["id"] for j in rows["jobs"])
    collection = json.loads((evidence / "collection.json").read_text())["auditor_collection"]
    assert collection["coverage"]["complete"] is True
    assert collection["arm_endpoint"] == azure.url
    scan = json.loads((live / "findings.json").read_text())["scan"]
    assert (scan["source"], scan["complete"]) == ("live", True)
    live_findings = _findings(live)
    assert any(f["check_id"] == "CAJ-001" and f["resource_name"] == "legacy-sync"
               for f in live_findings)

    export = tmp_path / "export"
    _export(export, rows)
    offline = tmp_path / "offline"
    assert _scan("--snapshot", str(export), "--out", str(offline)) == EXIT_FINDINGS
    assert _findings(offline) == live_findings

    again = tmp_path / "again"  # the evidence itself reproduces the scan
    assert _scan("--snapshot", str(evidence), "--out", str(again)) == EXIT_FINDINGS
    assert _findings(again) == live_findings
    assert azure.az is not None and azure.az.resources_asked() == [
        "https://management.azure.com", "https://api.loganalytics.io"]  # jobs' history: LA
    assert {r.method for r in azure.requests} == {"POST"}


def test_a_denied_subscription_makes_the_scan_incomplete_with_reports_written(
        azure: AzureServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _estate(azure)
    azure.resource_graph.denied_subscriptions = {SUB_B}
    out = tmp_path / "out"

    code = _scan("--auth", "cli", "--subscription", SUB_A, "--subscription", SUB_B,
                 "--out", str(out))

    assert code == EXIT_INCOMPLETE
    assert "INCOMPLETE" in capsys.readouterr().err
    scan = json.loads((out / "findings.json").read_text())["scan"]
    assert scan["complete"] is False
    gaps = scan["coverage"]["gaps"]
    assert [g["scope"] for g in gaps] == [f"subscription {SUB_B}"]
    assert "AuthorizationFailed" in gaps[0]["reason"]
    names = {f["resource_name"] for f in _findings(out)}
    assert "legacy-sync" in names and "invoice-render" not in names
    jobs = json.loads((out / "snapshot" / "resource-graph-jobs.json").read_text())["data"]
    assert sorted(j["id"] for j in jobs) == sorted(
        j["id"] for j in rows["jobs"] if j["subscriptionId"] == SUB_A)


def test_a_scan_that_can_read_nothing_exits_3_with_one_line(
        azure: AzureServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _estate(azure)
    assert azure.az is not None
    azure.az.write(logged_in=False)
    out = tmp_path / "out"

    code = _scan("--auth", "cli", "--subscription", SUB_A, "--out", str(out))

    assert code == EXIT_INCOMPLETE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "az login" in err[0]
    assert not out.exists()


def test_a_live_scan_reads_execution_history_into_the_snapshot_linked_to_its_jobs(
        azure: AzureServer, tmp_path: Path) -> None:
    rows = _estate(azure)
    by_name = {j["name"]: j["id"] for j in rows["jobs"]}
    workspace = rows["environments"][0]["properties"]["appLogsConfiguration"][
        "logAnalyticsConfiguration"]["customerId"]
    billing = rows["environments"][1]  # invoice-render's environment: logs to Azure Monitor
    billing["properties"]["appLogsConfiguration"] = {"destination": "azure-monitor"}
    azure.log_analytics.answer(workspace, [
        execution_log_row("payroll-export", "payroll-export-8f2k1", "2025-05-20T02:00:00Z",
                          "2025-05-20T02:12:00Z"),
        execution_log_row("legacy-sync", "legacy-sync-q9w2e", "2025-05-21T03:00:00Z",
                          "2025-05-21T04:00:00Z", status="Failed", reason="DeadlineExceeded"),
    ])
    azure.executions.add(by_name["invoice-render"], execution_row(
        "invoice-render-x1", "Succeeded", "2025-05-22T05:00:00+00:00",
        "2025-05-22T05:03:00+00:00"))
    out = tmp_path / "out"

    code = _scan("--auth", "cli", "--subscription", SUB_A, "--subscription", SUB_B,
                 "--since", "2025-05-15T00:00:00Z", "--out", str(out))

    assert code == EXIT_FINDINGS  # complete: the history was read in full
    [query] = azure.log_analytics.queries
    assert (query.start, query.end) == (datetime(2025, 5, 15, tzinfo=UTC),
                                        datetime(2025, 6, 1, tzinfo=UTC))  # --until is --as-of
    assert query.query.startswith('let AuditorJobs = dynamic(["legacy-sync", "payroll-export"]);')
    evidence = out / "snapshot"
    la = json.loads((evidence / "executions-log-analytics.json").read_text())["data"]
    api = json.loads((evidence / "executions-api.json").read_text())["data"]
    assert [e["name"] for e in la] == ["legacy-sync-q9w2e", "payroll-export-8f2k1"]
    assert [e["name"] for e in api] == ["invoice-render-x1"]
    history = json.loads((evidence / "collection.json").read_text())["auditor_collection"][
        "history"]
    assert history["sources"] == {by_name["payroll-export"]: "log-analytics",
                                  by_name["legacy-sync"]: "log-analytics",
                                  by_name["invoice-render"]: "executions-api"}
    assert history["window"] == {"since": "2025-05-15T00:00:00+00:00",
                                 "until": "2025-06-01T00:00:00+00:00"}

    executions = {e.name: e for e in normalize(read_snapshot(evidence)).executions}
    assert {name: (e.job_id, e.status) for name, e in executions.items()} == {
        "payroll-export-8f2k1": (by_name["payroll-export"], "Succeeded"),
        "legacy-sync-q9w2e": (by_name["legacy-sync"], "Failed"),
        "invoice-render-x1": (by_name["invoice-render"], "Succeeded"),
    }
    scan = json.loads((out / "findings.json").read_text())["scan"]
    assert scan["complete"] is True
    assert scan["counts"]["executions"] == 3
    assert {(r.method, r.path.split("/")[1]) for r in azure.requests} == {
        ("POST", "providers"), ("POST", "v1"), ("GET", "subscriptions")}  # reads only


def test_history_that_cannot_be_read_makes_the_scan_incomplete(
        azure: AzureServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _estate(azure)
    workspace = rows["environments"][0]["properties"]["appLogsConfiguration"][
        "logAnalyticsConfiguration"]["customerId"]
    azure.log_analytics.script(workspace, lambda q: logs_error(
        403, "InsufficientAccessError", "The provided credentials have insufficient access"))
    out = tmp_path / "out"

    code = _scan("--auth", "cli", "--subscription", SUB_A, "--subscription", SUB_B,
                 "--out", str(out))

    assert code == EXIT_INCOMPLETE
    assert "INCOMPLETE" in capsys.readouterr().err
    gaps = json.loads((out / "findings.json").read_text())["scan"]["coverage"]["gaps"]
    assert [g["scope"] for g in gaps] == [f"Log Analytics workspace {workspace}"]
    assert "Log Analytics Reader" in gaps[0]["reason"]


def test_a_window_that_ends_before_it_starts_is_a_usage_error(
        azure: AzureServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _estate(azure)

    code = _scan("--auth", "cli", "--subscription", SUB_A, "--since", "2025-06-02T00:00:00Z",
                 "--out", str(tmp_path / "out"))

    assert code == 2
    assert "--since" in capsys.readouterr().err
    assert azure.requests == []


def test_an_unreadable_history_query_is_a_usage_error_before_azure_is_asked(
        azure: AzureServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _estate(azure)
    config = tmp_path / "auditor.toml"
    config.write_text(f'[history]\nquery = "{tmp_path / "missing.kql"}"\n', encoding="utf-8")

    code = _scan("--auth", "cli", "--subscription", SUB_A, "--config", str(config),
                 "--out", str(tmp_path / "out"))

    assert code == 2
    assert "history.query" in capsys.readouterr().err
    assert azure.requests == []
