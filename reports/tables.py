"""What the reports say, decided once: result records, key figures and the tables of the workbook.

JSON, Markdown, the workbook, CSV and SARIF take fields, wording and order from
here, so two reports of one scan cannot disagree about a finding. Writers only format.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from operator import itemgetter
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from auditor.check import Check, Status
from auditor.controls import ControlRow, control_rows, frameworks
from auditor.fingerprint import of_result
from auditor.model import Job
from auditor.results import Result, ScanReport
from auditor.settings import Severity
from auditor.waivers import Waiver, WaiverReview
from reports import config_changes
from reports.config_changes import ChangeLine

CellValue = str | int | float | date | datetime | None
# How a column is shown: "wrap" for long text, "severity" coloured by value, "url" a hyperlink.
Kind = Literal["text", "wrap", "severity", "url", "percent"]

T = TypeVar("T")

PORTAL_HOSTS = {
    "AzureCloud": "portal.azure.com",
    "AzureUSGovernment": "portal.azure.us",
    "AzureChinaCloud": "portal.azure.cn",
}


# --- values ------------------------------------------------------------------------------------

def utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive time is taken to be UTC already (as the scan records them)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the second: how every report writes a time."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def jsonable(value: Any) -> Any:
    """`value` with every datetime as ISO 8601 UTC, for scope and coverage details."""
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def scope_text(scope: Mapping[str, Any]) -> str:
    """The scan scope on one line, e.g. "subscriptions: a, b; cloud: AzureCloud"."""
    parts = []
    for key, value in scope.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        parts.append(f"{key.replace('_', ' ')}: {shown or '(not limited)'}")
    return "; ".join(parts) or "(not recorded)"


def portal_url(resource_id: str, cloud: str) -> str | None:
    """The resource's page in the Azure portal; None when the id is not an ARM path."""
    if not resource_id.startswith("/"):
        return None
    host = PORTAL_HOSTS.get(cloud, PORTAL_HOSTS["AzureCloud"])
    return f"https://{host}/#@/resource{quote(resource_id, safe='/')}"


# --- records -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Record:
    """One result as every report states it; the field order is the findings.json object."""

    check_id: str
    title: str
    status: str
    severity: str
    resource_id: str
    resource_name: str
    subscription_id: str | None
    resource_group: str | None
    owner: str | None
    subject: str
    message: str
    evidence: tuple[str, ...]
    remediation: str
    waiver: Waiver | None  # a live waiver accepted the finding; its status is unchanged
    expired_waiver: Waiver | None  # a waiver matched but has expired
    fingerprint: str  # the same in every scan that finds it (auditor.fingerprint)


def record(report: ScanReport, result: Result) -> Record:
    check, job, outcome = result.check, result.job, result.outcome
    return Record(
        check_id=check.id, title=check.title, status=outcome.status.value,
        severity=check.severity.value, resource_id=job.id, resource_name=job.name,
        subscription_id=job.subscription_id, resource_group=job.resource_group,
        owner=report.owner(job), subject=outcome.subject, message=outcome.message,
        evidence=outcome.evidence, remediation=check.remediation,
        waiver=result.waiver, expired_waiver=result.expired_waiver,
        fingerprint=of_result(result),
    )


def since_last_scan(report: ScanReport, item: Record) -> str:
    """A finding's history in a few words: "new", "persisting since … (N days)", "not tracked"."""
    state = report.history.of(item.fingerprint) if report.history is not None else None
    return state.describe() if state is not None else "not tracked"


def waiver_note(item: Record | Result) -> str | None:
    """The waiver on a result, in one sentence; None when no waiver matched."""
    if item.waiver is not None:
        w = item.waiver
        return (f"Waived until {w.expires.isoformat()} ({w.ticket}, approved by {w.approver}): "
                f"{w.justification}")
    if item.expired_waiver is not None:
        w = item.expired_waiver
        return f"Waiver {w.ticket} expired on {w.expires.isoformat()}; it no longer applies."
    return None


def finding_records(report: ScanReport) -> Iterator[Record]:
    """The findings (non-passing results), in `report.findings` order; made once per report,
    as every writer reads them."""
    records: list[Record] | None = report.memo.get("finding_records")
    if records is None:
        records = report.memo["finding_records"] = [record(report, r) for r in report.findings]
    return iter(records)


# --- key figures -------------------------------------------------------------------------------

def counts(report: ScanReport) -> dict[str, int]:
    """How much the scan read and produced: findings.json and the manifest both state these."""
    estate = report.estate
    return {
        "jobs": len(estate.jobs),
        "environments": len(estate.environments),
        "executions": len(estate.executions),
        "role_assignments": len(estate.role_assignments),
        "results": len(report.results),
        "findings": len(report.findings),
        "waived": sum(1 for r in report.findings if r.waived),
    }


@dataclass(frozen=True, slots=True)
class SeverityCount:
    severity: Severity
    failed: int
    unknown: int
    error: int

    @property
    def total(self) -> int:
        return self.failed + self.unknown + self.error


def severity_counts(report: ScanReport) -> list[SeverityCount]:
    """Findings per severity and status, most severe first; every severity is listed."""
    found = Counter((r.check.severity, r.status) for r in report.findings)
    return [
        SeverityCount(severity, *(
            found[severity, status] for status in (Status.FAIL, Status.UNKNOWN, Status.ERROR)))
        for severity in sorted(Severity, key=lambda s: -s.rank)
    ]


def pass_rate(report: ScanReport) -> float | None:
    """passed / (passed + failed); None when no check could pass or fail. From the check counts,
    which every report reads anyway, rather than another pass over every result."""
    tallies = report.check_counts().values()
    passed = sum(t["passed"] for t in tallies)
    failed = sum(t["failed"] for t in tallies)
    return passed / (passed + failed) if passed + failed else None


def check_counts(report: ScanReport) -> list[tuple[Check, dict[str, int]]]:
    """Each check of the catalogue with its result counts, in catalogue order."""
    tally = report.check_counts()
    return [(c, tally[c.id]) for c in report.checks]


# --- tables ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Column(Generic[T]):
    header: str
    value: Callable[[T], CellValue]
    width: int = 14
    kind: Kind = "text"


@dataclass(frozen=True, slots=True)
class Table:
    """A titled table; `rows` is lazy, so a large estate streams through the writers."""

    title: str
    columns: tuple[Column[Any], ...]
    rows: Iterable[tuple[CellValue, ...]]


def _table(title: str, columns: tuple[Column[T], ...], items: Iterable[T]) -> Table:
    values = [c.value for c in columns]
    return Table(title, columns, (tuple([value(item) for value in values]) for item in items))


def _lines(values: Iterable[str]) -> str:
    return "\n".join(values)


# Columns shared by the Findings and Results sheets.
_SEVERITY: Column[Record] = Column("Severity", lambda r: r.severity, 10, "severity")
_CHECK: Column[Record] = Column("Check", lambda r: r.check_id, 9)
_TITLE: Column[Record] = Column("Title", lambda r: r.title, 36, "wrap")
_STATUS: Column[Record] = Column("Status", lambda r: r.status, 10)
_NAME: Column[Record] = Column("Resource name", lambda r: r.resource_name, 26)
_GROUP: Column[Record] = Column("Resource group", lambda r: r.resource_group, 22)
_SUBSCRIPTION: Column[Record] = Column("Subscription", lambda r: r.subscription_id, 38)
_OWNER: Column[Record] = Column("Owner", lambda r: r.owner, 18)
_SUBJECT: Column[Record] = Column("Subject", lambda r: r.subject, 18, "wrap")
_MESSAGE: Column[Record] = Column("Message", lambda r: r.message, 48, "wrap")
_EVIDENCE: Column[Record] = Column("Evidence", lambda r: _lines(r.evidence), 56, "wrap")
_WAIVER: Column[Record] = Column("Waiver", waiver_note, 40, "wrap")
_RESOURCE_ID: Column[Record] = Column("Resource id", lambda r: r.resource_id, 60)


def findings(report: ScanReport) -> Table:
    """One row per finding, with what to do and a link to the resource."""
    cloud = report.settings.azure.cloud

    @cache  # a job has several findings, and the link is the slowest cell to make
    def link(resource_id: str) -> str | None:
        return portal_url(resource_id, cloud)

    columns: tuple[Column[Record], ...] = (
        _SEVERITY, _CHECK, _TITLE, _STATUS, _NAME, _GROUP, _SUBSCRIPTION, _OWNER, _SUBJECT,
        _MESSAGE, _EVIDENCE,
        Column("Remediation", lambda r: r.remediation, 56, "wrap"),
        _WAIVER, _RESOURCE_ID,
        Column("Portal link", lambda r: link(r.resource_id), 40, "url"),
        Column("Since last scan", lambda r: since_last_scan(report, r), 26, "wrap"),
        Column("Fingerprint", lambda r: r.fingerprint, 34),
    )
    return _table("Findings", columns, finding_records(report))


def results(report: ScanReport) -> Table:
    """Every job and check with its status: the tested population behind the findings."""
    columns = (_NAME, _GROUP, _SUBSCRIPTION, _OWNER, _CHECK, _TITLE, _SEVERITY, _STATUS,
               _SUBJECT, _MESSAGE, _EVIDENCE, _WAIVER, _RESOURCE_ID)
    return Table("Results", columns, _result_rows(report))


def _result_rows(report: ScanReport) -> Iterator[tuple[CellValue, ...]]:
    """The `results` columns of each result's `record`, made without the record: a large estate
    has hundreds of thousands of results, and a job's and a check's cells repeat on every row
    of that job or check (results come job by job), so they are made once."""
    checks: dict[str, tuple[str, str, str]] = {}
    job: Job | None = None
    head: tuple[CellValue, ...] = ()
    for result in report.results:
        if result.job is not job:
            job = result.job
            head = (job.name, job.resource_group, job.subscription_id, report.owner(job))
        check = checks.get(result.check.id)
        if check is None:
            check = checks[result.check.id] = (
                result.check.id, result.check.title, result.check.severity.value)
        outcome = result.outcome
        yield (*head, *check, outcome.status.value, outcome.subject, outcome.message,
               _lines(outcome.evidence), waiver_note(result), job.id)


def _count(name: str, header: str) -> Column[tuple[Check, dict[str, int]]]:
    return Column(header, lambda item: item[1][name], 10)


def _controls(check: Check) -> str:
    return _lines(f"{framework}: {', '.join(ids)}" for framework, ids in check.controls.items())


def checks(report: ScanReport) -> Table:
    """The check catalogue with each check's counts."""
    columns: tuple[Column[tuple[Check, dict[str, int]]], ...] = (
        Column("Check", lambda item: item[0].id, 9),
        Column("Title", lambda item: item[0].title, 36, "wrap"),
        Column("Severity", lambda item: item[0].severity.value, 10, "severity"),
        Column("Category", lambda item: item[0].category, 20),
        _count("evaluated", "Evaluated"), _count("passed", "Passed"),
        _count("failed", "Failed"), _count("waived", "Waived"),
        _count("not_applicable", "N/A"), _count("unknown", "Unknown"),
        _count("error", "Error"),
        Column("Rationale", lambda item: item[0].rationale, 56, "wrap"),
        Column("Remediation", lambda item: item[0].remediation, 56, "wrap"),
        Column("Controls", lambda item: _controls(item[0]), 28, "wrap"),
        Column("References", lambda item: _lines(item[0].references), 48, "wrap"),
    )
    return _table("Checks", columns, check_counts(report))


def controls(report: ScanReport) -> Table:
    """Per framework control: the checks behind it and the jobs that passed or failed it."""
    names = {key: f.name for key, f in frameworks().items()}
    columns: tuple[Column[ControlRow], ...] = (
        Column("Framework", lambda c: names.get(c.framework, c.framework), 28, "wrap"),
        Column("Control", lambda c: c.control_id, 10),
        Column("Control title", lambda c: c.title, 44, "wrap"),
        Column("Checks", lambda c: ", ".join(c.check_ids), 22, "wrap"),
        Column("Jobs tested", lambda c: c.tested, 10),
        Column("Passed", lambda c: c.passed, 10),
        Column("Failed", lambda c: c.failed, 10),
        Column("Failed, waived", lambda c: c.waived, 10),
        Column("Pass rate", lambda c: c.pass_rate, 10, "percent"),
    )
    return _table("Controls", columns, control_rows(report.checks, report.results))


def waivers(report: ScanReport) -> Table:
    """Every waiver with what this scan made of it: applied, expired or stale."""
    columns: tuple[Column[WaiverReview], ...] = (
        Column("State", lambda r: r.state.value, 10),
        Column("Check", lambda r: r.waiver.check_id, 9),
        Column("Resource", lambda r: r.waiver.resource, 60, "wrap"),
        Column("Findings matched", lambda r: r.matched, 10),
        Column("Expires", lambda r: r.waiver.expires, 12),
        Column("Ticket", lambda r: r.waiver.ticket, 14),
        Column("Approver", lambda r: r.waiver.approver, 24),
        Column("Justification", lambda r: r.waiver.justification, 56, "wrap"),
        Column("Source", lambda r: r.waiver.source, 30),
    )
    return _table("Waivers", columns, report.waivers)


def environment_name(report: ScanReport, job: Job) -> str | None:
    """The job's environment by name; from its id when the environment was not read."""
    environment = report.estate.environment_of(job)
    if environment is not None:
        return environment.name
    return job.environment_id.rstrip("/").rsplit("/", 1)[-1] if job.environment_id else None


def _images(job: Job) -> str:
    return _lines(f"{c.image} (init)" if c.is_init else c.image
                  for c in job.containers or () if c.image)


def _tags(job: Job) -> str:
    return _lines(f"{k} = {v}" for k, v in sorted(job.tags.items(), key=lambda kv: kv[0].lower()))


def _trigger(job: Job) -> str | None:
    return job.trigger_type.value if job.trigger_type else job.trigger_type_raw


def inventory(report: ScanReport) -> Table:
    """Every job read, with the settings an auditor asks about."""
    columns: tuple[Column[Job], ...] = (
        Column("Name", lambda j: j.name, 26),
        Column("Resource group", lambda j: j.resource_group, 22),
        Column("Subscription", lambda j: j.subscription_id, 38),
        Column("Location", lambda j: j.location, 14),
        Column("Trigger type", _trigger, 12),
        Column("Cron", lambda j: j.cron_expression, 14),
        Column("Replica timeout (s)", lambda j: j.replica_timeout, 12),
        Column("Retry limit", lambda j: j.replica_retry_limit, 10),
        Column("Parallelism", lambda j: j.parallelism, 11),
        Column("Identity type", lambda j: j.identity.type if j.identity else None, 26),
        Column("Images", _images, 48, "wrap"),
        Column("Environment", lambda j: environment_name(report, j), 24),
        Column("Owner", report.owner, 18),
        Column("Tags", _tags, 40, "wrap"),
        Column("Resource id", lambda j: j.id, 60),
    )
    return _table("Inventory", columns, report.estate.jobs)


def changes(report: ScanReport) -> Table:
    """Who changed which job, how, from what to what: Resource Graph's last 14 days, newest
    first, one row per changed property (values masked where they could hold a secret)."""
    known = config_changes.job_ids(report)
    columns: tuple[Column[ChangeLine], ...] = (
        Column("Time (UTC)", lambda c: c.change.timestamp, 20),
        Column("Job", lambda c: c.change.resource_name, 26),
        Column("Resource group", lambda c: c.change.resource_group, 22),
        Column("Change", lambda c: c.change.change_type, 10),
        Column("Changed by", lambda c: c.change.changed_by, 30),
        Column("Changed by type", lambda c: c.change.changed_by_type, 14),
        Column("Client", lambda c: c.change.client_type, 16),
        Column("Property", lambda c: c.property.path if c.property else None, 44, "wrap"),
        Column("Before", lambda c: c.property.before if c.property else None, 40, "wrap"),
        Column("After", lambda c: c.property.after if c.property else None, 40, "wrap"),
        Column("Operation", lambda c: c.change.operation, 28),
        Column("Job in this scan", lambda c: config_changes.in_scan_text(known, c.change), 16,
               "wrap"),
        Column("Subscription", lambda c: c.change.subscription_id, 38),
        Column("Resource id", lambda c: c.change.resource_id, 60),
        Column("Change id", lambda c: c.change.id, 60),
    )
    return _table("Changes", columns, config_changes.lines(report))


def coverage(report: ScanReport) -> Table:
    """What was read, what could not be, and item types no check evaluates."""
    lines: list[tuple[CellValue, ...]] = [
        *(("read", r.scope, r.source, r.rows, "") for r in report.coverage.reads),
        *(("gap", g.scope, g.source, None, g.reason) for g in report.coverage.gaps),
        *(("unrecognised type", kind, "input", count, "not evaluated by any check")
          for kind, count in report.info.other_types.items()),
    ]
    columns: tuple[Column[tuple[CellValue, ...]], ...] = (
        Column("Kind", itemgetter(0), 18),
        Column("Scope", itemgetter(1), 48, "wrap"),
        Column("Source", itemgetter(2), 12),
        Column("Rows", itemgetter(3), 10),
        Column("Detail", itemgetter(4), 72, "wrap"),
    )
    return _table("Coverage", columns, lines)
