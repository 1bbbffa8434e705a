"""Execution history from Log Analytics: the real LogsQueryClient against the loopback service.

The stand-in runs no KQL: each workspace answers canned rows in the executions query's result
contract, or a partial result, or an error, possibly depending on the timespan asked for. These
tests hold what auditor does with each answer: rows become execution resources of the right job,
anything missing becomes a Gap naming the workspace, and a result too big for the service is asked
for again in halves, merged without duplicates.
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import AzureCliCredential
from azure.monitor.query import LogsQueryClient, LogsTable
from urllib3.response import HTTPResponse

from auditor.collect import log_analytics
from auditor.collect.clouds import resolve
from auditor.collect.history import HistoryRequest
from auditor.collect.live import collect
from auditor.collect.resource_graph import Throttle
from auditor.coverage import Coverage
from auditor.errors import InputError
from auditor.normalize import normalize
from auditor.settings import load_settings
from auditor.snapshot import EXECUTIONS, encoded_row, read_snapshot, write_row_texts, write_rows
from tests.azure_server import (
    EXECUTION_COLUMNS,
    RESULT_TOO_LARGE,
    AzureServer,
    LogsQuery,
    Reply,
    environment_row,
    execution_log_row,
    job_row,
    logs_error,
    logs_partial,
    logs_tables,
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
WS_B = "f0e1d2c3-0000-4000-8000-0000000000b2"
LA_FILE = "executions-log-analytics"
SOURCE = "Log Analytics executions"

RunHistory = Callable[..., Coverage]


@pytest.fixture
def estate(azure: AzureServer) -> dict[str, str]:
    """Two jobs in one environment whose logs go to workspace WS; returns job ids by name."""
    graph = azure.resource_graph
    graph.add_subscription(SUB_A)
    jobs = [job_row(SUB_A, "nightly"), job_row(SUB_A, "hourly")]
    graph.add("resources", *jobs, environment_row(SUB_A, workspace=WS))
    return {j["name"]: j["id"] for j in jobs}


@pytest.fixture
def run_history(fake_time: FakeTime, snapshot_dir: Path) -> RunHistory:
    """collect() with history over [SINCE, UNTIL); keyword arguments change [history] settings,
    `azure=` a dict of [azure] changes."""

    def run(azure: dict[str, Any] | None = None, **history: Any) -> Coverage:
        settings = load_settings().history.model_copy(update=history)
        return collect(azure_settings(subscriptions=[SUB_A], **(azure or {})), snapshot_dir,
                       sleep=fake_time.sleep, clock=fake_time.clock,
                       history=HistoryRequest(settings, SINCE, UNTIL))

    return run


def _gaps(coverage: Coverage, source: str = SOURCE) -> list[tuple[str, str]]:
    return [(g.scope, g.reason) for g in coverage.gaps if g.source == source]


def _spans(azure: AzureServer) -> list[tuple[datetime | None, datetime | None]]:
    return [(q.start, q.end) for q in azure.log_analytics.queries]


def test_rows_become_executions_of_their_jobs_with_status_times_and_reason(
        azure: AzureServer, estate: dict[str, str], run_history: RunHistory,
        snapshot_dir: Path) -> None:
    azure.log_analytics.answer(WS, [
        execution_log_row("hourly", "hourly-k2j4h1a", "2025-05-10T01:00:02Z",
                          "2025-05-10T01:31:40Z", status="Failed", reason="DeadlineExceeded"),
        execution_log_row("nightly", "nightly-29120411", "2025-05-10T02:00:01Z",
                          "2025-05-10T02:07:44Z"),
        execution_log_row("nightly", "nightly-29121851", "2025-05-30T23:59:01Z",
                          "2025-05-30T23:59:30Z", status="Running"),
    ])

    coverage = run_history()

    assert coverage.complete
    rows = {r["name"]: r for r in written(snapshot_dir, LA_FILE)}
    assert rows["nightly-29120411"] == {
        "id": f"{estate['nightly']}/executions/nightly-29120411",
        "name": "nightly-29120411",
        "type": "Microsoft.App/jobs/executions",
        "resourceGroup": "rg-jobs",
        "properties": {"status": "Succeeded", "startTime": "2025-05-10T02:00:01+00:00",
                       "endTime": "2025-05-10T02:07:44+00:00", "reason": None},
        "logAnalytics": {"workspace": WS, "firstEvent": "2025-05-10T02:00:01+00:00",
                         "lastEvent": "2025-05-10T02:07:44+00:00", "events": 4,
                         "reasons": ["Completed", "SuccessfulCreate"]},
    }
    failed = rows["hourly-k2j4h1a"]["properties"]
    assert (failed["status"], failed["reason"]) == ("Failed", "DeadlineExceeded")
    running = rows["nightly-29121851"]["properties"]
    assert (running["status"], running["endTime"]) == ("Running", None)  # no end was logged

    estate_read = normalize(read_snapshot(snapshot_dir))
    by_name = {e.name: e for e in estate_read.executions}
    assert by_name["hourly-k2j4h1a"].job_id == estate["hourly"]
    assert by_name["nightly-29120411"].job_id == estate["nightly"]
    assert by_name["nightly-29120411"].start_time == datetime(2025, 5, 10, 2, 0, 1, tzinfo=UTC)
    assert len(read_snapshot(snapshot_dir).items[EXECUTIONS]) == 3

    history = collection_record(snapshot_dir)["history"]
    assert history["sources"] == {estate["hourly"]: "log-analytics",
                                  estate["nightly"]: "log-analytics"}
    assert history["window"] == {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}
    assert any("not proof" in c for c in history["caveats"])
    assert history["log_analytics"]["token_audience"] == "https://api.loganalytics.io"
    assert (f"Log Analytics workspace {WS}", SOURCE, 3) in [
        (r.scope, r.source, r.rows) for r in coverage.reads]


def test_sends_one_read_only_query_per_workspace_naming_the_jobs_window_and_timeout(
        azure: AzureServer, estate: dict[str, str], run_history: RunHistory) -> None:
    run_history()

    [query] = azure.log_analytics.queries
    assert query.workspace == WS
    first, second, rest = query.query.split("\n", 2)
    assert first == 'let AuditorJobs = dynamic(["hourly", "nightly"]);'
    assert second == 'let AuditorEnvironments = dynamic(["env"]);'
    kql = rest
    assert "union isfuzzy=true" in kql and "ContainerAppSystemLogs_CL" in kql
    assert 'column_ifexists("ExecutionName_s"' in kql and 'column_ifexists("JobName"' in kql
    assert "summarize" in kql and "| where JobName in (AuditorJobs)\n| extend" in kql
    assert (query.start, query.end) == (SINCE, UNTIL)
    assert query.prefer == "wait=600"
    methods = {(r.method, r.path.split("/")[1]) for r in azure.requests}
    assert methods == {("POST", "providers"), ("POST", "v1")}
    assert azure.az is not None
    assert "https://api.loganalytics.io" in azure.az.resources_asked()


def test_a_partial_result_is_a_gap_naming_the_workspace_and_keeps_no_rows(
        azure: AzureServer, estate: dict[str, str], run_history: RunHistory,
        snapshot_dir: Path) -> None:
    azure.log_analytics.script(WS, lambda q: logs_partial(
        [execution_log_row("nightly", "nightly-1", "2025-05-10T02:00:01Z",
                           "2025-05-10T02:07:44Z")],
        "Partial query failure: Query execution was cancelled on one of the cluster nodes",
        code="-2133196794"))

    coverage = run_history()

    assert not coverage.complete
    [(scope, reason)] = _gaps(coverage)
    assert scope == f"Log Analytics workspace {WS}"
    assert "PartialError (HTTP 200)" in reason and "cancelled" in reason
    assert "1 partial rows were not kept" in reason
    assert "2025-05-01T00:00:00+00:00 to 2025-05-31T00:00:00+00:00 was not read" in reason
    assert len(azure.log_analytics.queries) == 1  # not a limit: halving would not help
    assert written(snapshot_dir, LA_FILE) == []
    history = collection_record(snapshot_dir)["history"]
    assert set(history["sources"].values()) == {"none"}
    assert collection_record(snapshot_dir)["coverage"]["complete"] is False


@pytest.mark.parametrize(("reply", "expected"), [
    (logs_error(403, "InsufficientAccessError",
                "The provided credentials have insufficient access to perform the requested "
                "operation"), "InsufficientAccessError (HTTP 403)"),
    (logs_error(500, "InternalServerError", "An internal error occurred"),
     "InternalServerError (HTTP 500)"),
    (logs_error(400, "BadArgumentError", "The request had some invalid properties",
                "'where' operator: Failed to resolve column named 'JobName'"),
     "BadArgumentError (HTTP 400)"),
])
def test_a_workspace_that_fails_is_a_gap_and_the_other_workspaces_are_still_read(
        azure: AzureServer, estate: dict[str, str], run_history: RunHistory,
        snapshot_dir: Path, fake_time: FakeTime, reply: Reply, expected: str) -> None:
    other = job_row(SUB_A, "weekly", group="rg-other")
    azure.resource_graph.add("resources", other,
                             environment_row(SUB_A, "rg-other", workspace=WS_B))
    azure.log_analytics.script(WS, lambda q: reply)
    azure.log_analytics.answer(WS_B, [execution_log_row("weekly", "weekly-1",
                                                        "2025-05-04T03:00:00Z",
                                                        "2025-05-04T03:10:00Z")])

    coverage = run_history(azure={"max_retries": 2})

    [(scope, reason)] = _gaps(coverage)
    assert scope == f"Log Analytics workspace {WS}"
    assert expected in reason
    assert estate["nightly"] in reason and estate["hourly"] in reason
    assert ("Log Analytics Reader" in reason) == ("403" in expected)
    tries = sum(1 for q in azure.log_analytics.queries if q.workspace == WS)
    retried = "500" in expected  # a 500 is retried (waiting on the fake clock); 400, 403 are not
    assert tries == (3 if retried else 1)
    assert bool(fake_time.sleeps) == retried
    assert [r["id"] for r in written(snapshot_dir, LA_FILE)] == [
        f"{other['id']}/executions/weekly-1"]
    sources = collection_record(snapshot_dir)["history"]["sources"]
    assert sources == {estate["hourly"]: "none", estate["nightly"]: "none",
                       other["id"]: "log-analytics"}


def _halves(rows_by_half: dict[str, list[list[Any]]],
            too_big: Callable[[LogsQuery], Reply | None]) -> Callable[[LogsQuery], Reply]:
    """A workspace whose full window is too big; each half answers its own rows."""
    middle = SINCE + (UNTIL - SINCE) / 2

    def answer(query: LogsQuery) -> Reply:
        assert query.start is not None and query.end is not None
        if query.end - query.start > timedelta(days=16):
            refusal = too_big(query)
            if refusal is not None:
                return refusal
        half = "first" if query.end <= middle else "second"
        return Reply(200, logs_tables(rows_by_half[half]))

    return answer


SPLIT_ROWS = {
    # nightly-3 runs across the middle of the window (May 16, 00:00): each half sees part of it.
    "first": [
        execution_log_row("nightly", "nightly-1", "2025-05-02T02:00:00Z", "2025-05-02T02:09:00Z"),
        execution_log_row("nightly", "nightly-3", "2025-05-15T23:50:00Z", "2025-05-15T23:59:59Z",
                          status="Running", events=2),
    ],
    "second": [
        execution_log_row("hourly", "hourly-9", "2025-05-20T01:00:00Z", "2025-05-20T01:05:00Z",
                          status="Failed", reason="BackoffLimitExceeded"),
        execution_log_row("nightly", "nightly-3", "2025-05-16T00:00:00Z", "2025-05-16T00:20:00Z",
                          events=3, reasons=["Completed"]),
    ],
}


@pytest.mark.parametrize("refusal", ["limit", "timeout", "row cap"])
def test_a_result_over_the_limits_is_split_into_halves_and_merged_without_duplicates(
        azure: AzureServer, estate: dict[str, str], run_history: RunHistory,
        snapshot_dir: Path, refusal: str) -> None:
    refusals: dict[str, Callable[[LogsQuery], Reply | None]] = {
        "limit": lambda q: logs_partial(SPLIT_ROWS["first"], RESULT_TOO_LARGE),
        "timeout": lambda q: logs_error(504, "GatewayTimeout",
                                        "The query took too long to complete"),
        "row cap": lambda q: Reply(200, logs_tables(SPLIT_ROWS["first"] + SPLIT_ROWS["second"])),
    }
    azure.log_analytics.script(WS, _halves(SPLIT_ROWS, refusals[refusal]))
    max_rows = 4 if refusal == "row cap" else 500_000

    coverage = run_history(max_rows_per_query=max_rows)

    assert coverage.complete, coverage.gaps
    middle = SINCE + (UNTIL - SINCE) / 2
    assert _spans(azure) == [(SINCE, UNTIL), (SINCE, middle), (middle, UNTIL)]
    rows = written(snapshot_dir, LA_FILE)
    names = [r["name"] for r in rows]
    assert sorted(names) == ["hourly-9", "nightly-1", "nightly-3"]  # none twice
    crossing = next(r for r in rows if r["name"] == "nightly-3")
    assert crossing["properties"] == {"status": "Succeeded",
                                      "startTime": "2025-05-15T23:50:00+00:00",
                                      "endTime": "2025-05-16T00:20:00+00:00", "reason": None}
    assert crossing["logAnalytics"]["events"] == 5
    assert crossing["logAnalytics"]["reasons"] == ["Completed", "SuccessfulCreate"]
    summary = collection_record(snapshot_dir)["history"]["log_analytics"]["workspaces"][WS]
    assert (summary["requests"], summary["splits"], summary["merged_across_windows"]) == (3, 1, 1)
    assert summary["failed_windows"] == []


def test_splitting_stops_at_its_budget_and_the_rest_is_a_gap(
        azure: AzureServer, estate: dict[str, str], run_history: RunHistory) -> None:
    azure.log_analytics.script(WS, lambda q: logs_partial([], RESULT_TOO_LARGE))

    coverage = run_history()

    assert 1 < len(azure.log_analytics.queries) <= 1 + 64
    gaps = _gaps(coverage)
    assert gaps and all("E_QUERY_RESULT_SET_TOO_LARGE" in reason for _, reason in gaps)
    assert any("split 32 times, the most allowed" in reason for _, reason in gaps)


def test_throttling_without_retry_after_is_waited_out_on_the_injected_clock(
        azure: AzureServer, estate: dict[str, str], run_history: RunHistory,
        fake_time: FakeTime, snapshot_dir: Path) -> None:
    answers = iter([logs_error(429, "ThrottledError", "Too many requests"),
                    Reply(200, logs_tables([execution_log_row(
                        "nightly", "nightly-1", "2025-05-02T02:00:00Z",
                        "2025-05-02T02:09:00Z")]))])
    azure.log_analytics.script(WS, lambda q: next(answers))

    coverage = run_history()

    assert coverage.complete
    assert len(azure.log_analytics.queries) == 2
    assert fake_time.sleeps == [1.0]
    assert [r["name"] for r in written(snapshot_dir, LA_FILE)] == ["nightly-1"]


def test_a_configured_query_is_sent_and_its_result_held_to_the_contract(
        azure: AzureServer, estate: dict[str, str], run_history: RunHistory,
        snapshot_dir: Path, tmp_path: Path) -> None:
    custom = tmp_path / "my-executions.kql"
    custom.write_text("ContainerAppSystemLogs_CL | take 0 // my own\n", encoding="utf-8")
    columns = (("JobName", "string"), ("ExecutionName", "string"), ("StartTime", "datetime"),
               ("EndTime", "datetime"), ("Status", "string"), ("Reasons", "dynamic"))
    azure.log_analytics.answer(WS, [
        ["NIGHTLY", "nightly-7", "2025-05-07T02:00:00Z", "2025-05-07T02:04:00Z", "Succeeded",
         json.dumps(["Completed", "SuccessfulCreate", "Pulled"])],
        ["someone-else", "someone-else-1", "2025-05-07T02:00:00Z", "2025-05-07T02:04:00Z",
         "Succeeded", "[]"],
    ], columns)

    coverage = run_history(query=str(custom))

    assert coverage.complete
    [query] = azure.log_analytics.queries
    assert query.query.endswith("ContainerAppSystemLogs_CL | take 0 // my own\n")
    [row] = written(snapshot_dir, LA_FILE)
    assert row["id"] == f"{estate['nightly']}/executions/nightly-7"
    assert row["logAnalytics"]["reasons"] == ["Completed", "Pulled", "SuccessfulCreate"]
    history = collection_record(snapshot_dir)["history"]
    assert history["log_analytics"]["query_source"] == str(custom)
    assert history["log_analytics"]["workspaces"][WS]["rows_outside_scope"] == 1


def test_a_result_that_breaks_the_contract_is_a_gap_not_an_empty_history(
        azure: AzureServer, estate: dict[str, str], run_history: RunHistory) -> None:
    azure.log_analytics.answer(WS, [["nightly", 3]], (("JobName", "string"), ("n", "long")))

    coverage = run_history()

    [(scope, reason)] = _gaps(coverage)
    assert scope == f"Log Analytics workspace {WS}"
    assert "no column ExecutionName, StartTime, EndTime, Status" in reason
    assert "result contract" in reason


def test_an_unreadable_query_file_is_an_input_error(
        azure: AzureServer, estate: dict[str, str], run_history: RunHistory,
        tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"history\.query"):
        run_history(query=str(tmp_path / "missing.kql"))
    assert azure.log_analytics.queries == []


def test_jobs_of_one_name_sharing_a_workspace_are_told_apart_by_the_logged_environment(
        azure: AzureServer, estate: dict[str, str], run_history: RunHistory,
        snapshot_dir: Path) -> None:
    environments = [environment_row(SUB_A, "rg-a", "env-a", WS),
                    environment_row(SUB_A, "rg-b", "env-b", WS)]
    first, second = job_row(SUB_A, "sync", group="rg-a"), job_row(SUB_A, "sync", group="rg-b")
    for job, environment in zip((first, second), environments, strict=True):
        job["properties"]["environmentId"] = environment["id"]
    azure.resource_graph.add("resources", first, second, *environments)
    azure.log_analytics.answer(WS, [
        execution_log_row("sync", "sync-1", "2025-05-02T00:00:00Z", "2025-05-02T00:01:00Z",
                          environment="env-a"),
        execution_log_row("sync", "sync-2", "2025-05-02T00:00:00Z", "2025-05-02T00:01:00Z",
                          environment="env-b"),
        execution_log_row("sync", "sync-3", "2025-05-02T00:00:00Z", "2025-05-02T00:01:00Z",
                          environment=""),
        # Logs may name an environment otherwise than ARM does: a unique job name still counts.
        execution_log_row("nightly", "nightly-5", "2025-05-02T00:00:00Z", "2025-05-02T00:01:00Z",
                          environment="salmonmushroom-5f5c9d1a"),
    ])

    coverage = run_history()

    assert sorted(r["id"] for r in written(snapshot_dir, LA_FILE)) == sorted([
        f"{first['id']}/executions/sync-1", f"{second['id']}/executions/sync-2",
        f"{estate['nightly']}/executions/nightly-5"])
    [(scope, reason)] = _gaps(coverage)
    assert scope == f"Log Analytics workspace {WS}"
    assert "1 executions (sync/sync-3) could not be attributed to one job" in reason


# --- reading the REST response without the SDK's row models ------------------------------------


def test_the_query_is_sent_exactly_as_the_sdks_query_workspace_sends_it(
        azure: AzureServer, estate: dict[str, str], run_history: RunHistory,
        fake_time: FakeTime) -> None:
    run_history()
    [ours] = azure.log_analytics.queries
    settings = azure_settings(subscriptions=[SUB_A])
    throttle = Throttle(fake_time.sleep, fake_time.clock, 1.0)
    with log_analytics.open_client(AzureCliCredential(), resolve(settings), settings,
                                   throttle) as client:
        client.query_workspace(WS, ours.query, timespan=(SINCE, UNTIL), server_timeout=600)

    ours_sent, sdk_sent = [r for r in azure.requests if r.path.startswith("/v1/workspaces/")]
    assert sdk_sent.body == ours_sent.body  # query, timespan ("...T00:00:00.000Z/..."), workspaces
    assert sdk_sent.body["timespan"] == "2025-05-01T00:00:00.000Z/2025-05-31T00:00:00.000Z"
    assert (sdk_sent.method, sdk_sent.path, sdk_sent.params) == (
        ours_sent.method, ours_sent.path, ours_sent.params)

    def headers(r: Any) -> dict[str, str]:
        return {k: v for k, v in r.headers.items() if k != "x-ms-client-request-id"}

    assert headers(sdk_sent) == headers(ours_sent)  # Prefer, content type and length, agent


# Cells as the service may send them: datetimes with 100 ns fractions, offsets, no zone, odd
# casing or padding, and not datetimes at all; dynamic as JSON strings, or not.
ODD_CELLS: list[list[Any]] = [
    ["nightly", "env", "n-1", "2025-05-10T02:00:01.1234567Z", "2025-05-10T02:07:44Z",
     "Succeeded", "", 4, '["Completed", "SuccessfulCreate"]'],
    ["Nightly ", " ENV", " n-2 ", "2025-05-10t02:00:01z", "2025-05-10T02:00:01+05:30",
     " Failed ", "DeadlineExceeded", "7", "not json"],
    ["nightly", None, "n-3", "2025-05-10T02:00:01", " 2025-05-10T02:00:01Z", "Odd", None, None,
     None],
    ["nightly", "env", "n-4", "2025-05-10", "garbage", None, 3, 2.9, ["b", None, "", "a"]],
    ["nightly", "env", "n-5", None, "", "Running", "", "x", '[1, null, ""]'],
    ["nightly", "env", "n-6", 12345, "2025-05-10T24:00:00Z", "Succeeded", "", 1, "{}"],
    ["nightly", "env", "n-7", "2025-05-10T02:00:01,5Z", "20250510T020001Z", "Succeeded", "",
     1, ""],
    ["nightly", "env", "n-8", "0001-01-01T00:00:00+01:00", "2025-05-10T02:00:01.Z", "Failed",
     "", 1, "[]"],
    ["nightly", "env", "n-9", "2025-05-10T02:00:01.0000001Z", "2025-05-10T02:00:01.5Z",
     "Succeeded", "", 1, "[]"],
    ["nightly", "env", "n-10", "2025-05-10T02:00:01.123456789Z", "2025-05-10 02:00:01Z",
     "Failed", "", 1, "[]"],
]
ODD_TYPES = (("JobName", "datetime"), ("EnvironmentName", "guid"), ("ExecutionName", "string"),
             ("StartTime", "string"), ("EndTime", "timespan"), ("Status", "string"),
             ("Reason", "timespan"), ("Events", "guid"), ("Reasons", "timespan"))


@pytest.mark.parametrize("columns", [EXECUTION_COLUMNS, ODD_TYPES], ids=["contract", "odd-types"])
def test_cells_are_read_as_the_sdks_logs_table_hands_them_over(
        columns: tuple[tuple[str, str], ...]) -> None:
    rows = [*ODD_CELLS, [*ODD_CELLS[0][:3], "2025-05-10T02:00:01Z", *ODD_CELLS[0][4:]]]
    table = {"name": "PrimaryResult", "columns": [{"name": n, "type": t} for n, t in columns],
             "rows": rows}

    ours = log_analytics._records(log_analytics._result_table([table]))

    # What auditor read before, from the SDK's own conversion of each cell.
    sdk = LogsTable(name="PrimaryResult", columns=[n for n, _ in columns],
                    columns_types=[t for _, t in columns], rows=rows)
    text, time = log_analytics._text, log_analytics._time
    expected = []
    for row in sdk.rows:
        status = text(row["Status"]) or "Unknown"
        expected.append((
            text(row["JobName"]).lower(), text(row["EnvironmentName"]).lower(),
            text(row["ExecutionName"]), time(row["StartTime"]), time(row["EndTime"]),
            status if status in log_analytics.STATUS_RANK else "Unknown", text(row["Reason"]),
            log_analytics._count(row["Events"]), log_analytics._reasons(row["Reasons"])))

    def stamp(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    assert [(r.job, r.environment, r.name, stamp(r.start), stamp(r.end), r.status, r.reason,
             r.events, r.reasons) for r in ours] == [
        (*e[:3], stamp(e[3]), stamp(e[4]), *e[5:]) for e in expected]
    assert all(r.start is None or r.start.tzinfo for r in ours)
    # The times a row is written with, cut from the cell where it can be: isoformat's text.
    job = log_analytics.HistoryJob("/jobs/nightly", "nightly", None, None, None)
    written_times = [r.row(job, WS)["logAnalytics"] for r in ours]
    assert [(t["firstEvent"], t["lastEvent"]) for t in written_times] == [
        (stamp(r.start), stamp(r.end)) for r in ours]


class _Canned(requests.adapters.BaseAdapter):
    """A transport answer below azure-core's requests transport: any status and body."""

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        super().__init__()
        self.status, self.content_type, self.body = status, content_type, body

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code, response.reason = self.status, "Bad Gateway" if (
            self.status == 502) else "OK"
        response.headers = requests.structures.CaseInsensitiveDict(
            {"Content-Type": self.content_type, "Content-Length": str(len(self.body))})
        response.raw = HTTPResponse(body=io.BytesIO(self.body), headers=response.headers,
                                    status=self.status, preload_content=False)
        response.url, response.request = request.url, request
        return response

    def close(self) -> None:
        return None


class _Token:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", 4_102_444_800)


NIGHTLY = log_analytics.HistoryJob(f"/subscriptions/{SUB_A}/resourceGroups/rg-jobs/providers/"
                                   f"Microsoft.App/jobs/nightly", "nightly", SUB_A, "rg-jobs",
                                   "env")


def _one_window(status: int, content_type: str, body: bytes,
                jobs: tuple[log_analytics.HistoryJob, ...] = (NIGHTLY,),
                ) -> log_analytics.WorkspaceResult:
    settings = load_settings()
    azure = azure_settings(max_retries=0)
    time = FakeTime(requests_seen=lambda: 0)
    throttle = Throttle(time.sleep, time.clock, 1.0)
    session = requests.Session()
    session.mount("https://", _Canned(status, content_type, body))
    client = LogsQueryClient(_Token(), endpoint="https://api.loganalytics.io",
                             retry_policy=log_analytics.LogsRetryPolicy(throttle, 0, 1.0),
                             transport=RequestsTransport(session=session))
    with client:
        reader = log_analytics.LogAnalytics(client, azure, settings.history, throttle)
        return reader.read(WS, list(jobs), log_analytics.Query("T", "test"), SINCE, UNTIL)


NAN = float("nan")  # JSON from Python may hold it; orjson refuses it


def _tables(rows: Any) -> bytes:
    columns = [{"name": n, "type": t} for n, t in EXECUTION_COLUMNS]
    return json.dumps({"tables": [{"name": "PrimaryResult", "columns": columns,
                                   "rows": rows}]}).encode()


@pytest.mark.parametrize(("status", "content_type", "body", "expected"), [
    (502, "text/html", b"<html>Bad gateway</html>", "Bad Gateway (HTTP 502)"),
    (200, "text/plain", b"not json", "UnexpectedResult (HTTP 200): the response body is not"),
    (200, "application/json", _tables([["nightly", "env", "nightly-1"]]),
     "a row of the result does not hold the 9 columns it names"),
    (200, "application/json", _tables(None), "the result table holds no rows"),
], ids=["html-error", "text-200", "short-row", "no-rows"])
def test_an_answer_the_sdk_could_not_read_is_a_failed_window_not_a_crash(
        status: int, content_type: str, body: bytes, expected: str) -> None:
    result = _one_window(status, content_type, body)

    [failure] = result.failures
    assert expected in failure.reason
    assert result.rows == [] and result.windows == []


def test_a_result_is_read_from_the_rest_shape_through_the_sdks_transport() -> None:
    result = _one_window(200, "application/json; charset=utf-8", _tables([
        execution_log_row("nightly", "nightly-1", "2025-05-10T02:00:01.1234567Z",
                          "2025-05-10T02:07:44Z")]))

    assert result.failures == []
    [row] = result.rows
    assert row["properties"]["startTime"] == "2025-05-10T02:00:01.123456+00:00"
    assert row["logAnalytics"]["reasons"] == ["Completed", "SuccessfulCreate"]


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", _tables([execution_log_row(
        "nightly", "nightly-1", "2025-05-10T02:00:01Z", "2025-05-10T02:07:44Z", events=NAN)])),
    ("application/json; charset=utf-16", _tables([execution_log_row(
        "nightly", "nightly-1", "2025-05-10T02:00:01Z", "2025-05-10T02:07:44Z")]
    ).decode().encode("utf-16")),
], ids=["nan", "utf-16"])
def test_a_body_orjson_refuses_is_read_as_the_sdk_reads_it(content_type: str,
                                                           body: bytes) -> None:
    result = _one_window(200, content_type, body)

    assert result.failures == []
    [row] = result.rows
    assert row["name"] == "nightly-1"


# One execution logged three ways (under the job's environment, another name, and none; its name
# in two cases): merged into the record of the least logged key, ("nightly", "", "n-1"), taking
# the others in that order: Failed beats Succeeded, and of the two Failed the first (B) stays.
ONE_EXECUTION_THREE_WAYS = [
    execution_log_row("nightly", "n-1", "2025-05-10T02:00:00Z", "2025-05-10T02:05:00Z",
                      status="Failed", reason="A", environment="env"),
    execution_log_row("nightly", "N-1", "2025-05-10T01:59:00Z", "2025-05-10T02:04:00Z",
                      status="Failed", reason="B", environment="elsewhere"),
    execution_log_row("NIGHTLY", "n-1", "2025-05-10T02:00:00Z", "2025-05-10T02:06:00Z",
                      environment=""),
    execution_log_row("nightly", "n-2", "2025-05-11T02:00:00Z", "2025-05-11T02:05:00Z"),
]
X = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/jobs/x"
# Two jobs whose executions' ids are the same string: listed in the order of their logged keys.
ONE_ID_TWICE = (log_analytics.HistoryJob(X, "x", "s", "rg", "env"),
                log_analytics.HistoryJob(f"{X}/executions/e", "x", "s", "rg", "other"))


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))),
                         ids=lambda order: "".join(map(str, order)))
def test_executions_logged_several_ways_merge_alike_whatever_order_the_rows_came_in(
        order: tuple[int, ...]) -> None:
    result = _one_window(200, "application/json",
                         _tables([ONE_EXECUTION_THREE_WAYS[i] for i in order]))

    assert (result.merged, result.result_rows) == (2, 4)
    merged, other = result.rows
    assert merged["id"] == f"{NIGHTLY.id}/executions/n-1"
    assert merged["properties"] == {"status": "Failed", "startTime": "2025-05-10T01:59:00+00:00",
                                    "endTime": "2025-05-10T02:06:00+00:00", "reason": "B"}
    assert merged["logAnalytics"]["events"] == 12
    assert other["name"] == "n-2"


@pytest.mark.parametrize("reverse", [False, True])
def test_two_executions_with_one_id_keep_the_order_of_their_logged_keys(reverse: bool) -> None:
    rows = [execution_log_row("x", "e/executions/e1", "2025-05-10T02:00:00Z",
                              "2025-05-10T02:05:00Z", environment="env"),
            execution_log_row("x", "e1", "2025-05-10T03:00:00Z", "2025-05-10T03:05:00Z",
                              environment="other")]

    result = _one_window(200, "application/json", _tables(rows[::-1] if reverse else rows),
                         jobs=ONE_ID_TWICE)

    assert [r["id"] for r in result.rows] == [f"{X}/executions/e/executions/e1"] * 2
    assert [r["properties"]["startTime"] for r in result.rows] == [
        "2025-05-10T02:00:00+00:00", "2025-05-10T03:00:00+00:00"]


# --- the rows as the snapshot writes them ------------------------------------------------------

START = datetime(2025, 5, 10, 2, 0, 1, 123456, tzinfo=UTC)
END = datetime(2025, 5, 10, 2, 7, 44, tzinfo=UTC)


def _record(name: str = "nightly-1", **fields: Any) -> log_analytics.ExecutionRecord:
    values: dict[str, Any] = {"job": "nightly", "environment": "env", "name": name,
                              "start": START, "end": END, "status": "Succeeded",
                              "reason": "Completed", "events": 4,
                              "reasons": ["Completed", "SuccessfulCreate"]}
    return log_analytics.ExecutionRecord(**{**values, **fields})


@pytest.mark.parametrize("record", [
    _record(),
    _record(start_text="2025-05-10T02:00:01.123456+00:00", end_text="2025-05-10T02:07:44+00:00"),
    _record(status="Running", end=None, reason=""),
    _record(start=None, end=None, status="Unknown", reasons=[]),
    _record('quote " backslash \\ tab \t newline \n bell \x07 del \x7f'),
    _record("ünïcødé-名前-🙂", reasons=["Ä", "b\u2028c"]),
    _record("lone \ud800 surrogate"),  # orjson refuses it: the json module writes the row
    _record(events=2**70),  # beyond 64 bits: the json module too
], ids=["plain", "texts-cut-from-cells", "running", "no-times", "escapes", "unicode",
        "lone-surrogate", "huge-count"])
@pytest.mark.parametrize("group", ["rg", None])
def test_a_records_text_is_the_snapshot_encoding_of_its_row(
        record: log_analytics.ExecutionRecord, group: str | None) -> None:
    job = log_analytics.HistoryJob(f"{X}-\"q\"", "x", "s", group, "env")

    text = record.text(job, "ws-Ü")

    assert text == encoded_row(record.row(job, "ws-Ü"))
    assert json.loads(text) == record.row(job, "ws-Ü")


def _encoded_result(workspace: str, names: list[str]) -> log_analytics.WorkspaceResult:
    result = log_analytics.WorkspaceResult(workspace, [NIGHTLY])
    for name in names:
        result.add(_record(name))
    log_analytics._encode(result)
    return result


def test_every_workspaces_rows_are_written_in_id_order_as_sorting_them_all_would(
        tmp_path: Path) -> None:
    # Interleaved ids, one id in two workspaces (kept in workspace order), a workspace with
    # nothing, runs of several rows from one workspace.
    results = [_encoded_result("ws-1", ["b", "d", "e", "f", "k"]),
               _encoded_result("ws-2", []),
               _encoded_result("ws-3", ["a", "c", "d", "g", "h", "i", "z"]),
               _encoded_result("ws-4", ["d", "j"])]
    rows = [row for result in results for row in result.rows]
    assert len(rows) == 14 and [r["name"] for r in results[0].rows] == ["b", "d", "e", "f", "k"]

    write_rows(tmp_path / "sorted", "x", sorted(rows, key=lambda r: str(r["id"]).lower()))
    write_row_texts(tmp_path / "merged", "x", len(rows), log_analytics.merged_texts(results))

    written = (tmp_path / "merged" / "x.json").read_bytes()
    assert written == (tmp_path / "sorted" / "x.json").read_bytes()
    data = json.loads(written)["data"]
    assert [r["name"] for r in data] == list("abcddd") + list("efghijkz")
    assert [r["logAnalytics"]["workspace"] for r in data if r["name"] == "d"] == [
        "ws-1", "ws-3", "ws-4"]
