from __future__ import annotations

from datetime import timedelta

import pytest

from auditor.check import Status
from auditor.model import Estate, Execution, Job
from checks.health import failure_rate, ran_as_scheduled, timeout_headroom
from tests.factories import AS_OF, DELETE, make_context, make_job


def run(job: Job, days_ago: float, minutes: float = 10, status: str = "Succeeded",
        reason: str | None = None, name: str = "") -> Execution:
    start = AS_OF - timedelta(days=days_ago)
    return Execution(f"{job.id}/executions/{name or days_ago}", name or f"run-{days_ago}",
                     job.id, status, start, start + timedelta(minutes=minutes), reason)


def context_with(job: Job, runs: list[Execution], **policy: object):  # type: ignore[no-untyped-def]
    estate = Estate(jobs=(job,), executions=tuple(runs),
                    executions_by_job={job.id.lower(): tuple(sorted(
                        runs, key=lambda e: e.start_time))})  # type: ignore[arg-type,return-value]
    return make_context(estate, **policy)


NIGHTLY = make_job()  # cron 0 2 * * *, replicaTimeout 1800


def nightly(days: int, failed: int = 0) -> list[Execution]:
    """One run a night at 02:00 for `days` nights before AS_OF (2026-11-20 00:00)."""
    return [run(NIGHTLY, d - 2 / 24, status="Failed" if d <= failed else "Succeeded")
            for d in range(1, days + 1)]


# --- CAJ-016 -------------------------------------------------------------------------------
@pytest.mark.parametrize(("runs", "expected"), [
    pytest.param(nightly(20, failed=4), Status.PASS, id="pass-20-percent"),
    pytest.param(nightly(20, failed=5), Status.FAIL, id="fail-25-percent"),
    pytest.param(nightly(5, failed=5), Status.FAIL, id="fail-all-failed"),
    pytest.param(nightly(4, failed=4), Status.NOT_APPLICABLE, id="na-fewer-than-5"),
    pytest.param([run(NIGHTLY, 40, status="Failed") for _ in range(6)], Status.NOT_APPLICABLE,
                 id="na-failures-outside-window"),
    pytest.param([*nightly(5), *(run(NIGHTLY, 0.1 * i, status="Running", name=f"r{i}")
                                 for i in range(1, 5))], Status.PASS,
                 id="pass-running-not-counted"),
])
def test_failure_rate(runs: list[Execution], expected: Status) -> None:
    assert failure_rate(NIGHTLY, context_with(NIGHTLY, runs)).status is expected


def test_failure_rate_evidence_lists_failures() -> None:
    runs = nightly(10, failed=3)
    runs[0] = run(NIGHTLY, 1 - 2 / 24, status="Failed", reason="BackoffLimitExceeded")
    outcome = failure_rate(NIGHTLY, context_with(NIGHTLY, runs))
    assert outcome.status is Status.FAIL
    assert outcome.evidence[0].startswith("3 of 10 finished executions failed")
    assert any("BackoffLimitExceeded" in e for e in outcome.evidence)


# --- CAJ-017 -------------------------------------------------------------------------------
HOURLY = make_job(name="hourly", **{
    "properties.configuration.scheduleTriggerConfig.cronExpression": "15 * * * *"})


@pytest.mark.parametrize(("job", "runs", "expected"), [
    pytest.param(NIGHTLY, nightly(10), Status.PASS, id="pass-ran-last-night"),
    pytest.param(NIGHTLY, [run(NIGHTLY, 2 - 2 / 24)], Status.PASS,
                 id="pass-one-night-missed"),
    pytest.param(NIGHTLY, [run(NIGHTLY, 3 - 2 / 24)], Status.FAIL, id="fail-two-nights-missed"),
    pytest.param(HOURLY, [run(HOURLY, (45 + 60) / 1440)], Status.PASS,
                 id="pass-hourly-one-missed"),
    pytest.param(HOURLY, [run(HOURLY, (45 + 120) / 1440)], Status.FAIL,
                 id="fail-hourly-two-missed"),
    pytest.param(NIGHTLY, [], Status.UNKNOWN, id="unknown-no-executions-in-data"),
    pytest.param(make_job(**{"properties.configuration.triggerType": "Manual"}), [],
                 Status.NOT_APPLICABLE, id="na-manual"),
])
def test_ran_as_scheduled(job: Job, runs: list[Execution], expected: Status) -> None:
    assert ran_as_scheduled(job, context_with(job, runs)).status is expected


def test_missed_runs_are_listed() -> None:
    outcome = ran_as_scheduled(NIGHTLY, context_with(NIGHTLY, [run(NIGHTLY, 4 - 2 / 24)]))
    assert outcome.evidence[1:] == ("expected run at 2026-11-17 02:00Z not in the data",
                                    "expected run at 2026-11-18 02:00Z not in the data",
                                    "expected run at 2026-11-19 02:00Z not in the data")


def test_ran_as_scheduled_follows_policy() -> None:
    runs = [run(NIGHTLY, 3 - 2 / 24)]
    assert ran_as_scheduled(NIGHTLY, context_with(NIGHTLY, runs, missed_run_intervals=3)
                            ).status is Status.PASS


# --- CAJ-018 -------------------------------------------------------------------------------
def durations(*minutes: float, reason: str | None = None) -> list[Execution]:
    return [run(NIGHTLY, i + 1, m, reason=reason, name=f"d{i}") for i, m in enumerate(minutes)]


@pytest.mark.parametrize(("runs", "expected"), [
    pytest.param(durations(*[10.0] * 19, 24), Status.PASS, id="pass-p95-at-80-percent"),
    pytest.param(durations(*[10.0] * 18, 25, 25), Status.FAIL, id="fail-p95-over-80-percent"),
    pytest.param(durations(*[10.0] * 19, 30.1), Status.PASS, id="pass-one-slow-outlier"),
    pytest.param([*durations(10, 10), run(NIGHTLY, 5, 30, "Failed", "DeadlineExceeded")],
                 Status.FAIL, id="fail-deadline-exceeded"),
    pytest.param([], Status.NOT_APPLICABLE, id="na-no-executions"),
])
def test_timeout_headroom(runs: list[Execution], expected: Status) -> None:
    # replicaTimeout 1800 s: the headroom limit is 1440 s (24 min)
    assert timeout_headroom(NIGHTLY, context_with(NIGHTLY, runs)).status is expected


def test_timeout_headroom_unknown_without_timeout() -> None:
    job = make_job(**{"properties.configuration.replicaTimeout": DELETE})
    assert timeout_headroom(job, context_with(job, [])).status is Status.UNKNOWN
