"""Execution history from the Container Apps executions API, for jobs without a workspace.

The real ContainerAppsAPIClient against the loopback ARM: jobs whose environment sends its logs
anywhere but Log Analytics (or whose environment the scan did not read) get their history from
`GET .../jobs/{job}/executions`, every page of it, and the record says so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auditor.collect.history import HistoryRequest
from auditor.collect.live import collect
from auditor.coverage import Coverage
from auditor.normalize import normalize
from auditor.settings import load_settings
from auditor.snapshot import read_snapshot
from tests.azure_server import (
    AzureServer,
    arm_error,
    environment_row,
    execution_log_row,
    execution_row,
    job_row,
)
from tests.collect.helpers import (
    SINCE,
    SUB_A,
    UNTIL,
    FakeTime,
    azure_settings,
    collection_record,
    written,
)

WS = "f0e1d2c3-0000-4000-8000-000000000001"
API_FILE = "executions-api"
SOURCE = "Container Apps executions API"
EXECUTIONS_PATH = "/executions"

Run = Callable[[], Coverage]


def _environment(group: str, destination: str | None) -> dict[str, Any]:
    row = environment_row(SUB_A, group, workspace=WS)
    row["properties"]["appLogsConfiguration"] = (
        {"destination": destination} if destination else {})
    return row


@pytest.fixture
def jobs(azure: AzureServer) -> dict[str, dict[str, Any]]:
    """`monitored` logs to Azure Monitor, `silent` has no log destination, `orphan`'s environment
    is not in the scan, `logged` logs to Log Analytics."""
    graph = azure.resource_graph
    graph.add_subscription(SUB_A)
    rows = {"monitored": job_row(SUB_A, "monitored", group="rg-monitor"),
            "silent": job_row(SUB_A, "silent", group="rg-silent"),
            "orphan": job_row(SUB_A, "orphan", group="rg-orphan"),
            "logged": job_row(SUB_A, "logged")}
    graph.add("resources", *rows.values(), _environment("rg-monitor", "azure-monitor"),
              _environment("rg-silent", None), environment_row(SUB_A, workspace=WS))
    return rows


@pytest.fixture
def run(fake_time: FakeTime, snapshot_dir: Path) -> Run:
    def run_collect() -> Coverage:
        return collect(azure_settings(subscriptions=[SUB_A], max_retries=1), snapshot_dir,
                       sleep=fake_time.sleep, clock=fake_time.clock,
                       history=HistoryRequest(load_settings().history, SINCE, UNTIL))

    return run_collect


def _api_requests(azure: AzureServer) -> list[Any]:
    return [r for r in azure.requests if r.path.endswith(EXECUTIONS_PATH)]


def test_jobs_without_a_workspace_read_every_page_of_the_executions_api(
        azure: AzureServer, jobs: dict[str, dict[str, Any]], run: Run,
        snapshot_dir: Path) -> None:
    monitored = jobs["monitored"]["id"]
    azure.executions.page_size = 2
    azure.executions.add(monitored, *(
        execution_row(f"monitored-{n}", "Succeeded", f"2025-05-{n + 10:02}T02:00:00+00:00",
                      f"2025-05-{n + 10:02}T02:05:00+00:00") for n in range(5)))
    azure.executions.add(monitored, execution_row("monitored-old", "Failed",
                                                  "2025-04-02T02:00:00+00:00",
                                                  "2025-04-02T02:05:00+00:00"))
    azure.executions.add(jobs["silent"]["id"],
                         execution_row("silent-1", "Running", "2025-05-30T10:00:00+00:00"))
    azure.executions.add(jobs["orphan"]["id"])
    azure.log_analytics.answer(WS, [execution_log_row("logged", "logged-1", "2025-05-03T01:00:00Z",
                                                      "2025-05-03T01:02:00Z")])

    coverage = run()

    assert coverage.complete, coverage.gaps
    monitored_calls = [r for r in _api_requests(azure) if "/rg-monitor/" in r.path]
    assert len(monitored_calls) == 3  # 6 executions, pages of 2, following nextLink
    assert [r.params.get("$skiptoken") for r in monitored_calls] == [None, "2", "4"]
    assert all(r.params["api-version"] == "2026-07-01" for r in monitored_calls)
    assert {r.method for r in _api_requests(azure)} == {"GET"}
    assert not any(r.path.endswith(f"/logged{EXECUTIONS_PATH}") for r in azure.requests)

    rows = written(snapshot_dir, API_FILE)
    assert [r["name"] for r in rows] == [
        *(f"monitored-{n}" for n in range(5)), "silent-1"]  # monitored-old is before the window
    first = rows[0]
    assert first["id"] == f"{monitored}/executions/monitored-0"
    assert first["type"] == "Microsoft.App/jobs/executions"
    assert first["properties"]["status"] == "Succeeded"
    assert first["properties"]["template"]["containers"][0]["name"] == "worker"  # as returned
    assert [r["name"] for r in written(snapshot_dir, "executions-log-analytics")] == ["logged-1"]

    estate = normalize(read_snapshot(snapshot_dir))
    linked = {e.name: e.job_id for e in estate.executions}
    assert linked["monitored-3"] == monitored
    assert linked["silent-1"] == jobs["silent"]["id"]
    assert linked["logged-1"] == jobs["logged"]["id"]

    history = collection_record(snapshot_dir)["history"]
    assert history["sources"] == {jobs["monitored"]["id"]: "executions-api",
                                  jobs["silent"]["id"]: "executions-api",
                                  jobs["orphan"]["id"]: "executions-api",
                                  jobs["logged"]["id"]: "log-analytics"}
    reasons = history["fallback_reasons"]
    assert "sends its logs to azure-monitor" in reasons[monitored]
    assert "no destination" in reasons[jobs["silent"]["id"]]
    assert "was not read by this scan" in reasons[jobs["orphan"]["id"]]
    assert any("last 100 executions" in c for c in history["caveats"])
    summary = history["executions_api"]["jobs"][monitored]
    assert (summary["listed"], summary["kept"], summary["outside_window"], summary["pages"]) == (
        6, 5, 1, 3)


def test_a_job_whose_last_100_executions_start_after_the_window_is_a_gap(
        azure: AzureServer, jobs: dict[str, dict[str, Any]], run: Run,
        snapshot_dir: Path) -> None:
    monitored = jobs["monitored"]["id"]
    azure.executions.add(monitored, *(
        execution_row(f"monitored-{n:03}", "Succeeded",
                      f"2025-05-{20 + n // 24:02}T{n % 24:02}:00:00+00:00",
                      f"2025-05-{20 + n // 24:02}T{n % 24:02}:10:00+00:00") for n in range(100)))
    for name in ("silent", "orphan"):
        azure.executions.add(jobs[name]["id"])

    coverage = run()

    [gap] = [g for g in coverage.gaps if g.source == SOURCE]
    assert gap.scope == f"job {monitored}"
    assert "last 100 executions" in gap.reason and "2025-05-20T00:00:00+00:00" in gap.reason
    assert len(written(snapshot_dir, API_FILE)) == 100
    assert collection_record(snapshot_dir)["history"]["sources"][monitored] == "executions-api"


def test_a_job_whose_executions_cannot_be_listed_is_a_gap_and_the_scan_incomplete(
        azure: AzureServer, jobs: dict[str, dict[str, Any]], run: Run,
        snapshot_dir: Path) -> None:
    azure.executions.fail(jobs["monitored"]["id"], arm_error(
        403, "AuthorizationFailed", "The client does not have authorization to perform action "
        "'Microsoft.App/jobs/executions/read'."))
    azure.executions.add(jobs["silent"]["id"],
                         execution_row("silent-1", "Succeeded", "2025-05-30T10:00:00+00:00",
                                       "2025-05-30T10:01:00+00:00"))
    # `orphan` was never set up: the server answers 404, as for a job deleted meanwhile.

    coverage = run()

    assert not coverage.complete
    gaps = {g.scope: g.reason for g in coverage.gaps if g.source == SOURCE}
    assert "AuthorizationFailed (HTTP 403)" in gaps[f"job {jobs['monitored']['id']}"]
    assert "ResourceNotFound (HTTP 404)" in gaps[f"job {jobs['orphan']['id']}"]
    assert [r["name"] for r in written(snapshot_dir, API_FILE)] == ["silent-1"]
    sources = collection_record(snapshot_dir)["history"]["sources"]
    assert sources[jobs["monitored"]["id"]] == "none"
    assert sources[jobs["silent"]["id"]] == "executions-api"
    assert collection_record(snapshot_dir)["coverage"]["complete"] is False
