"""Cost arithmetic against hand-computed cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType

import pytest

from auditor import cost as cost_module
from auditor.actual_cost import ActualCosts
from auditor.cost import (
    ALLOCATION,
    CONSUMPTION,
    UNALLOCATED,
    AnomalyPolicy,
    CostView,
    DedicatedRates,
    JobCost,
    Rates,
    allocate,
    allocate_dedicated,
    daily_anomalies,
    execution_cost,
    free_grants,
    job_costs,
    replica_seconds,
    replica_size,
)
from auditor.model import Environment, Estate, Execution, WorkloadProfile
from tests.factories import ENV_ID, make_job

RATES = Rates("USD", vcpu_second=0.000024, gib_second=0.000003, free_vcpu_seconds=180_000,
              free_gib_seconds=360_000, source="test")
T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # a Monday
UNTIL = datetime(2026, 11, 20, tzinfo=UTC)


def execution(job_id: str, start: datetime, minutes: float | None, name: str = "e") -> Execution:
    end = start + timedelta(minutes=minutes) if minutes is not None else None
    return Execution(f"{job_id}/executions/{name}", name, job_id, "Succeeded", start, end)


def sized_job(name: str = "j", cpu: float = 0.5, memory: str = "1Gi", **changes: object):
    return make_job(name=name, **{"properties.template.containers": [
        {"name": "main", "image": "contosoacr.azurecr.io/x:1",
         "resources": {"cpu": cpu, "memory": memory}}], **changes})


def test_one_replica_ten_minutes() -> None:
    job = sized_job()
    priced = execution_cost(job, execution(job.id, T0, 10), RATES, UNTIL)
    assert priced is not None
    # 600 s x 0.5 vCPU = 300 vCPU-s; 600 s x 1 GiB = 600 GiB-s
    assert (priced.vcpu_seconds, priced.gib_seconds) == (300, 600)
    assert priced.cost == pytest.approx(300 * 0.000024 + 600 * 0.000003)  # 0.009
    assert priced.method == CONSUMPTION and not priced.unfinished


@pytest.mark.parametrize(("completions", "parallelism", "expected"), [
    (1, 1, 600), (4, 4, 2400), (4, 2, 1200), (5, 2, 1000), (1, 4, 600), (None, None, 600),
])
def test_replica_seconds_follow_completions_and_parallelism(
        completions: int | None, parallelism: int | None, expected: float) -> None:
    job = make_job(**{"properties.configuration.scheduleTriggerConfig": {
        "cronExpression": "0 2 * * *", "replicaCompletionCount": completions,
        "parallelism": parallelism}})
    # 600 s of wall time: waves = ceil(completions / parallelism), completions replicas run
    assert replica_seconds(job, 600) == pytest.approx(expected)


def test_replica_size_sums_main_containers_only() -> None:
    job = make_job(**{
        "properties.template.containers": [
            {"name": "a", "image": "i", "resources": {"cpu": 0.5, "memory": "1Gi"}},
            {"name": "b", "image": "i", "resources": {"cpu": 0.25, "memory": "512Mi"}}],
        "properties.template.initContainers": [
            {"name": "init", "image": "i", "resources": {"cpu": 2, "memory": "4Gi"}}]})
    assert replica_size(job) == (0.75, 1.5)
    unknown = make_job(**{"properties.template.containers": [{"name": "a", "image": "i"}]})
    assert replica_size(unknown) is None


def test_running_execution_is_counted_to_the_cut_off_and_marked() -> None:
    job = sized_job()
    priced = execution_cost(job, execution(job.id, UNTIL - timedelta(minutes=5), None),
                            RATES, UNTIL)
    assert priced is not None and priced.unfinished and priced.seconds == 300


def test_dedicated_profile_is_an_allocation() -> None:
    job = sized_job(**{"properties.workloadProfileName": "D4-batch"})
    priced = execution_cost(job, execution(job.id, T0, 10), RATES, UNTIL)
    assert priced is not None and priced.method == ALLOCATION
    consumption = sized_job(**{"properties.workloadProfileName": "Consumption"})
    priced = execution_cost(consumption, execution(consumption.id, T0, 10), RATES, UNTIL)
    assert priced is not None and priced.method == CONSUMPTION


def test_job_costs_keep_executions_inside_the_window_only() -> None:
    job = sized_job()
    executions = (execution(job.id, T0, 10, "in"),
                  execution(job.id, T0 - timedelta(days=40), 10, "before"),
                  execution("/other/job", T0, 10, "elsewhere"))
    (cost,) = job_costs(Estate(jobs=(job,), executions=executions), RATES,
                        since=UNTIL - timedelta(days=30), until=UNTIL)
    assert [e.execution for e in cost.executions] == ["in"]
    assert cost.total == pytest.approx(0.009)


def test_free_grant_is_a_separate_credit_capped_at_the_grant() -> None:
    job = sized_job(cpu=2, memory="4Gi")
    # 30 runs of 1 h at 2 vCPU: 216,000 vCPU-s (over the 180,000 grant); 4 GiB: 432,000 GiB-s
    runs = [execution(job.id, T0 + timedelta(days=i % 18, hours=i // 18), 60, f"r{i}")
            for i in range(30)]
    cost = JobCost(job, [c for r in runs if (c := execution_cost(job, r, RATES, UNTIL))])
    (grant,) = free_grants([cost], RATES)
    assert (grant.vcpu_seconds_used, grant.gib_seconds_used) == (216_000, 432_000)
    assert grant.month == "2026-11"
    assert grant.credit == pytest.approx(-(180_000 * 0.000024 + 360_000 * 0.000003))
    assert cost.total == pytest.approx(216_000 * 0.000024 + 432_000 * 0.000003)


def test_allocation_keeps_untagged_cost_in_its_own_bucket() -> None:
    tagged, untagged = sized_job("a"), sized_job("b", tags={"cost-center": "CC-1"})
    costs = [JobCost(tagged, [execution_cost(tagged, execution(tagged.id, T0, 10), RATES,
                                             UNTIL)]),  # type: ignore[list-item]
             JobCost(untagged, [execution_cost(untagged, execution(untagged.id, T0, 20),
                                               RATES, UNTIL)])]  # type: ignore[list-item]
    by_owner = allocate(costs, "owner")
    assert by_owner == {UNALLOCATED: pytest.approx(0.018),
                        "team-data@contoso.com": pytest.approx(0.009)}
    assert sum(by_owner.values()) == pytest.approx(sum(c.total for c in costs))
    assert set(allocate(costs, "subscription")) == {tagged.subscription_id}


POLICY = AnomalyPolicy(relative_floor=0.5, absolute_floor=5.0, min_history_days=7,
                       lookback_days=7, z_threshold=3.0)


def series(job_id: str, minutes_by_day: list[float], start: date = date(2026, 10, 21)
           ) -> list[Execution]:
    return [execution(job_id, datetime(start.year, start.month, start.day, 2, tzinfo=UTC)
                      + timedelta(days=i), m, f"d{i}") for i, m in enumerate(minutes_by_day)
            if m]


def costs_of(job: object, executions: list[Execution]) -> JobCost:
    return JobCost(job, [c for e in executions  # type: ignore[arg-type]
                         if (c := execution_cost(job, e, RATES, UNTIL))])  # type: ignore[arg-type]


BIG = sized_job("big", cpu=4, memory="8Gi")  # 4 x 0.000024 + 8 x 0.000003 = 0.00012 USD/s


def test_spike_over_both_floors_is_an_anomaly_with_its_driver() -> None:
    minutes = [60.0] * 29 + [600.0]  # 60 min is 0.432 USD a day; 600 min is 4.32 + ...
    minutes[-1] = 1200.0  # 8.64 USD against 0.432: +8.2 USD, x20
    found = daily_anomalies(costs_of(BIG, series(BIG.id, minutes)), date(2026, 10, 21),
                            date(2026, 11, 20), POLICY)
    assert found is not None
    (anomaly,) = found
    assert anomaly.day == date(2026, 11, 19)
    assert anomaly.expected == pytest.approx(0.432)
    assert anomaly.actual == pytest.approx(8.64)
    assert anomaly.driver.startswith("longer executions")


def test_flat_series_and_pennies_never_alert() -> None:
    flat = daily_anomalies(costs_of(BIG, series(BIG.id, [60.0] * 30)), date(2026, 10, 21),
                           date(2026, 11, 20), POLICY)
    assert flat == []
    small = sized_job("small", cpu=0.25, memory="0.5Gi")
    pennies = daily_anomalies(costs_of(small, series(small.id, [10.0] * 29 + [100.0])),
                              date(2026, 10, 21), date(2026, 11, 20), POLICY)
    assert pennies == [], "x10 but far below 5 USD a day"


def test_weekly_pattern_is_not_an_anomaly() -> None:
    # Heavy every Monday (the series starts on a Wednesday: Mondays are days 5, 12, 19, 26)
    minutes = [600.0 if i % 7 == 5 else 60.0 for i in range(30)]
    found = daily_anomalies(costs_of(BIG, series(BIG.id, minutes)), date(2026, 10, 21),
                            date(2026, 11, 20), POLICY)
    assert found == []


def test_new_job_is_reported_as_new_not_anomalous() -> None:
    found = daily_anomalies(costs_of(BIG, series(BIG.id, [60.0, 1200.0],
                                                 start=date(2026, 11, 17))),
                            date(2026, 10, 21), date(2026, 11, 20), POLICY)
    assert found is None


def test_a_job_that_runs_on_few_days_is_judged_against_its_run_days() -> None:
    minutes = [0.0] * 30
    for day in (2, 9, 16, 23, 29):
        minutes[day] = 600.0  # 4.32 USD on each run day, nothing in between
    found = daily_anomalies(costs_of(BIG, series(BIG.id, minutes)), date(2026, 10, 21),
                            date(2026, 11, 20), POLICY)
    assert found == []
    minutes[29] = 6000.0  # ten times the usual run
    (anomaly,) = daily_anomalies(costs_of(BIG, series(BIG.id, minutes)), date(2026, 10, 21),
                                 date(2026, 11, 20), POLICY) or []
    assert anomaly.expected == pytest.approx(4.32)


def test_dedicated_profile_cost_is_shared_by_occupied_instance_hours() -> None:
    environment = Environment(
        ENV_ID, "env-prod", None, None, None, MappingProxyType({}), None, None, None, None, None,
        workload_profiles=(WorkloadProfile("D4-batch", "D4", 1, 3),))
    on_profile = {"properties.workloadProfileName": "D4-batch"}
    half = sized_job("half", cpu=2, memory="4Gi", **on_profile)  # half of a D4's 4 vCPU
    memory = sized_job("memory", cpu=1, memory="8Gi", **on_profile)  # half of its 16 GiB
    since, until = UNTIL - timedelta(days=1), UNTIL  # a 24-hour window
    estate = Estate(jobs=(half, memory), environments={ENV_ID.lower(): environment},
                    executions=(execution(half.id, since, 360), execution(memory.id, since, 120)))
    costs = job_costs(estate, RATES, since, until)
    rates = DedicatedRates(vcpu_hour=0.05, gib_hour=0.005, management_hour=0.1)
    (profile,) = allocate_dedicated(costs, estate, rates, since, until)
    # A D4 instance costs 4 x 0.05 + 16 x 0.005 = 0.28 an hour; minimum 1 instance for 24 h.
    # Occupied: 6 h x 0.5 + 2 h x 0.5 = 4 instance-hours, less than the 24 reserved.
    assert profile.instance_hours == 24
    assert profile.cost == pytest.approx(24 * 0.28 + 24 * 0.1)
    by_name = {c.job.name: c for c in costs}
    assert by_name["half"].total == pytest.approx(profile.cost * 3 / 24)
    assert by_name["memory"].total == pytest.approx(profile.cost * 1 / 24)
    assert profile.idle == pytest.approx(profile.cost * 20 / 24), "idle capacity is shown"
    assert all(e.method == ALLOCATION for c in costs for e in c.executions)


def test_a_view_of_some_jobs_keeps_the_anomalies_already_found(
        monkeypatch: pytest.MonkeyPatch) -> None:
    other = sized_job("other")
    minutes = [60.0] * 29 + [1200.0]
    view = CostView(jobs={BIG.id.lower(): costs_of(BIG, series(BIG.id, minutes)),
                          other.id.lower(): costs_of(other, series(other.id, [60.0] * 30))},
                    since=datetime(2026, 10, 21, tzinfo=UTC), until=UNTIL, currency="USD",
                    anomaly=POLICY, actual=ActualCosts({}, "USD", ("x.csv",), 0))
    found = view.anomalies(BIG)
    assert found is not None and len(found) == 1
    monkeypatch.setattr(cost_module, "daily_anomalies", None)  # no second computation
    part = view.of_jobs([BIG.id.lower()])
    assert list(part.jobs) == [BIG.id.lower()]
    assert part.actual is None and part.profiles == ()
    assert part.anomalies(BIG) == found
    assert view.jobs.keys() == {BIG.id.lower(), other.id.lower()}, "the whole view is unchanged"
