"""The Throttle's arithmetic, without a server: quota headers, resets, back-off and caps."""

from __future__ import annotations

import pytest

from auditor.collect.resource_graph import (
    QUOTA_WINDOW_SECONDS,
    GraphError,
    Scope,
    Throttle,
    batches,
)
from tests.collect.helpers import FakeTime


def _throttle(max_wait: float = 60.0) -> tuple[Throttle, FakeTime]:
    time = FakeTime(requests_seen=lambda: 0)
    return Throttle(time.sleep, time.clock, max_wait), time


@pytest.mark.parametrize(("header", "seconds"), [
    ("00:00:05", 5.0), ("00:01:30", 90.0), ("01:00:00", 3600.0), ("00:00:02.5", 2.5),
    ("1.00:00:01", 86401.0),
])
def test_quota_reset_times_are_read_as_timespans(header: str, seconds: float) -> None:
    throttle, time = _throttle(max_wait=1e6)
    throttle.observe({"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": header})
    throttle.wait_turn()
    assert time.sleeps == [seconds]


def test_an_unreadable_reset_falls_back_to_the_quota_window() -> None:
    throttle, time = _throttle()
    throttle.observe({"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "soon"})
    throttle.wait_turn()
    assert time.sleeps == [QUOTA_WINDOW_SECONDS]


@pytest.mark.parametrize("headers", [
    {}, {"x-ms-user-quota-remaining": "3", "x-ms-user-quota-resets-after": "00:00:05"},
    {"x-ms-user-quota-remaining": "many"},
])
def test_no_wait_while_quota_remains_or_is_not_reported(headers: dict[str, str]) -> None:
    throttle, time = _throttle()
    throttle.observe(headers)
    throttle.wait_turn()
    assert time.sleeps == []


def test_time_already_passed_is_not_waited_again() -> None:
    throttle, time = _throttle()
    throttle.observe({"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:05"})
    time.now += 4.0  # four seconds went by doing other work
    throttle.wait_turn()
    assert time.sleeps == [1.0]


def test_every_wait_is_capped_and_counted() -> None:
    throttle, time = _throttle(max_wait=10.0)
    throttle.observe({"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "01:00:00"})
    throttle.wait_turn()
    throttle.pause(25.0)
    assert time.sleeps == [10.0, 10.0]
    assert (throttle.waits, throttle.waited_seconds) == (2, 20.0)


def test_batches_and_splits_keep_every_id_once_in_order() -> None:
    ids = [f"s{n}" for n in range(7)]
    assert [s.ids for s in batches("subscriptions", ids, 3)] == [
        ("s0", "s1", "s2"), ("s3", "s4", "s5"), ("s6",)]
    first, second = Scope("subscriptions", tuple(ids)).split()
    assert first.ids + second.ids == tuple(ids) and len(first.ids) == 3


def test_scope_descriptions_name_every_id() -> None:
    assert Scope("subscriptions", ("a",)).describe() == "subscription a"
    assert Scope("subscriptions", ("a", "b")).describe() == "subscriptions a, b"
    assert Scope("management groups", ("mg",)).describe() == "management group mg"
    assert Scope("tenant").describe().startswith("tenant")


def test_graph_errors_read_as_code_status_and_message() -> None:
    error = GraphError(403, "AuthorizationFailed", "Not allowed.")
    assert error.denied and error.reason == "AuthorizationFailed (HTTP 403): Not allowed"
    assert GraphError(None, "ServiceRequestError", "refused").reason == (
        "ServiceRequestError (no response): refused")
