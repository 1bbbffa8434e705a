"""What the reports say about execution health and cost, decided once for every writer.

Figures come from the scan's `CostView` and the executions in the estate; nothing here prices
or judges anything again. Estimates from dedicated workload profiles are allocations and are
labelled so; the free grant is its own credit line, never netted into a job's cost.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from auditor.cost import (
    ALLOCATION,
    UNALLOCATED,
    Anomaly,
    CostView,
    FreeGrant,
    JobCost,
    ProfileCost,
    Rates,
    allocate,
    free_grants,
)
from auditor.model import Execution, Job
from auditor.results import ScanReport
from auditor.settings import Settings
from reports.tables import Column, Table

T = TypeVar("T")


class Priced(Protocol):
    """What the cost figures per job and the free grants read: a ScanReport, or the scan's
    priced estate before its checks have run (`PricedEstate`, for the cost export that starts
    early: reports.start_early)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def cost(self) -> CostView | None: ...


@dataclass(frozen=True, slots=True)
class PricedEstate:
    settings: Settings
    cost: CostView | None


def _table(title: str, columns: tuple[Column[T], ...], items: Iterable[T]) -> Table:
    return Table(title, columns, (tuple(c.value(item) for c in columns) for item in items))

FAILED = {"failed", "degraded"}
FINISHED = FAILED | {"succeeded"}


# --- execution health ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Health:
    job: Job
    runs: int
    succeeded: int
    failed: int
    timeouts: int
    p50_seconds: float | None
    p95_seconds: float | None
    last_run: datetime | None
    last_status: str | None
    source: str

    @property
    def failure_rate(self) -> float | None:
        finished = self.succeeded + self.failed
        return self.failed / finished if finished else None


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    return values[max(math.ceil(share * len(values)) - 1, 0)]


def history_source(report: ScanReport, job: Job) -> str:
    """Where the job's executions came from: the collector's record, else the export."""
    recorded = report.estate.history_sources.get(job.id.lower())
    if recorded:
        return recorded
    return "export" if report.estate.executions_of(job) else "none"


def health(report: ScanReport) -> list[Health]:
    """Per job, over the cost window (the history the scan read); worked out once per report
    (report.md and the workbook both show it: a large estate has hundreds of thousands of
    executions)."""
    if "health" not in report.memo:
        report.memo["health"] = _health(report)
    rows: list[Health] = report.memo["health"]
    return rows


def _health(report: ScanReport) -> list[Health]:
    window = report.cost
    rows = []
    for job in report.estate.jobs:
        runs: list[Execution] = [
            e for e in report.estate.executions_of(job) if e.start_time is not None and (
                window is None or window.since <= e.start_time < window.until)]
        statuses = [(e.status or "").lower() for e in runs]
        durations = sorted((e.end_time - e.start_time).total_seconds() for e in runs
                           if e.end_time is not None and e.start_time is not None)
        last = runs[-1] if runs else None
        rows.append(Health(
            job=job, runs=len(runs), succeeded=statuses.count("succeeded"),
            failed=sum(s in FAILED for s in statuses),
            timeouts=sum((e.reason or "").lower() == "deadlineexceeded" for e in runs),
            p50_seconds=_percentile(durations, 0.5), p95_seconds=_percentile(durations, 0.95),
            last_run=last.start_time if last else None, last_status=last.status if last else None,
            source=history_source(report, job)))
    return rows


def unhealthy(report: ScanReport) -> list[Health]:
    """Jobs with failing runs or timeouts, worst first."""
    rows = [h for h in health(report) if h.failed or h.timeouts]
    return sorted(rows, key=lambda h: (-(h.failure_rate or 0), -h.timeouts, h.job.name))


def executions(report: ScanReport) -> Table:
    columns: tuple[Column[Health], ...] = (
        Column("Job", lambda h: h.job.name, 26),
        Column("Resource group", lambda h: h.job.resource_group, 22),
        Column("Owner", lambda h: report.owner(h.job), 20),
        Column("Trigger", lambda h: h.job.trigger_type.value if h.job.trigger_type else None, 10),
        Column("Runs", lambda h: h.runs, 8),
        Column("Succeeded", lambda h: h.succeeded, 10),
        Column("Failed", lambda h: h.failed, 8),
        Column("Failure rate", lambda h: h.failure_rate, 10, "percent"),
        Column("Hit timeout", lambda h: h.timeouts, 10),
        Column("p50 duration (s)", lambda h: h.p50_seconds, 12),
        Column("p95 duration (s)", lambda h: h.p95_seconds, 12),
        Column("Timeout (s)", lambda h: h.job.replica_timeout, 10),
        Column("Last run (UTC)", lambda h: h.last_run, 20),
        Column("Last status", lambda h: h.last_status, 12),
        Column("History source", lambda h: h.source, 16),
        Column("Resource id", lambda h: h.job.id, 60),
    )
    return _table("Executions", columns, health(report))


# --- cost ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OwnerCost:
    owner: str
    jobs: int
    executions: int
    cost: float
    share: float | None


def job_cost_rows(report: Priced) -> list[JobCost]:
    if report.cost is None:
        return []
    return sorted(report.cost.jobs.values(), key=lambda c: (-c.total, c.job.name))


def by_owner(report: ScanReport) -> list[OwnerCost]:
    """Cost per owner tag value; untagged jobs in the unallocated bucket, never dropped."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for cost in job_cost_rows(report):
        entry = totals[report.owner(cost.job) or UNALLOCATED]
        entry[0] += 1
        entry[1] += len(cost.executions)
        entry[2] += cost.total
    grand = sum(t[2] for t in totals.values())
    rows = [OwnerCost(owner, int(t[0]), int(t[1]), t[2], t[2] / grand if grand else None)
            for owner, t in totals.items()]
    return sorted(rows, key=lambda r: (-r.cost, r.owner))


def grants(report: Priced) -> list[FreeGrant]:
    if report.cost is None:
        return []
    rates = report.settings.cost
    return free_grants(job_cost_rows(report), Rates(
        rates.currency, rates.vcpu_second, rates.gib_second, rates.free_vcpu_seconds,
        rates.free_gib_seconds, "config"))


def cost_by_owner(report: ScanReport) -> Table:
    currency = report.settings.cost.currency
    columns: tuple[Column[OwnerCost], ...] = (
        Column("Owner", lambda r: r.owner, 30),
        Column("Jobs", lambda r: r.jobs, 8),
        Column("Executions", lambda r: r.executions, 10),
        Column(f"Estimated cost ({currency})", lambda r: round(r.cost, 4), 16),
        Column("Share", lambda r: r.share, 10, "percent"),
    )
    return _table("Cost by owner", columns, by_owner(report))


def free_grant_table(report: ScanReport) -> Table:
    currency = report.settings.cost.currency
    columns: tuple[Column[FreeGrant], ...] = (
        Column("Subscription", lambda g: g.subscription_id, 38),
        Column("Month", lambda g: g.month, 10),
        Column("vCPU-seconds used", lambda g: round(g.vcpu_seconds_used), 14),
        Column("GiB-seconds used", lambda g: round(g.gib_seconds_used), 14),
        Column(f"Free grant credit ({currency})", lambda g: round(g.credit, 4), 16),
    )
    return _table("Free grant", columns, grants(report))


def cost_by_job(report: ScanReport) -> Table:
    currency = report.settings.cost.currency
    sources = report.cost.rate_sources if report.cost else {}
    actual = report.cost.actual if report.cost else None
    actual_currency = (actual.currency or currency) if actual else "no export given"
    columns: tuple[Column[JobCost], ...] = (
        Column("Job", lambda c: c.job.name, 26),
        Column("Owner", lambda c: report.owner(c.job), 20),
        Column("Cost center", lambda c: c.job.tag("cost-center"), 12),
        Column("Environment tag", lambda c: c.job.tag("environment"), 12),
        Column("Subscription", lambda c: c.job.subscription_id, 38),
        Column("Resource group", lambda c: c.job.resource_group, 22),
        Column("Location", lambda c: c.job.location, 14),
        Column("Executions", lambda c: len(c.executions), 10),
        Column("vCPU-seconds", lambda c: round(sum(e.vcpu_seconds for e in c.executions)), 12),
        Column("GiB-seconds", lambda c: round(sum(e.gib_seconds for e in c.executions)), 12),
        Column(f"Estimated cost ({currency})", lambda c: round(c.total, 4), 16),
        Column(f"Actual cost ({actual_currency})", lambda c: _actual(report, c), 16),
        Column("Method", lambda c: "allocation (dedicated profile)" if c.method == ALLOCATION
               else "consumption meter", 18),
        Column("Rates", lambda c: sources.get(c.job.id.lower()), 30, "wrap"),
        Column("Resource id", lambda c: c.job.id, 60),
    )
    return _table("Cost by job", columns, job_cost_rows(report))


def _actual(report: ScanReport, cost: JobCost) -> float | None:
    """The job's billed cost from the export, when one was given (0 when it has no rows)."""
    actual = report.cost.actual if report.cost else None
    if actual is None:
        return None
    return float(actual.by_job.get(cost.job.id.lower(), 0))


@dataclass(frozen=True, slots=True)
class JobAnomaly:
    job: Job
    anomaly: Anomaly


def anomalies(report: ScanReport) -> list[JobAnomaly]:
    if report.cost is None:
        return []
    found: Iterator[JobAnomaly] = (
        JobAnomaly(cost.job, a) for cost in job_cost_rows(report)
        for a in (report.cost.anomalies(cost.job) or []))
    return sorted(found, key=lambda j: (-j.anomaly.delta, j.job.name))


def cost_anomalies(report: ScanReport) -> Table:
    currency = report.settings.cost.currency
    columns: tuple[Column[JobAnomaly], ...] = (
        Column("Job", lambda j: j.job.name, 26),
        Column("Owner", lambda j: report.owner(j.job), 20),
        Column("Day", lambda j: j.anomaly.day, 12),
        Column(f"Expected ({currency})", lambda j: round(j.anomaly.expected, 4), 12),
        Column(f"Actual ({currency})", lambda j: round(j.anomaly.actual, 4), 12),
        Column(f"Delta ({currency})", lambda j: round(j.anomaly.delta, 4), 12),
        Column("Likely driver", lambda j: j.anomaly.driver, 40, "wrap"),
        Column("Resource id", lambda j: j.job.id, 60),
    )
    return _table("Cost anomalies", columns, anomalies(report))


def dedicated_profiles(report: ScanReport) -> Table:
    """Each dedicated workload profile: its instance cost, what its jobs account for, and the
    idle capacity nobody's job used (shown, never spread silently)."""
    currency = report.settings.cost.currency
    names = {e.id.lower(): e.name for e in report.estate.environments.values()}
    columns: tuple[Column[ProfileCost], ...] = (
        Column("Environment", lambda p: names.get(p.environment_id.lower(), p.environment_id),
               24),
        Column("Profile", lambda p: p.profile, 16),
        Column("Instance-hours", lambda p: round(p.instance_hours, 1), 12),
        Column(f"Profile cost ({currency})", lambda p: round(p.cost, 4), 14),
        Column(f"Allocated to jobs ({currency})", lambda p: round(p.allocated, 4), 14),
        Column(f"Idle capacity ({currency})", lambda p: round(p.idle, 4), 14),
    )
    return _table("Dedicated profiles", columns, report.cost.profiles if report.cost else ())


@dataclass(frozen=True, slots=True)
class Allocation:
    dimension: str
    value: str
    cost: float
    share: float | None


# Dimensions of the allocation: the owner tag from settings, then these.
DIMENSIONS = (("cost-center", "cost center tag"), ("environment", "environment tag"),
              ("subscription", "subscription"), ("resource_group", "resource group"))


def allocation(report: ScanReport) -> Table:
    """Estimated cost by owner, cost center, environment tag, subscription and resource group;
    jobs without a value are the unallocated bucket of each dimension, never dropped."""
    costs = job_cost_rows(report)
    grand = sum(c.total for c in costs)
    rows = [Allocation(label, value, cost, cost / grand if grand else None)
            for key, label in ((report.settings.scan.owner_tag, "owner tag"), *DIMENSIONS)
            for value, cost in allocate(costs, key).items()]
    currency = report.settings.cost.currency
    columns: tuple[Column[Allocation], ...] = (
        Column("Dimension", lambda a: a.dimension, 18),
        Column("Value", lambda a: a.value, 40),
        Column(f"Estimated cost ({currency})", lambda a: round(a.cost, 4), 16),
        Column("Share", lambda a: a.share, 10, "percent"),
    )
    return _table("Cost allocation", columns, rows)
