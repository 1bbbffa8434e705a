"""Bounds, proven with a clock that only moves when slept on: how long each fault makes the scan
wait, that every wait and retry has a limit from settings, and that the deadline stops it.

(The matrix in test_fault_matrix.py runs the same faults through the CLI with tiny real waits.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from auditor.collect.resource_graph import DEADLINE_EXCEEDED, Deadline, Throttle
from auditor.coverage import Coverage
from auditor.errors import CollectionError
from tests.azure_server import (
    AzureServer,
    arm_error,
    graph_query,
    http_date,
    job_row,
    subscription_id,
)
from tests.collect.helpers import FakeTime, collection_record, written

Run = Callable[..., Coverage]
SUB = subscription_id(7)
JOBS = "microsoft.app/jobs"


def _estate(azure: AzureServer, jobs: int = 6) -> None:
    azure.resource_graph.add_subscription(SUB)
    azure.resource_graph.add("resources", *(job_row(SUB, f"job-{n}") for n in range(jobs)))
    azure.resource_graph.max_page_rows = 2


def _throttled(azure: AzureServer, times: int | None, **headers: str) -> None:
    azure.faults.reply(graph_query(JOBS), arm_error(429, "RateLimiting", "Slow down.",
                                                    **headers), times=times)


def test_a_storm_of_429s_with_retry_after_is_waited_out_each_time(
        azure: AzureServer, run: Run, fake_time: FakeTime, snapshot_dir: Path) -> None:
    _estate(azure)
    _throttled(azure, 20, **{"Retry-After": "30"})

    coverage = run(subscriptions=[SUB], max_retries=25)

    assert coverage.complete
    assert fake_time.sleeps == [30.0] * 20
    assert len(written(snapshot_dir, "resource-graph-jobs")) == 6
    assert collection_record(snapshot_dir)["throttling"] == {"waits": 20, "seconds": 600.0}


def test_retry_after_as_an_http_date_is_waited_until_that_time(
        azure: AzureServer, run: Run, fake_time: FakeTime) -> None:
    _estate(azure)
    _throttled(azure, 1, **{"Retry-After": http_date(45)})

    assert run(subscriptions=[SUB]).complete
    [wait] = fake_time.sleeps
    assert 40.0 <= wait <= 46.0  # the date has one-second resolution, the test takes time


def test_an_unreadable_retry_after_is_no_hint_not_a_crash(
        azure: AzureServer, run: Run, fake_time: FakeTime) -> None:
    _estate(azure)
    _throttled(azure, 3, **{"Retry-After": "when pigs fly"})

    assert run(subscriptions=[SUB]).complete
    assert len(fake_time.sleeps) <= 3 and all(s <= 60.0 for s in fake_time.sleeps)


def test_quota_at_zero_on_every_reply_paces_every_request(
        azure: AzureServer, run: Run, fake_time: FakeTime) -> None:
    _estate(azure)
    azure.resource_graph.quota_remaining = [0] * 100
    azure.resource_graph.quota_resets_after = "00:00:04"

    assert run(subscriptions=[SUB]).complete
    graph_requests = len(azure.graph_bodies())
    assert fake_time.sleeps == [4.0] * (graph_requests - 1)  # before every request but the first


def test_retries_are_bounded_by_max_retries(
        azure: AzureServer, run: Run, fake_time: FakeTime) -> None:
    _estate(azure)
    _throttled(azure, None)  # throttled for ever

    coverage = run(subscriptions=[SUB], max_retries=3, max_retry_wait_seconds=5.0)

    assert len([b for b in azure.graph_bodies()
                if f"where type =~ '{JOBS}'" in b["query"]]) == 4  # one try and 3 retries
    assert fake_time.sleeps == [1.0, 2.0, 4.0]
    [gap] = coverage.gaps
    assert gap.source == "Resource Graph jobs" and "RateLimiting (HTTP 429)" in gap.reason


def test_no_single_wait_exceeds_the_limit(azure: AzureServer, run: Run,
                                          fake_time: FakeTime) -> None:
    _estate(azure)
    _throttled(azure, 3, **{"Retry-After": http_date(86400)})

    assert run(subscriptions=[SUB], max_retry_wait_seconds=12.0).complete
    assert fake_time.sleeps == [12.0] * 3


def test_the_deadline_stops_collection_and_names_what_was_not_read(
        azure: AzureServer, run: Run, fake_time: FakeTime, snapshot_dir: Path) -> None:
    _estate(azure)
    # Every jobs page after the first is throttled for 50 s; the deadline is 120 s.
    azure.faults.reply(graph_query(JOBS, with_skip_token=True), arm_error(
        429, "RateLimiting", "Slow down.", **{"Retry-After": "50"}), times=None)

    coverage = run(subscriptions=[SUB], deadline_seconds=120.0, max_retries=50)

    assert sum(fake_time.sleeps) <= 120.0  # never sleeps past the deadline
    assert fake_time.now - 10_000.0 <= 120.0
    jobs_gap = next(g for g in coverage.gaps if g.source == "Resource Graph jobs")
    assert jobs_gap.scope == f"subscription {SUB}"
    assert "the 2 rows read before the failure are kept" in jobs_gap.reason
    others = [g for g in coverage.gaps if g.source != "Resource Graph jobs"]
    assert others and all(g.reason.startswith(DEADLINE_EXCEEDED) for g in others)
    assert "[azure] deadline_seconds" in others[0].reason
    assert len(written(snapshot_dir, "resource-graph-jobs")) == 2  # what was received is kept
    limits = collection_record(snapshot_dir)["limits"]
    assert limits["deadline_passed"] is True and limits["deadline_seconds"] == 120.0
    requests_at_deadline = len(azure.requests)
    assert requests_at_deadline < 60  # nothing was asked once the deadline had passed


def test_the_deadline_also_bounds_execution_history(
        azure: AzureServer, fake_time: FakeTime, snapshot_dir: Path) -> None:
    from datetime import UTC, datetime

    from auditor.collect.history import prepare
    from auditor.collect.live import collect
    from auditor.settings import load_settings
    from tests.azure_server import environment_row
    from tests.collect.helpers import azure_settings

    _estate(azure, jobs=2)
    azure.resource_graph.add("resources", environment_row(SUB))
    # The environments are read just as the deadline passes, after waiting out one throttling:
    # history, which starts then, finds the deadline spent before its first request.
    azure.faults.reply(graph_query("microsoft.app/managedenvironments"), arm_error(
        429, "RateLimiting", "Slow down.", **{"Retry-After": "60"}), times=1)
    history = prepare(load_settings().history, since=None, until=None, as_of=None,
                      now=datetime(2025, 6, 1, tzinfo=UTC))

    coverage = collect(azure_settings(subscriptions=[SUB], deadline_seconds=60.0),
                       snapshot_dir, sleep=fake_time.sleep, clock=fake_time.clock,
                       history=history)

    history_gaps = [g for g in coverage.gaps if "Log Analytics" in g.source]
    assert history_gaps and all(DEADLINE_EXCEEDED in g.reason for g in history_gaps)
    assert azure.log_analytics.queries == []  # not asked after the deadline


def test_a_token_refused_twice_before_anything_was_read_ends_the_scan_in_one_line(
        azure: AzureServer, run: Run) -> None:
    _estate(azure)
    azure.token = "revoked"  # az still hands out the old token

    with pytest.raises(CollectionError, match=r"rejected the token.*HTTP 401") as raised:
        run(subscriptions=[SUB])
    assert "\n" not in str(raised.value)
    assert len(azure.requests) == 2  # the first try and one with a fresh token, no more


def test_throttle_never_sleeps_past_the_deadline() -> None:
    time = FakeTime(requests_seen=lambda: 0)
    throttle = Throttle(time.sleep, time.clock, 60.0, Deadline.after(10.0, time.clock))
    throttle.pause(30.0)
    assert time.sleeps == [10.0] and throttle.expired()
    throttle.pause(30.0)
    assert time.sleeps == [10.0]  # nothing left to wait for
