"""Execution history is read while Resource Graph is still being read, and it shows nowhere else.

collect() starts the history in a thread of its own once the jobs and environments are read, so
Log Analytics is asked while the remaining Resource Graph queries wait on their quota. These tests
hold that the two do overlap, that the snapshot is byte for byte the same whichever finishes
first, that an error on either side ends the whole collection with no thread left behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auditor.collect import history as history_module
from auditor.collect import live
from auditor.collect.history import HistoryRequest
from auditor.collect.live import collect
from auditor.collect.resource_graph import ROLE_ASSIGNMENTS
from auditor.coverage import Coverage
from auditor.settings import load_settings
from tests.azure_server import (
    AzureServer,
    Recorded,
    Reply,
    arm_error,
    change_row,
    environment_row,
    execution_log_row,
    execution_row,
    graph_query,
    job_row,
    logs_error,
    role_assignment_row,
    role_definition_row,
    system_identity,
)
from tests.collect.helpers import NOW, SINCE, SUB_A, UNTIL, FakeTime, azure_settings

WS, WS_DENIED = "f0e1d2c3-0000-4000-8000-000000000001", "f0e1d2c3-0000-4000-8000-0000000000d2"
PRINCIPAL = "5f1c7a0e-0000-4000-8000-00000000a001"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
HISTORY_FILES = ("executions-log-analytics.json", "executions-api.json")
WAIT = 10.0  # seconds a test waits for the other thread before it calls the overlap missing


def _estate(azure: AzureServer) -> None:
    """Jobs with history in a workspace, in a workspace that denies the scan, and in the
    executions API; a role assignment, its definition and a change, so every query has rows."""
    graph = azure.resource_graph
    graph.add_subscription(SUB_A)
    logged = job_row(SUB_A, "nightly", identity=system_identity(PRINCIPAL))
    denied = job_row(SUB_A, "weekly", group="rg-denied")
    monitored = job_row(SUB_A, "hourly", group="rg-monitor")
    monitored_environment = environment_row(SUB_A, "rg-monitor")
    monitored_environment["properties"]["appLogsConfiguration"] = {
        "destination": "azure-monitor"}
    graph.add("resources", logged, denied, monitored, environment_row(SUB_A, workspace=WS),
              environment_row(SUB_A, "rg-denied", workspace=WS_DENIED), monitored_environment)
    graph.add("authorizationresources", role_definition_row(READER, "Reader"),
              role_assignment_row(SUB_A, PRINCIPAL, READER))
    graph.add("resourcechanges", change_row(logged["id"], "2099-01-01T00:00:00Z"))
    azure.log_analytics.answer(WS, [
        execution_log_row("nightly", "nightly-1", "2025-05-10T02:00:01Z", "2025-05-10T02:07:44Z"),
        execution_log_row("nightly", "nightly-2", "2025-05-11T02:00:01Z", "2025-05-11T02:09:00Z",
                          status="Failed", reason="BackoffLimitExceeded")])
    azure.log_analytics.script(WS_DENIED, lambda _query: logs_error(
        403, "InsufficientAccessError", "The provided credentials have insufficient access."))
    azure.executions.add(monitored["id"], execution_row(
        "hourly-1", "Succeeded", "2025-05-12T01:00:00+00:00", "2025-05-12T01:05:00+00:00"))


@pytest.fixture
def run(fake_time: FakeTime) -> Callable[..., Coverage]:
    """collect() with history into `folder`, at a fixed `now` so runs can be compared."""

    def run_collect(folder: Path, **kwargs: Any) -> Coverage:
        return collect(azure_settings(subscriptions=[SUB_A]), folder,
                       sleep=kwargs.pop("sleep", fake_time.sleep),
                       clock=kwargs.pop("clock", fake_time.clock), now=lambda: NOW,
                       history=HistoryRequest(load_settings().history, SINCE, UNTIL), **kwargs)

    return run_collect


def _history_threads() -> list[threading.Thread]:
    """The history's thread and its workspace readers."""
    return [t for t in threading.enumerate() if t.name.startswith("auditor-history")]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _is_logs_query(request: Recorded) -> bool:
    return request.path.startswith("/v1/workspaces/")


def test_history_is_asked_while_resource_graph_is_still_being_read(
        azure: AzureServer, run: Callable[..., Coverage], tmp_path: Path) -> None:
    _estate(azure)
    history_asked = threading.Event()
    azure.faults.before(_is_logs_query, lambda _request: history_asked.set(), times=None)
    # The role assignments are answered only once Log Analytics has been asked (or, were the
    # history to wait for Resource Graph, after WAIT seconds).
    seen_first: list[bool] = []
    azure.faults.before(graph_query("microsoft.authorization/roleassignments"),
                        lambda _request: seen_first.append(history_asked.wait(WAIT)))

    coverage = run(tmp_path / "snapshot")

    assert seen_first == [True]
    assert [q["name"] for q in coverage.queries] == [
        "subscriptions", "jobs", "environments", "role-assignments", "role-definitions",
        "changes", "executions-log-analytics", "executions-api"]  # history's last, as before
    assert _history_threads() == []


def _wait_for_history_files(folder: Path) -> Callable[[Recorded], None]:
    """A `before` action: hold the request until the history has written its snapshot files."""

    def hold(_request: Recorded) -> None:
        give_up = time.monotonic() + WAIT
        while not all((folder / name).is_file() for name in HISTORY_FILES):
            assert time.monotonic() < give_up, "the history never finished"
            time.sleep(0.01)

    return hold


def test_the_snapshot_is_the_same_byte_for_byte_whichever_side_finishes_first(
        azure: AzureServer, run: Callable[..., Coverage], tmp_path: Path) -> None:
    _estate(azure)
    as_it_comes = tmp_path / "as-it-comes"
    run(as_it_comes)

    history_first = tmp_path / "history-first"  # Resource Graph waits for the whole history
    azure.faults.before(graph_query("microsoft.authorization/roleassignments"),
                        _wait_for_history_files(history_first))
    run(history_first)

    history_last = tmp_path / "history-last"  # history answered after the last Graph query
    graph_done = threading.Event()

    def last_graph_query(_request: Recorded, reply: Reply) -> Reply:
        graph_done.set()
        return reply

    azure.faults.transform(graph_query("microsoft.resources/changes"), last_graph_query, times=1)
    azure.faults.before(lambda r: _is_logs_query(r) or "/executions" in r.path,
                        lambda _request: graph_done.wait(WAIT), times=None)
    run(history_last)

    assert graph_done.is_set()
    expected = _files(as_it_comes)
    assert set(expected) >= {"collection.json", *HISTORY_FILES}
    assert _files(history_first) == expected
    assert _files(history_last) == expected


def test_an_error_in_the_history_is_raised_once_resource_graph_is_done(
        azure: AzureServer, run: Callable[..., Coverage], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _estate(azure)

    def broken(*_args: Any) -> None:
        raise RuntimeError("a bug in routing")

    monkeypatch.setattr(history_module, "route", broken)

    with pytest.raises(RuntimeError, match="a bug in routing"):
        run(tmp_path / "snapshot")

    assert "resourcechanges" in azure.graph_bodies()[-1]["query"]  # Graph was read to the end
    assert _history_threads() == []
    assert not (tmp_path / "snapshot" / "collection.json").exists()


@pytest.mark.parametrize("error", [
    pytest.param(KeyboardInterrupt(), id="ctrl-c"),
    pytest.param(RuntimeError("a bug in the Graph reader"), id="bug"),
])
def test_an_error_in_resource_graph_stops_the_history_at_once_and_waits_for_it(
        azure: AzureServer, run: Callable[..., Coverage], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    _estate(azure)
    # Both workspaces throttle for 30 s: both readers are waiting on the real clock when
    # Resource Graph fails.
    throttled = azure.faults.reply(_is_logs_query, logs_error(
        429, "ThrottledError", "Too many requests", **{"Retry-After": "30"}), times=None)
    collect_query = live._collect_query

    def failing(graph: Any, query: Any, *args: Any) -> Any:
        if query == ROLE_ASSIGNMENTS:
            give_up = time.monotonic() + WAIT
            while throttled.hits < 2:
                assert time.monotonic() < give_up, "the workspaces were not both asked"
                time.sleep(0.01)
            raise error
        return collect_query(graph, query, *args)

    monkeypatch.setattr(live, "_collect_query", failing)
    started = time.monotonic()

    with pytest.raises(type(error)):
        run(tmp_path / "snapshot", sleep=time.sleep, clock=time.monotonic)

    assert time.monotonic() - started < 15.0  # not the 30 s the history was told to wait
    assert _history_threads() == []
    assert throttled.hits == 2 and azure.log_analytics.queries == []  # nothing asked after
    assert not any((tmp_path / "snapshot" / name).exists() for name in HISTORY_FILES)


def test_history_waits_for_resource_graph_when_jobs_and_environments_read_nothing(
        azure: AzureServer, run: Callable[..., Coverage], tmp_path: Path) -> None:
    """The rule of old holds: history is collected when any query read something, here only
    the later ones (jobs and environments denied), and then has no job to read."""
    _estate(azure)
    for kind in ("microsoft.app/jobs", "microsoft.app/managedenvironments"):
        azure.faults.reply(graph_query(kind), arm_error(403, "AuthorizationFailed", "Denied."),
                           times=None)

    coverage = run(tmp_path / "snapshot")

    assert [q["name"] for q in coverage.queries][-1] == "changes"  # no history query to note
    assert all((tmp_path / "snapshot" / name).is_file() for name in HISTORY_FILES)
    assert azure.log_analytics.queries == []
    assert not [r for r in azure.requests if r.path.endswith("/executions")]
    assert _history_threads() == []
