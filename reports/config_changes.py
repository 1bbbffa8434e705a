"""Configuration changes of jobs (Resource Graph `resourcechanges`), decided once for every report.

The workbook's Changes sheet, the Markdown section and `changes` in findings.json take their rows,
order and wording from here. Values arrive masked from `auditor.changes`; each writer still
neutralises the text as it does for any value from Azure (formulas, Markdown, HTML).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from auditor.model import Change, PropertyChange
from auditor.results import ScanReport

# Resource Graph keeps this many days of changes; the live scan asks for all of them.
WINDOW_DAYS = 14
NOT_IN_SCAN = "no: not among the jobs read (deleted, or outside the scope)"
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ChangeLine:
    """One row of the Changes sheet: a changed property, or a change without any (a Create or a
    Delete, which Azure records with no property changes)."""

    change: Change
    property: PropertyChange | None


def newest_first(report: ScanReport) -> list[Change]:
    return sorted(report.estate.changes, reverse=True,
                  key=lambda c: (c.timestamp or _EARLIEST, (c.id or "").lower()))


def lines(report: ScanReport) -> list[ChangeLine]:
    """Every change, newest first, one line per changed property."""
    return [ChangeLine(change, prop) for change in newest_first(report)
            for prop in (change.property_changes or (None,))]


def job_ids(report: ScanReport) -> frozenset[str]:
    """The lower-cased ids of the jobs this scan read."""
    return frozenset(job.id.lower() for job in report.estate.jobs)


def in_scan(report: ScanReport, change: Change, known: frozenset[str] | None = None) -> bool:
    """Whether the changed job is among the jobs this scan read (a deleted job is not)."""
    return change.resource_id.lower() in (known if known is not None else job_ids(report))


def in_scan_text(known: frozenset[str], change: Change) -> str:
    return "yes" if change.resource_id.lower() in known else NOT_IN_SCAN


def actor(change: Change) -> str:
    """Who and how, in a few words: "j.doe@contoso.com (User, Azure Portal)"."""
    how = ", ".join(v for v in (change.changed_by_type, change.client_type) if v)
    who = change.changed_by or "(not recorded)"
    return f"{who} ({how})" if how else who


def period(report: ScanReport) -> tuple[datetime, datetime] | None:
    """The first and last change time in the data; None without any dated change."""
    times = [c.timestamp for c in report.estate.changes if c.timestamp is not None]
    return (min(times), max(times)) if times else None


@dataclass(frozen=True, slots=True)
class JobChanges:
    """What happened to one job in the period."""

    resource_id: str
    name: str
    resource_group: str | None
    kinds: Counter[str]  # change type -> records
    properties: int  # property changes over all its records
    last: datetime | None
    actors: tuple[str, ...]  # who changed it, most active first
    in_scan: bool

    @property
    def records(self) -> int:
        return sum(self.kinds.values())


def per_job(report: ScanReport) -> list[JobChanges]:
    """One entry per changed job, most recently changed first."""
    groups: dict[str, list[Change]] = {}
    for change in report.estate.changes:
        groups.setdefault(change.resource_id.lower(), []).append(change)
    known = job_ids(report)
    found = []
    for of_job in groups.values():
        latest = of_job[-1]
        who = Counter(c.changed_by or "(not recorded)" for c in of_job)
        times = [c.timestamp for c in of_job if c.timestamp is not None]
        found.append(JobChanges(
            resource_id=latest.resource_id, name=latest.resource_name,
            resource_group=latest.resource_group,
            kinds=Counter(c.change_type or "(unknown)" for c in of_job),
            properties=sum(len(c.property_changes) for c in of_job),
            last=max(times) if times else None,
            actors=tuple(name for name, _ in sorted(who.items(), key=lambda kv: (-kv[1], kv[0]))),
            in_scan=in_scan(report, latest, known)))
    return sorted(found, key=lambda j: (j.last or _EARLIEST, j.resource_id.lower()),
                  reverse=True)


def to_dict(change: Change, known: frozenset[str]) -> dict[str, Any]:
    """One change as findings.json states it (see reports.json_report); `known` is `job_ids`."""
    return {
        "id": change.id,
        "resource_id": change.resource_id,
        "resource_name": change.resource_name,
        "subscription_id": change.subscription_id,
        "resource_group": change.resource_group,
        "job_in_scan": change.resource_id.lower() in known,
        "change_type": change.change_type,
        "timestamp": _iso(change.timestamp),
        "changed_by": change.changed_by,
        "changed_by_type": change.changed_by_type,
        "client_type": change.client_type,
        "operation": change.operation,
        "correlation_id": change.correlation_id,
        "changes_count": change.changes_count,
        "properties": [
            {"path": p.path, "before": p.before, "after": p.after,
             "property_change_type": p.property_change_type,
             "change_category": p.change_category, "masked": p.masked}
            for p in change.property_changes],
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None
