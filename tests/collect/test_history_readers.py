"""Log Analytics workspaces are read two at a time, and nothing written shows it.

`collect_history` reads the workspaces with LOG_ANALYTICS_READERS threads, each with its own SDK
client, sharing one Throttle. These tests hold that two queries are at the server at once, that
the snapshot is byte for byte what one reader writes (with the same queries), that a reader's
error is raised once the other has stopped, that a stop ends both at once, and that the shared
Throttle counts every wait of both, one's wait not holding up the other's.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auditor.collect import history as history_module
from auditor.collect.clouds import resolve
from auditor.collect.credentials import build_credential
from auditor.collect.history import HistoryRequest, Stopped, collect_history
from auditor.collect.live import collect
from auditor.collect.log_analytics import LogAnalytics
from auditor.coverage import Coverage
from auditor.settings import load_settings
from tests.azure_server import (
    RESULT_TOO_LARGE,
    AzureServer,
    LogsQuery,
    Recorded,
    Reply,
    environment_row,
    execution_log_row,
    execution_row,
    job_row,
    logs_error,
    logs_partial,
    logs_tables,
)
from tests.collect.helpers import NOW, SINCE, SUB_A, UNTIL, FakeTime, azure_settings

# Four workspaces, named in the order they are read.
WS_1, WS_2, WS_3, WS_4 = (f"f0e1d2c3-0000-4000-8000-00000000000{n}" for n in range(1, 5))
WAIT = 10.0  # seconds a test waits for the other reader before it calls the overlap missing


def _estate(azure: AzureServer) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A job or two per workspace, and one whose environment sends its logs to Azure Monitor;
    the job and environment rows."""
    graph = azure.resource_graph
    graph.add_subscription(SUB_A)
    jobs = [job_row(SUB_A, "nightly", "rg-1"), job_row(SUB_A, "hourly", "rg-1"),
            job_row(SUB_A, "weekly", "rg-2"), job_row(SUB_A, "nightly", "rg-3"),
            job_row(SUB_A, "monthly", "rg-4"), job_row(SUB_A, "purge", "rg-monitor")]
    environments = [environment_row(SUB_A, f"rg-{n}", workspace=ws)
                    for n, ws in enumerate((WS_1, WS_2, WS_3, WS_4), start=1)]
    monitored = environment_row(SUB_A, "rg-monitor")
    monitored["properties"]["appLogsConfiguration"] = {"destination": "azure-monitor"}
    environments.append(monitored)
    graph.add("resources", *jobs, *environments)
    return jobs, environments


def _answers(azure: AzureServer) -> None:
    """Rows in WS_1 and WS_4, a denial in WS_2, a window too big for WS_3 (split in halves)."""
    logs = azure.log_analytics
    logs.answer(WS_1, [
        execution_log_row("nightly", "nightly-2", "2025-05-11T02:00:01Z", "2025-05-11T02:09:00Z",
                          status="Failed", reason="BackoffLimitExceeded"),
        execution_log_row("hourly", "hourly-1", "2025-05-10T01:00:00Z", "2025-05-10T01:05:00Z"),
        execution_log_row("nightly", "nightly-1", "2025-05-10T02:00:01Z", "2025-05-10T02:07:44Z"),
    ])
    logs.script(WS_2, lambda _query: logs_error(
        403, "InsufficientAccessError", "The provided credentials have insufficient access."))
    middle = SINCE + (UNTIL - SINCE) / 2

    def too_big_whole(query: LogsQuery) -> Reply:
        if (query.start, query.end) == (SINCE, UNTIL):
            return logs_partial([], RESULT_TOO_LARGE)
        day = "02" if query.end == middle else "20"
        return Reply(200, logs_tables([execution_log_row(
            "nightly", f"nightly-{day}", f"2025-05-{day}T02:00:00Z", f"2025-05-{day}T02:30:00Z")]))

    logs.script(WS_3, too_big_whole)
    logs.answer(WS_4, [execution_log_row("monthly", "monthly-1", "2025-05-01T00:00:00Z",
                                         "2025-05-01T03:00:00Z", status="Running")])
    azure.executions.add(job_row(SUB_A, "purge", "rg-monitor")["id"], execution_row(
        "purge-1", "Succeeded", "2025-05-12T01:00:00+00:00", "2025-05-12T01:05:00+00:00"))


def _logs_query(workspace: str | None = None) -> Callable[[Recorded], bool]:
    def match(request: Recorded) -> bool:
        return (request.path.startswith("/v1/workspaces/")
                and (workspace is None or request.path.split("/")[3] == workspace))

    return match


def _history_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("auditor-history")]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _until(done: Callable[[], bool]) -> bool:
    """Whether `done` came true within WAIT seconds."""
    give_up = time.monotonic() + WAIT
    while not done():
        if time.monotonic() > give_up:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def readers(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Sets how many workspaces are read at once."""
    return lambda count: monkeypatch.setattr(history_module, "LOG_ANALYTICS_READERS", count)


@pytest.fixture
def run(fake_time: FakeTime) -> Callable[[Path], Coverage]:
    """collect() with history into a folder, at a fixed `now` so runs can be compared."""

    def run_collect(folder: Path) -> Coverage:
        return collect(azure_settings(subscriptions=[SUB_A]), folder, sleep=fake_time.sleep,
                       clock=fake_time.clock, now=lambda: NOW,
                       history=HistoryRequest(load_settings().history, SINCE, UNTIL))

    return run_collect


@pytest.fixture
def history(azure: AzureServer, tmp_path: Path) -> Iterator[Callable[..., dict[str, Any]]]:
    """collect_history itself (no _History thread around it) over the estate's rows, on the
    real clock; keyword arguments go to collect_history."""
    jobs, environments = _estate(azure)
    settings = azure_settings(subscriptions=[SUB_A])
    endpoints = resolve(settings)
    credential = build_credential(settings.auth, endpoints.cloud)

    def run_history(**kwargs: Any) -> dict[str, Any]:
        return collect_history(credential, endpoints, settings,
                               HistoryRequest(load_settings().history, SINCE, UNTIL), jobs,
                               environments, Coverage(), tmp_path / "snapshot",
                               sleep=time.sleep, clock=time.monotonic, **kwargs)

    yield run_history
    credential.close()  # type: ignore[attr-defined]  # AzureCliCredential's


def test_two_workspaces_are_asked_at_once(
        azure: AzureServer, run: Callable[[Path], Coverage], tmp_path: Path) -> None:
    _estate(azure)
    _answers(azure)
    # The first two queries wait at the server for each other: one reader at a time would
    # leave the first waiting in vain.
    both = threading.Barrier(2, timeout=WAIT)
    met: list[str] = []

    def meet(request: Recorded) -> None:
        both.wait()
        met.append(request.path.split("/")[3])

    azure.faults.before(_logs_query(), meet, times=2)

    coverage = run(tmp_path / "snapshot")

    assert sorted(met) == [WS_1, WS_2]  # the first two, each read by its own reader
    assert [q.workspace for q in azure.log_analytics.queries].count(WS_3) == 3  # whole, halves
    assert [g.scope for g in coverage.gaps] == [f"Log Analytics workspace {WS_2}"]
    assert _history_threads() == []


@pytest.mark.parametrize("count", [1, 2])
def test_the_snapshot_is_byte_for_byte_what_one_reader_writes(
        azure: AzureServer, run: Callable[[Path], Coverage], readers: Callable[[int], None],
        tmp_path: Path, count: int) -> None:
    _estate(azure)
    _answers(azure)
    readers(1)
    one = run(tmp_path / "one-reader")
    asked_by_one = sorted((q.workspace, q.start, q.end) for q in azure.log_analytics.queries)
    azure.log_analytics.queries.clear()

    readers(count)
    answered_before = len(azure.faults.replies)
    if count > 1:  # WS_1 is answered once WS_4 is asked: the other reader read WS_2, WS_3 first
        last_asked = threading.Event()
        azure.faults.before(_logs_query(WS_4), lambda _request: last_asked.set())
        azure.faults.before(_logs_query(WS_1), lambda _request: last_asked.wait(WAIT))
    coverage = run(tmp_path / f"{count}-readers")

    answered = [request.path.split("/")[3] for request, _ in
                azure.faults.replies[answered_before:] if _logs_query()(request)]
    if count > 1:  # read out of workspace order
        assert answered[:4] == [WS_2, WS_3, WS_3, WS_3] and sorted(answered[4:]) == [WS_1, WS_4]
    else:
        assert answered == [WS_1, WS_2, WS_3, WS_3, WS_3, WS_4]
    assert _files(tmp_path / f"{count}-readers") == _files(tmp_path / "one-reader")
    assert (coverage.reads, coverage.gaps, coverage.queries) == (one.reads, one.gaps,
                                                                 one.queries)
    assert sorted((q.workspace, q.start, q.end)
                  for q in azure.log_analytics.queries) == asked_by_one  # no query more
    assert len(asked_by_one) == 6  # one per workspace, and WS_3's two halves
    assert _history_threads() == []


def _read_failing(monkeypatch: pytest.MonkeyPatch,
                  fail: Callable[[str], None]) -> None:
    """LogAnalytics.read calls `fail(workspace)` first, which may raise."""
    read = LogAnalytics.read

    def failing(self: LogAnalytics, workspace: str, *args: Any) -> Any:
        fail(workspace)
        return read(self, workspace, *args)

    monkeypatch.setattr(LogAnalytics, "read", failing)


def test_a_readers_error_is_raised_once_the_other_reader_has_stopped(
        azure: AzureServer, history: Callable[..., dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _answers(azure)
    failed = threading.Event()

    # WS_1's query is at the server when WS_2's reader fails; it is answered once that reader
    # has ended (after halting the throttle).
    held = azure.faults.before(_logs_query(WS_1), lambda _request: failed.wait(WAIT) and _until(
        lambda: len(_history_threads()) == 1))

    def fail(workspace: str) -> None:
        if workspace == WS_2:
            assert held.arrived.wait(WAIT)
            failed.set()
            raise RuntimeError("a bug reading WS_2")

    _read_failing(monkeypatch, fail)

    with pytest.raises(RuntimeError, match="a bug reading WS_2"):
        history()

    assert held.hits == 1 and failed.is_set()
    assert [q.workspace for q in azure.log_analytics.queries] == [WS_1]  # WS_3, WS_4 never
    assert _history_threads() == []


def test_of_two_readers_errors_the_first_workspaces_is_raised(
        azure: AzureServer, history: Callable[..., dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _answers(azure)
    second_failed = threading.Event()

    def fail(workspace: str) -> None:
        if workspace == WS_1:  # fails after WS_2's reader did
            assert second_failed.wait(WAIT)
            raise RuntimeError("a bug reading WS_1")
        if workspace == WS_2:
            second_failed.set()
            raise RuntimeError("a bug reading WS_2")

    _read_failing(monkeypatch, fail)

    with pytest.raises(RuntimeError, match="a bug reading WS_1"):
        history()

    assert azure.log_analytics.queries == []
    assert _history_threads() == []


def test_a_stop_ends_both_readers_in_their_waits_at_once(
        azure: AzureServer, history: Callable[..., dict[str, Any]]) -> None:
    # Every workspace throttles for 30 s: both readers wait on the real clock when stopped.
    throttled = azure.faults.reply(_logs_query(), logs_error(
        429, "ThrottledError", "Too many requests", **{"Retry-After": "30"}), times=None)
    stop = threading.Event()
    both_asked: list[bool] = []

    def stop_once_both_wait() -> None:
        both_asked.append(_until(lambda: throttled.hits >= 2))
        time.sleep(0.1)  # both readers are now in their 30 s waits
        stop.set()

    stopper = threading.Thread(target=stop_once_both_wait)
    stopper.start()
    started = time.monotonic()

    with pytest.raises(Stopped):
        history(stop=stop)

    stopper.join()
    assert both_asked == [True]
    assert time.monotonic() - started < 15.0  # not the 30 s each was told to wait
    assert throttled.hits == 2 and azure.log_analytics.queries == []  # nothing asked after
    assert _history_threads() == []


# --- the Throttle the readers share ------------------------------------------------------------

@pytest.fixture
def frequent_switches() -> Iterator[None]:
    """Threads switch as often as the interpreter allows."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def _throttle(sleep: Callable[[float], None]) -> history_module._StoppableThrottle:
    return history_module._StoppableThrottle(sleep, time.monotonic, 60.0, None,
                                             threading.Event())


def test_the_shared_throttle_counts_every_wait_of_both_readers(
        frequent_switches: None) -> None:
    throttle = _throttle(lambda _seconds: None)

    def pause_often() -> None:
        for _ in range(20_000):
            throttle.pause(0.5)

    threads = [threading.Thread(target=pause_often) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert (throttle.waits, throttle.waited_seconds) == (40_000, 20_000.0)


def test_a_reader_waiting_does_not_hold_up_the_other() -> None:
    other_done = threading.Event()
    waited_for_other: list[bool] = []

    def sleep(seconds: float) -> None:
        if seconds == 5.0:  # the first reader's wait lasts until the second has waited
            waited_for_other.append(other_done.wait(WAIT))

    throttle = _throttle(sleep)
    first = threading.Thread(target=throttle.pause, args=(5.0,))
    first.start()
    assert _until(lambda: throttle.waits == 1)
    throttle.pause(1.0)
    other_done.set()
    first.join()

    assert waited_for_other == [True]
    assert (throttle.waits, throttle.waited_seconds) == (2, 6.0)


def test_a_halted_throttle_lets_no_reader_ask_again() -> None:
    throttle = _throttle(lambda _seconds: None)
    throttle.wait_turn()

    throttle.halt()

    with pytest.raises(Stopped):
        throttle.wait_turn()
    with pytest.raises(Stopped):
        throttle.pause(1.0)
