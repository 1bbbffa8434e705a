"""Estimated cost of job executions, allocation by owner, and daily cost anomalies.

Consumption-plan jobs pay only while replicas run: vCPU-seconds and GiB-seconds at the active
rates, no idle or request charges. An execution runs `replicaCompletionCount` replicas,
`parallelism` at a time, so its replica-seconds are completions * (wall time / waves). Jobs on a
dedicated workload profile pay for profile instances, not per execution: their figure is an
allocation at consumption-equivalent rates, marked as such, never presented as a meter reading.
The monthly free grant is a separate credit line per subscription, never netted into job costs.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from auditor.actual_cost import ActualCosts
from auditor.model import Estate, Execution, Job

CONSUMPTION = "consumption-meter"
ALLOCATION = "dedicated-allocation"
UNALLOCATED = "(unallocated)"


@dataclass(frozen=True, slots=True)
class Rates:
    currency: str
    vcpu_second: float
    gib_second: float
    free_vcpu_seconds: float
    free_gib_seconds: float
    source: str  # where the rates came from, for the report


# Not frozen, like model.Execution: there are millions. Nothing assigns to one once priced.
@dataclass(slots=True, unsafe_hash=True)
class ExecutionCost:
    job_id: str
    execution: str
    day: date
    seconds: float  # wall time
    vcpu_seconds: float
    gib_seconds: float
    vcpu_cost: float
    gib_cost: float
    method: str  # CONSUMPTION or ALLOCATION
    unfinished: bool  # still running at the cut-off: counted up to it

    @property
    def cost(self) -> float:
        return self.vcpu_cost + self.gib_cost


@dataclass(slots=True)
class JobCost:
    job: Job
    executions: list[ExecutionCost] = field(default_factory=list)
    # The sum of the executions' cost, kept with them: reports sort and total by it many times.
    total: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.total = sum(e.cost for e in self.executions)

    def replace_executions(self, executions: list[ExecutionCost]) -> None:
        self.executions = executions
        self.total = sum(e.cost for e in executions)

    @property
    def method(self) -> str:
        return self.executions[0].method if self.executions else CONSUMPTION

    def daily(self) -> dict[date, float]:
        days: dict[date, float] = defaultdict(float)
        for e in self.executions:
            days[e.day] += e.cost
        return dict(days)


@dataclass(frozen=True, slots=True)
class FreeGrant:
    """The monthly free grant of one subscription, as a credit line."""

    subscription_id: str
    month: str  # YYYY-MM
    vcpu_seconds_used: float
    gib_seconds_used: float
    credit: float  # negative: what the grant takes off the bill


def replica_size(job: Job) -> tuple[float, float] | None:
    """vCPU and GiB of one replica: the main containers run together and sum."""
    main = [c for c in job.containers or () if not c.is_init]
    if not main or any(c.cpu is None or c.memory_gib is None for c in main):
        return None
    return sum(c.cpu or 0.0 for c in main), sum(c.memory_gib or 0.0 for c in main)


def replica_seconds(job: Job, wall_seconds: float) -> float:
    """Replica-seconds of one execution: completions times the wall time of one wave."""
    completions = max(job.replica_completion_count or 1, 1)
    parallelism = max(job.parallelism or 1, 1)
    waves = math.ceil(completions / parallelism)
    return completions * wall_seconds / waves


def execution_cost(job: Job, execution: Execution, rates: Rates,
                   until: datetime) -> ExecutionCost | None:
    """None when the execution never started or the job's size is unknown."""
    return _Pricing(job, rates, until)(execution)


@dataclass(frozen=True, slots=True)
class _Pricing:
    """What pricing one job's executions needs, worked out once per job, not per execution."""

    job: Job
    rates: Rates
    until: datetime
    size: tuple[float, float] | None = field(init=False)
    method: str = field(init=False)
    completions: int = field(init=False)  # replicas per execution
    waves: int = field(init=False)  # how many times `parallelism` replicas run one after another

    def __post_init__(self) -> None:
        profile = (self.job.workload_profile_name or "").lower()
        completions = max(self.job.replica_completion_count or 1, 1)
        for name, value in (
                ("size", replica_size(self.job)),
                ("method", ALLOCATION if profile and profile != "consumption" else CONSUMPTION),
                ("completions", completions),
                ("waves", math.ceil(completions / max(self.job.parallelism or 1, 1)))):
            object.__setattr__(self, name, value)

    def __call__(self, execution: Execution) -> ExecutionCost | None:
        start, size, until = execution.start_time, self.size, self.until
        if start is None or size is None:
            return None
        end = execution.end_time
        wall = ((until if end is None or end > until else end) - start).total_seconds()
        if wall < 0:
            wall = 0.0
        seconds = self.completions * wall / self.waves  # as replica_seconds works it out
        vcpu, gib = size[0] * seconds, size[1] * seconds
        return ExecutionCost(  # positional: keywords cost more than the rest of the call
            self.job.id, execution.name, start.date(), wall, vcpu, gib,
            vcpu * self.rates.vcpu_second, gib * self.rates.gib_second, self.method, end is None)


def job_costs(estate: Estate, rates: Rates | Callable[[Job], Rates], since: datetime,
              until: datetime) -> list[JobCost]:
    """Every job with the cost of its executions that started inside [since, until).

    `rates` is one set for all jobs, or a function giving each job its region's rates.
    """
    rates_for = rates if callable(rates) else (lambda job: rates)
    pricing = {j.id.lower(): _Pricing(j, rates_for(j), until) for j in estate.jobs}
    priced: dict[str, list[ExecutionCost]] = {key: [] for key in pricing}
    for execution in estate.executions:  # in snapshot order, so sums add up the same way
        key = (execution.job_id or "").lower()
        price_of = pricing.get(key)
        started = execution.start_time
        if price_of is None or started is None or not since <= started < until:
            continue
        cost = price_of(execution)
        if cost is not None:
            priced[key].append(cost)
    return [JobCost(p.job, priced[key]) for key, p in pricing.items()]


def free_grants(costs: Iterable[JobCost], rates: Rates) -> list[FreeGrant]:
    """Per subscription and month, the consumption usage the free grant covers."""
    usage: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    months: dict[date, str] = {}
    for job_cost in costs:
        for e in job_cost.executions:
            if e.method == CONSUMPTION:
                month = months.get(e.day) or months.setdefault(e.day, e.day.strftime("%Y-%m"))
                key = (job_cost.job.subscription_id or "", month)
                usage[key][0] += e.vcpu_seconds
                usage[key][1] += e.gib_seconds
    return [FreeGrant(sub, month, vcpu, gib, -(
        min(vcpu, rates.free_vcpu_seconds) * rates.vcpu_second
        + min(gib, rates.free_gib_seconds) * rates.gib_second))
        for (sub, month), (vcpu, gib) in sorted(usage.items())]


def allocate(costs: Iterable[JobCost], key: str) -> dict[str, float]:
    """Total cost by a tag (case-insensitive name) or by `subscription` / `resource_group`;
    jobs without a value land in the unallocated bucket, never dropped."""
    totals: dict[str, float] = defaultdict(float)
    for job_cost in costs:
        job = job_cost.job
        value = {"subscription": job.subscription_id,
                 "resource_group": job.resource_group}.get(key) if key in (
            "subscription", "resource_group") else job.tag(key)
        totals[(value or "").strip() or UNALLOCATED] += job_cost.total
    return dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))


# --- dedicated workload profiles ----------------------------------------------------------------

# vCPU and GiB of one instance of each dedicated profile size.
PROFILE_SIZES = {"D4": (4, 16), "D8": (8, 32), "D16": (16, 64), "D32": (32, 128),
                 "E4": (4, 32), "E8": (8, 64), "E16": (16, 128), "E32": (32, 256)}


@dataclass(frozen=True, slots=True)
class DedicatedRates:
    vcpu_hour: float
    gib_hour: float
    management_hour: float  # per environment with dedicated profiles


@dataclass(frozen=True, slots=True)
class ProfileCost:
    """What one dedicated profile cost in the window, and how much of it jobs account for."""

    environment_id: str
    profile: str
    instance_hours: float
    cost: float
    allocated: float  # to jobs, by their share of the instance-hours they occupied

    @property
    def idle(self) -> float:
        return self.cost - self.allocated


def allocate_dedicated(costs: list[JobCost], estate: Estate, rates: DedicatedRates,
                       since: datetime, until: datetime) -> list[ProfileCost]:
    """Replace the consumption-equivalent figures of jobs on dedicated profiles by their share
    of the profile's instance cost.

    A profile costs instance-hours at the dedicated rates: at least its minimum instance count
    for the whole window, more when its jobs occupied more. Each job's share is the
    instance-hours its replicas occupied (replica-seconds x the larger of its vCPU and memory
    fraction of an instance); capacity no job used stays with the profile as idle cost. The
    environment's management fee is spread the same way. Profiles of unknown size keep the
    consumption-equivalent allocation.
    """
    hours = (until - since).total_seconds() / 3600
    by_profile: dict[tuple[str, str], list[tuple[JobCost, float]]] = defaultdict(list)
    for job_cost in costs:
        environment = estate.environment_of(job_cost.job)
        profile = environment.profile(job_cost.job.workload_profile_name) if environment else None
        size = PROFILE_SIZES.get((profile.type or "").upper()) if profile else None
        shape = replica_size(job_cost.job)
        if environment is None or profile is None or size is None or shape is None:
            continue
        occupied = max(shape[0] / size[0], shape[1] / size[1]) * sum(
            e.vcpu_seconds / shape[0] for e in job_cost.executions) / 3600 if shape[0] else 0.0
        by_profile[(environment.id, profile.name)].append((job_cost, occupied))
    results = []
    for (environment_id, name), jobs in sorted(by_profile.items()):
        environment = estate.environments[environment_id.lower()]
        profile = environment.profile(name)
        assert profile is not None and profile.type is not None
        vcpu, gib = PROFILE_SIZES[profile.type.upper()]
        used = sum(occupied for _, occupied in jobs)
        instance_hours = max((profile.minimum_count or 0) * hours, used)
        fee = rates.management_hour * hours / sum(
            1 for e, _ in by_profile if e == environment_id)
        cost = instance_hours * (vcpu * rates.vcpu_hour + gib * rates.gib_hour) + fee
        allocated = 0.0
        for job_cost, occupied in jobs:
            share = cost * occupied / instance_hours if instance_hours else 0.0
            _rescale(job_cost, share)
            allocated += share
        results.append(ProfileCost(environment_id, name, instance_hours, cost, allocated))
    return results


def _rescale(job_cost: JobCost, total: float) -> None:
    """Spread `total` over the job's executions in proportion to their usage."""
    current = job_cost.total
    factor = total / current if current else 0.0
    job_cost.replace_executions([replace(e, vcpu_cost=e.vcpu_cost * factor,
                                         gib_cost=e.gib_cost * factor, method=ALLOCATION)
                                 for e in job_cost.executions])


# --- anomalies --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Anomaly:
    day: date
    expected: float
    actual: float
    driver: str

    @property
    def delta(self) -> float:
        return self.actual - self.expected


@dataclass(frozen=True, slots=True)
class AnomalyPolicy:
    relative_floor: float  # e.g. 0.5: at least +50 % over the baseline
    absolute_floor: float  # e.g. 5.0 currency units a day
    min_history_days: int  # fewer days of history: the job is new, not anomalous
    lookback_days: int  # only the most recent days are judged
    z_threshold: float  # robust z-score (median/MAD) when the baseline varies


def daily_anomalies(job_cost: JobCost, start: date, end: date,
                    policy: AnomalyPolicy) -> list[Anomaly] | None:
    """Days in the last `lookback_days` before `end` whose cost departs from the job's baseline.

    Baseline: the median of the same weekday in earlier weeks when there are three or more of
    them (weekly seasonality), else the median of all earlier days. Days without executions
    count as zero, except for a job that runs on fewer than half of the days: its run days are
    compared with its earlier run days, so an ordinary run is not an anomaly. A day is anomalous
    only above both floors and, when the baseline varies (MAD > 0), above the robust z
    threshold: flat series and pennies never alert.
    Returns None when the job has too little history to judge (a new job).
    """
    daily = job_cost.daily()
    if not daily:
        return []
    first = max(min(daily), start)
    if (end - first).days < policy.min_history_days:
        return None
    # Day i of the series is `first` + i days: history is a prefix, a weekday a stride of 7.
    by_ordinal = {day.toordinal(): cost for day, cost in daily.items()}
    origin = first.toordinal()
    series = [by_ordinal.get(origin + i, 0.0) for i in range((end - first).days)]
    run_values = [v for v in series if v > 0]
    run_days_before = list(itertools.accumulate((v > 0 for v in series), initial=0))
    found = []
    for i in range(max(len(series) - policy.lookback_days, 0), len(series)):
        if run_days_before[i] * 2 < i:
            baseline = run_values[:run_days_before[i]]  # runs on few days: its run days
        else:
            same_weekday = series[i % 7:i:7]
            baseline = same_weekday if len(same_weekday) >= 3 else series[:i]
        if not baseline:
            continue
        expected = statistics.median(baseline)
        actual = series[i]
        delta = actual - expected
        if delta < policy.absolute_floor or actual < expected * (1 + policy.relative_floor):
            continue
        mad = statistics.median(abs(v - expected) for v in baseline)
        if mad > 0 and delta / (1.4826 * mad) < policy.z_threshold:
            continue
        day = first + timedelta(days=i)
        found.append(Anomaly(day, expected, actual, _driver(job_cost, day, first)))
    return found


def _driver(job_cost: JobCost, day: date, first: date) -> str:
    """Which of count, duration or size moved the most against the days from `first` on."""
    on_day = [e for e in job_cost.executions if e.day == day]
    before = [e for e in job_cost.executions if first <= e.day < day]
    if not before:
        return "no earlier executions to compare"
    days_before = max(len({e.day for e in before}), 1)
    count_ratio = len(on_day) / (len(before) / days_before)
    seconds_ratio = _mean(e.seconds for e in on_day) / max(_mean(e.seconds for e in before), 1e-9)
    size_ratio = _mean(e.vcpu_seconds / max(e.seconds, 1e-9) for e in on_day) / max(
        _mean(e.vcpu_seconds / max(e.seconds, 1e-9) for e in before), 1e-9)
    drivers = {"more executions": count_ratio, "longer executions": seconds_ratio,
               "bigger replicas": size_ratio}
    name, ratio = max(drivers.items(), key=lambda kv: kv[1])
    return f"{name} ({ratio:.1f} times the usual)"


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def currency_totals(costs: Iterable[JobCost]) -> Mapping[str, float]:
    """Estimated total by method, so allocations are never added to metered cost unawares."""
    totals: dict[str, float] = defaultdict(float)
    for job_cost in costs:
        for e in job_cost.executions:
            totals[e.method] += e.cost
    return dict(totals)


@dataclass(frozen=True, slots=True)
class CostView:
    """What the scan priced: checks and reports read it, nobody recomputes it."""

    jobs: Mapping[str, JobCost]  # lower-cased job id -> its cost
    since: datetime
    until: datetime
    currency: str
    anomaly: AnomalyPolicy
    rate_sources: Mapping[str, str] = field(default_factory=dict)  # job id -> rates used
    actual: ActualCosts | None = None  # from a Cost Management export, when given
    profiles: tuple[ProfileCost, ...] = ()  # dedicated profiles, allocated to their jobs
    # `anomalies` per lower-cased job id, computed once: the check and several reports ask for
    # every job's. Not an init field, so `dataclasses.replace` starts afresh.
    _anomalies: dict[str, list[Anomaly] | None] = field(default_factory=dict, init=False,
                                                        repr=False, compare=False)

    def of(self, job: Job) -> JobCost | None:
        return self.jobs.get(job.id.lower())

    def of_jobs(self, ids: Iterable[str]) -> CostView:
        """The view of some jobs (lower-cased ids) alone, without the dedicated profiles and
        actual costs that belong to the whole estate; anomalies already found are kept."""
        view = replace(self, jobs={k: self.jobs[k] for k in ids if k in self.jobs}, profiles=(),
                       actual=None)
        view._anomalies.update((k, v) for k, v in self._anomalies.items() if k in view.jobs)
        return view

    def anomalies(self, job: Job) -> list[Anomaly] | None:
        key = job.id.lower()
        if key not in self._anomalies:
            cost = self.jobs.get(key)
            self._anomalies[key] = [] if cost is None else daily_anomalies(
                cost, self.since.date(), self.until.date(), self.anomaly)
        found = self._anomalies[key]
        return None if found is None else list(found)
