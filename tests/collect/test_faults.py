"""Throttling, denied subscriptions and truncated results: recovered, or recorded as gaps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from auditor.collect.live import QUERIES
from auditor.collect.resource_graph import (
    FIRST_BACKOFF_SECONDS,
    JOBS,
    SPLIT_BUDGET,
    SUBSCRIPTIONS,
)
from auditor.coverage import Coverage
from auditor.errors import CollectionError
from auditor.snapshot import read_snapshot
from tests.azure_server import AzureServer, job_row, subscription_id
from tests.collect.helpers import SUB_A, SUB_B, SUB_C, FakeTime, collection_record, written

Run = Callable[..., Coverage]
JOBS_TYPE = "microsoft.app/jobs"


def _estate(azure: AzureServer, *subscriptions: str, jobs_each: int = 1) -> None:
    for sub in subscriptions:
        azure.resource_graph.add_subscription(sub)
        azure.resource_graph.add("resources", *(job_row(sub, f"job-{n}")
                                                for n in range(jobs_each)))


def _job_bodies(azure: AzureServer) -> list[dict[str, object]]:
    return [b for b in azure.graph_bodies() if b["query"] == JOBS.text]


# --- throttling --------------------------------------------------------------------------------

def test_429_with_retry_after_is_retried_after_that_wait(
        azure: AzureServer, run: Run, fake_time: FakeTime, snapshot_dir: Path) -> None:
    _estate(azure, SUB_A, jobs_each=3)
    azure.resource_graph.throttle(retry_after="7", only_type=JOBS_TYPE)

    coverage = run(subscriptions=[SUB_A])

    assert fake_time.sleeps == [7.0]
    first, second = _job_bodies(azure)
    assert first == second  # the same request, sent again
    assert len(written(snapshot_dir, "resource-graph-jobs")) == 3
    assert coverage.complete
    assert collection_record(snapshot_dir)["throttling"] == {"waits": 1, "seconds": 7.0}


def test_a_retry_after_longer_than_the_limit_waits_only_the_limit(
        azure: AzureServer, run: Run, fake_time: FakeTime) -> None:
    _estate(azure, SUB_A)
    azure.resource_graph.throttle(retry_after="3600", only_type=JOBS_TYPE)

    coverage = run(subscriptions=[SUB_A], max_retry_wait_seconds=20.0)

    assert fake_time.sleeps == [20.0]
    assert coverage.complete


def test_429_without_retry_after_is_retried_with_our_own_backoff(
        azure: AzureServer, run: Run, fake_time: FakeTime, snapshot_dir: Path) -> None:
    _estate(azure, SUB_A, jobs_each=2)
    azure.resource_graph.throttle(times=2, only_type=JOBS_TYPE)  # azure-core gives up on these

    coverage = run(subscriptions=[SUB_A])

    assert fake_time.sleeps == [FIRST_BACKOFF_SECONDS, 2 * FIRST_BACKOFF_SECONDS]
    bodies = _job_bodies(azure)
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]
    assert len(written(snapshot_dir, "resource-graph-jobs")) == 2
    assert coverage.complete


def test_429_without_retry_after_waits_for_the_quota_reset_it_reports(
        azure: AzureServer, run: Run, fake_time: FakeTime) -> None:
    _estate(azure, SUB_A)
    azure.resource_graph.throttle(only_type=JOBS_TYPE, **{
        "x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:04"})

    assert run(subscriptions=[SUB_A]).complete
    assert fake_time.sleeps == [4.0]


def test_throttling_that_outlasts_the_retries_is_a_gap_not_a_crash(
        azure: AzureServer, run: Run, fake_time: FakeTime) -> None:
    _estate(azure, SUB_A)
    azure.resource_graph.throttle(times=3, only_type=JOBS_TYPE)

    coverage = run(subscriptions=[SUB_A], max_retries=2)

    assert fake_time.sleeps == [1.0, 2.0]
    [gap] = coverage.gaps
    assert gap.source == "Resource Graph jobs"
    assert gap.scope == f"subscription {SUB_A}"
    assert "RateLimiting (HTTP 429)" in gap.reason
    assert not coverage.complete


def test_an_exhausted_quota_holds_the_next_query_until_it_resets(
        azure: AzureServer, run: Run, fake_time: FakeTime) -> None:
    _estate(azure, SUB_A)
    azure.resource_graph.quota_remaining = [5, 0]  # the second reply spends the last query
    azure.resource_graph.quota_resets_after = "00:00:03"

    assert run(subscriptions=[SUB_A]).complete

    # One wait, of the reset time, after the second reply and before the third request.
    assert fake_time.marks == [(2, 3.0)]
    assert len(azure.requests) == 1 + len(QUERIES)


def test_no_waiting_while_quota_remains(azure: AzureServer, run: Run,
                                        fake_time: FakeTime) -> None:
    _estate(azure, SUB_A)
    run(subscriptions=[SUB_A])
    assert fake_time.sleeps == []


# --- denied subscriptions ----------------------------------------------------------------------

def test_a_denied_subscription_is_a_gap_naming_it_and_the_others_are_read(
        azure: AzureServer, run: Run, snapshot_dir: Path) -> None:
    _estate(azure, SUB_A, SUB_B, SUB_C)
    azure.resource_graph.denied_subscriptions = {SUB_B}

    coverage = run(subscriptions=[SUB_A, SUB_B, SUB_C])

    jobs = written(snapshot_dir, "resource-graph-jobs")
    assert sorted(j["subscriptionId"] for j in jobs) == sorted([SUB_A, SUB_C])
    [gap] = coverage.gaps
    assert gap.scope == f"subscription {SUB_B}"
    assert "AuthorizationFailed (HTTP 403)" in gap.reason
    assert f"/subscriptions/{SUB_B}" in gap.reason  # Azure's own message is kept
    assert SUB_A not in gap.scope and SUB_C not in gap.scope
    assert not coverage.complete
    # Once found, the denied subscription is left out of every resource query.
    assert all(SUB_B not in b["subscriptions"] for b in azure.graph_bodies()
               if b["query"] != SUBSCRIPTIONS.text)
    record = collection_record(snapshot_dir)
    assert record["scope"]["subscriptions_not_read"] == [SUB_B]
    # The gap survives the round trip through the snapshot: the scan stays incomplete.
    assert not read_snapshot(snapshot_dir).coverage.complete


def test_splitting_a_denied_batch_is_bounded(
        azure: AzureServer, run: Run, snapshot_dir: Path) -> None:
    subscriptions = [subscription_id(n) for n in range(1, 65)]
    _estate(azure, *subscriptions)
    denied = set(subscriptions[::3])  # 22 of 64: too many to pinpoint within the budget
    azure.resource_graph.denied_subscriptions = denied

    coverage = run(subscriptions=subscriptions)

    enumeration = [b for b in azure.graph_bodies() if b["query"] == SUBSCRIPTIONS.text]
    assert len(enumeration) <= 1 + SPLIT_BUDGET
    unread = {s for gap in coverage.gaps for s in subscriptions if s in gap.scope}
    read = {j["subscriptionId"] for j in written(snapshot_dir, "resource-graph-jobs")}
    assert denied <= unread  # every denied subscription is named in a gap
    assert read | unread == set(subscriptions)  # and nothing is silently left out
    assert not read & denied
    assert any("search for which ones stopped" in gap.reason for gap in coverage.gaps)


def test_when_every_subscription_is_denied_nothing_is_read(
        azure: AzureServer, run: Run) -> None:
    _estate(azure, SUB_A, SUB_B)
    azure.resource_graph.denied_subscriptions = {SUB_A, SUB_B}

    with pytest.raises(CollectionError, match="AuthorizationFailed") as caught:
        run(subscriptions=[SUB_A, SUB_B])
    assert "\n" not in str(caught.value)


def test_a_denied_management_group_is_a_gap_naming_it(
        azure: AzureServer, run: Run, snapshot_dir: Path) -> None:
    _estate(azure, SUB_A, SUB_B)
    azure.resource_graph.management_groups = {"mg-a": [SUB_A], "mg-b": [SUB_B]}
    azure.resource_graph.denied_management_groups = {"mg-b"}

    coverage = run(management_groups=["mg-a", "mg-b"])

    [gap] = coverage.gaps
    assert gap.scope == "management group mg-b"
    assert [j["subscriptionId"] for j in written(snapshot_dir, "resource-graph-jobs")] == [SUB_A]
    assert collection_record(snapshot_dir)["scope"]["management_groups_not_read"] == ["mg-b"]


# --- truncated results -------------------------------------------------------------------------

def test_a_truncated_result_without_a_skip_token_is_a_gap(
        azure: AzureServer, run: Run, snapshot_dir: Path) -> None:
    _estate(azure, SUB_A, jobs_each=6)
    azure.resource_graph.truncate_types = {JOBS_TYPE}

    coverage = run(subscriptions=[SUB_A])

    [gap] = coverage.gaps
    assert (gap.scope, gap.source) == (f"subscription {SUB_A}", "Resource Graph jobs")
    assert "ResultTruncated" in gap.reason
    assert "3 rows read before the failure are kept" in gap.reason
    assert len(written(snapshot_dir, "resource-graph-jobs")) == 3
    assert not coverage.complete
    assert [r.source for r in coverage.reads if "jobs" in r.source] == []


def test_backoff_without_retry_after_doubles_and_is_capped(
        azure: AzureServer, run: Run, fake_time: FakeTime) -> None:
    _estate(azure, SUB_A)
    azure.resource_graph.throttle(times=4, only_type=JOBS_TYPE)

    assert run(subscriptions=[SUB_A], max_retry_wait_seconds=3.0).complete
    assert fake_time.sleeps == [1.0, 2.0, 3.0, 3.0]
