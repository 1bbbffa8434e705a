"""The history store: every scan's findings in one SQLite file, so a report can say what changed.

Where: `--history FILE`, else `[store] path`, else `$XDG_DATA_HOME/auditor/history.sqlite`
(`~/.local/share/auditor/history.sqlite` when XDG_DATA_HOME is unset); `--no-history` turns it
off. A library call to `run_scan` keeps history only when `ScanRequest.history` names a file.

Scope: scans are compared with earlier scans of the same *scope key* (`scope_key`): the scope
the scan was asked for (`--subscription`, `--management-group`), else the subscriptions its
jobs belong to, else its source; `[store] scope_name` names the scope explicitly instead (for
exports whose subscriptions come and go).

Per finding (by `auditor.fingerprint`), against the last *complete* scan of the scope:
- `new`: not a finding there;
- `persisting`: a finding there too; `first_seen` is the as-of time of the first scan of the
  unbroken run that found it, `age_days` the whole days from then to this scan's as-of time;
- `resolved` (listed apart): a finding there, not in this scan; `now` says what this scan found
  for that check and resource (`pass`, `not_applicable`, `fail` on another subject...) or
  `not evaluated` (the job is gone or the check is off).
An incomplete scan is recorded (it is part of the chain) but never used as a baseline: what it
could not read would look resolved.

Evidence chain: each scan row keeps the SHA-256 of its manifest.json, and each manifest names
the manifest of the scan recorded just before it for the same scope (`previous_manifest_sha256`),
so `auditor verify --history` can tell an edited or removed period.

Writing: the scan compares before its reports are written and records after they are published,
in ONE transaction (`BEGIN IMMEDIATE`). SQLite's lock makes a second writer wait up to
`BUSY_TIMEOUT_SECONDS`, then fail with a one-line error; if another scan of the same scope was
recorded in between (so this scan's comparison is stale), recording fails rather than forking
the chain. Either way the store is never left half-written.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.request import pathname2url

from auditor.errors import InputError
from auditor.fingerprint import of_result

if TYPE_CHECKING:
    from auditor.results import ScanReport

SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 30.0
DEFAULT_FILE = Path("auditor") / "history.sqlite"

NEW, PERSISTING = "new", "persisting"
NOT_EVALUATED = "not evaluated"

_SCHEMA = """
CREATE TABLE scans (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,      -- order of recording: the chain's order
    id TEXT NOT NULL UNIQUE,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    as_of TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    source TEXT NOT NULL,
    source_detail TEXT NOT NULL,
    complete INTEGER NOT NULL,
    tool_version TEXT NOT NULL,
    settings_digest TEXT NOT NULL,
    findings INTEGER NOT NULL,
    new INTEGER,                                -- NULL: nothing to compare with
    resolved INTEGER,
    baseline_scan_id TEXT,
    previous_scan_id TEXT,
    previous_manifest_sha256 TEXT,
    manifest_sha256 TEXT NOT NULL,
    report_folder TEXT NOT NULL,
    recorded TEXT NOT NULL
);
CREATE INDEX scans_by_scope ON scans (scope_key, seq);
CREATE TABLE findings (
    scan_id TEXT NOT NULL REFERENCES scans (id),
    fingerprint TEXT NOT NULL,
    check_id TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    waived INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (scan_id, fingerprint)
);
CREATE INDEX findings_by_fingerprint ON findings (fingerprint);
"""

_SCAN_COLUMNS = ("seq, id, started, finished, as_of, scope_key, source, source_detail, complete, "
                 "tool_version, settings_digest, findings, new, resolved, baseline_scan_id, "
                 "previous_scan_id, previous_manifest_sha256, manifest_sha256, report_folder")
_FINDING_COLUMNS = ("fingerprint, check_id, resource_id, subject, status, severity, waived, "
                    "first_seen")
_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


class HistoryError(InputError):
    """The history store cannot be used: exit 2 with one line naming the file and the fix."""


# --- values ------------------------------------------------------------------------------------

def default_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_DATA_HOME/auditor/history.sqlite`, else `~/.local/share/auditor/history.sqlite`."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / DEFAULT_FILE


def iso(moment: datetime) -> str:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def scope_key(report: ScanReport) -> str:
    """Which earlier scans this one is compared with (see the module docstring)."""
    name = report.settings.store.scope_name.strip()
    if name:
        return f"name={name}"
    scope = report.info.scope
    parts = [f"{key}={','.join(sorted({str(v).lower() for v in scope.get(key) or ()}))}"
             for key in ("management_groups", "subscriptions") if scope.get(key)]
    if parts:
        return ";".join(parts)
    found = sorted({j.subscription_id.lower() for j in report.estate.jobs if j.subscription_id})
    return f"subscriptions={','.join(found)}" if found else f"source={report.info.source}"


@dataclass(frozen=True, slots=True)
class FindingHistory:
    state: str  # "new" or "persisting"
    first_seen: datetime
    age_days: int

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "first_seen": iso(self.first_seen),
                "age_days": self.age_days}

    def describe(self) -> str:
        if self.state == NEW:
            return "new"
        days = "day" if self.age_days == 1 else "days"
        return f"persisting since {self.first_seen.date().isoformat()} ({self.age_days} {days})"


@dataclass(frozen=True, slots=True)
class FindingRow:
    """One finding as the store keeps it."""

    fingerprint: str
    check_id: str
    resource_id: str
    subject: str
    status: str
    severity: str
    waived: bool
    first_seen: datetime

    def sort_key(self) -> tuple[int, str, str, str]:
        return (_SEVERITY_ORDER.get(self.severity, 9), self.check_id, self.resource_id.lower(),
                self.subject)


@dataclass(frozen=True, slots=True)
class ResolvedFinding:
    """A finding of the baseline scan that this scan no longer has."""

    finding: FindingRow
    last_seen: datetime  # the baseline's as-of time
    now: str  # what this scan found for the check and resource

    def to_dict(self) -> dict[str, Any]:
        f = self.finding
        return {"fingerprint": f.fingerprint, "check_id": f.check_id,
                "resource_id": f.resource_id, "subject": f.subject, "severity": f.severity,
                "last_status": f.status, "waived": f.waived, "first_seen": iso(f.first_seen),
                "last_seen": iso(self.last_seen), "now": self.now}


@dataclass(frozen=True, slots=True)
class ScanRow:
    """One recorded scan."""

    seq: int
    id: str
    started: datetime
    finished: datetime
    as_of: datetime
    scope_key: str
    source: str
    source_detail: str
    complete: bool
    tool_version: str
    settings_digest: str
    findings: int
    new: int | None
    resolved: int | None
    baseline_scan_id: str | None
    previous_scan_id: str | None
    previous_manifest_sha256: str | None
    manifest_sha256: str
    report_folder: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "started": iso(self.started), "finished": iso(self.finished),
                "as_of": iso(self.as_of), "scope_key": self.scope_key, "source": self.source,
                "source_detail": self.source_detail, "complete": self.complete,
                "tool_version": self.tool_version, "settings_digest": self.settings_digest,
                "findings": self.findings, "new": self.new, "resolved": self.resolved,
                "baseline_scan_id": self.baseline_scan_id,
                "previous_scan_id": self.previous_scan_id,
                "previous_manifest_sha256": self.previous_manifest_sha256,
                "manifest_sha256": self.manifest_sha256, "report_folder": self.report_folder}


@dataclass(frozen=True, slots=True)
class History:
    """What the store says about one scan before it is recorded; the reports show it."""

    store: str
    scope_key: str
    baseline: ScanRow | None  # the last complete scan of the scope: what "new" is relative to
    previous: ScanRow | None  # the last recorded scan of the scope: the evidence chain's link
    findings: Mapping[str, FindingHistory] = field(default_factory=lambda: MappingProxyType({}))
    resolved: tuple[ResolvedFinding, ...] = ()

    @property
    def previous_manifest_sha256(self) -> str | None:
        return self.previous.manifest_sha256 if self.previous else None

    def of(self, fingerprint: str) -> FindingHistory | None:
        return self.findings.get(fingerprint)

    @property
    def new(self) -> int:
        return sum(1 for h in self.findings.values() if h.state == NEW)

    @property
    def persisting(self) -> int:
        return sum(1 for h in self.findings.values() if h.state == PERSISTING)


@dataclass(frozen=True, slots=True)
class Diff:
    first: ScanRow
    second: ScanRow
    new: tuple[FindingRow, ...]
    resolved: tuple[FindingRow, ...]
    persisting: tuple[FindingRow, ...]  # as the second scan found them


# --- the store ---------------------------------------------------------------------------------

class HistoryStore:
    """One open SQLite connection to the store; use as a context manager."""

    def __init__(self, path: Path, *, create: bool = True, timeout: float | None = None) -> None:
        self.path = path
        self._read_only = not create
        timeout = BUSY_TIMEOUT_SECONDS if timeout is None else timeout
        if not create and not path.is_file():
            raise HistoryError(str(path), "no history store here",
                               "pass the --history FILE that scans recorded into")
        try:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
                target, uri = str(path), False
            else:
                target, uri = f"file:{pathname2url(str(path.resolve()))}?mode=ro", True
            self._db = sqlite3.connect(target, timeout=timeout, isolation_level=None, uri=uri)
        except (OSError, sqlite3.Error) as e:
            raise HistoryError(str(path), f"cannot open the history store ({e})",
                               "pass a writable --history FILE, or --no-history") from e
        try:
            self._db.execute("PRAGMA foreign_keys = ON")
            self._prepare(create)
        except BaseException:
            self._db.close()
            raise

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise HistoryError(str(self.path), f"the history store is busy ({doing})",
                                   "another scan is writing it; rerun when it has finished"
                                   ) from e
            raise HistoryError(str(self.path), f"cannot {doing} ({e})",
                               "pass another --history FILE, or --no-history") from e
        except sqlite3.DatabaseError as e:
            raise HistoryError(str(self.path), f"not a usable history store ({e})",
                               "pass another --history FILE, or --no-history") from e

    def _prepare(self, create: bool) -> None:
        with self._errors("read the history store"):
            if self._check_version():
                return
            self._db.execute("BEGIN IMMEDIATE")  # two first scans: one creates, one waits
            try:
                if not self._check_version():  # still empty now that this connection writes
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _check_version(self) -> bool:
        """True for a store of this version; False for an empty file; else a HistoryError."""
        # One statement, one snapshot: read separately, a store created by another scan between
        # the two reads would look like a foreign SQLite file.
        version, tables = self._db.execute(
            "SELECT (SELECT user_version FROM pragma_user_version), "
            "(SELECT count(*) FROM sqlite_master)").fetchone()
        if version == SCHEMA_VERSION:
            return True
        if version > SCHEMA_VERSION:
            raise HistoryError(str(self.path),
                               f"written by a newer auditor (store version {version})",
                               "upgrade auditor, or pass another --history FILE")
        if tables:
            raise HistoryError(str(self.path), "this SQLite file is not an auditor history store",
                               "pass another --history FILE")
        if self._read_only:
            raise HistoryError(str(self.path), "the history store is empty",
                               "run a scan with --history FILE first")
        return False

    # --- reading -------------------------------------------------------------------------------

    def scans(self) -> list[ScanRow]:
        with self._errors("read the history store"):
            rows = self._db.execute(f"SELECT {_SCAN_COLUMNS} FROM scans ORDER BY seq").fetchall()
        return [_scan_row(r) for r in rows]

    def scan(self, scan_id: str) -> ScanRow | None:
        with self._errors("read the history store"):
            row = self._db.execute(f"SELECT {_SCAN_COLUMNS} FROM scans WHERE id = ?",
                                   (scan_id,)).fetchone()
        return _scan_row(row) if row else None

    def find(self, prefix: str) -> ScanRow:
        """The scan whose id is `prefix` or starts with it (as git takes commit prefixes)."""
        exact = self.scan(prefix)
        if exact is not None:
            return exact
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._errors("read the history store"):
            rows = self._db.execute(
                f"SELECT {_SCAN_COLUMNS} FROM scans WHERE id LIKE ? ESCAPE '\\' ORDER BY seq",
                (pattern,)).fetchall()
        if len(rows) == 1 and prefix:
            return _scan_row(rows[0])
        problem = "names no recorded scan" if not rows else f"matches {len(rows)} scans"
        raise HistoryError(f"{self.path}: scan {prefix!r}", problem,
                           "see `auditor history` for the ids")

    def latest(self, key: str, *, complete_only: bool = False,
               before_seq: int | None = None) -> ScanRow | None:
        """The last scan recorded for the scope (optionally: complete, recorded before seq)."""
        sql = f"SELECT {_SCAN_COLUMNS} FROM scans WHERE scope_key = ?"
        args: list[Any] = [key]
        if complete_only:
            sql += " AND complete = 1"
        if before_seq is not None:
            sql += " AND seq < ?"
            args.append(before_seq)
        with self._errors("read the history store"):
            row = self._db.execute(sql + " ORDER BY seq DESC LIMIT 1", args).fetchone()
        return _scan_row(row) if row else None

    def following(self, scan: ScanRow) -> ScanRow | None:
        """The scan recorded next for the same scope: it should name `scan` as its previous."""
        with self._errors("read the history store"):
            row = self._db.execute(
                f"SELECT {_SCAN_COLUMNS} FROM scans WHERE scope_key = ? AND seq > ? "
                "ORDER BY seq LIMIT 1", (scan.scope_key, scan.seq)).fetchone()
        return _scan_row(row) if row else None

    def findings(self, scan_id: str) -> dict[str, FindingRow]:
        with self._errors("read the history store"):
            rows = self._db.execute(
                f"SELECT {_FINDING_COLUMNS} FROM findings WHERE scan_id = ?",
                (scan_id,)).fetchall()
        return {r[0]: FindingRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]),
                                 parse_iso(r[7])) for r in rows}

    def diff(self, first: str, second: str) -> Diff:
        a, b = self.find(first), self.find(second)
        before, after = self.findings(a.id), self.findings(b.id)
        return Diff(a, b,
                    new=_sorted(f for k, f in after.items() if k not in before),
                    resolved=_sorted(f for k, f in before.items() if k not in after),
                    persisting=_sorted(f for k, f in after.items() if k in before))

    # --- comparing and recording ---------------------------------------------------------------

    def compare(self, report: ScanReport) -> History:
        """How this scan's findings stand against the last complete scan of its scope."""
        key = scope_key(report)
        previous = self.latest(key)
        baseline = self.latest(key, complete_only=True)
        prior = self.findings(baseline.id) if baseline else {}
        as_of = parse_iso(iso(report.info.as_of))  # UTC, to the second, as the store keeps it
        states: dict[str, FindingHistory] = {}
        for result in report.findings:
            fingerprint = of_result(result)
            seen = prior.get(fingerprint)
            if seen is None:
                states[fingerprint] = FindingHistory(NEW, as_of, 0)
            else:
                age = max(0, (as_of - seen.first_seen).days)
                states[fingerprint] = FindingHistory(PERSISTING, seen.first_seen, age)
        gone = _sorted(f for k, f in prior.items() if k not in states)
        now = {(r.check.id, r.job.id.lower()): r for r in report.results} if gone else {}
        resolved = []
        for row in gone:
            current = now.get((row.check_id, row.resource_id.lower()))
            status = NOT_EVALUATED if current is None else current.status.value
            if current is not None and current.outcome.subject != row.subject and \
                    status not in ("pass", "not_applicable"):
                status = f"{status} (subject {current.outcome.subject or '(none)'})"
            resolved.append(ResolvedFinding(row, baseline.as_of if baseline else as_of, status))
        return History(str(self.path), key, baseline, previous, MappingProxyType(states),
                       tuple(resolved))

    def record(self, report: ScanReport, history: History, *, manifest_sha256: str,
               report_folder: Path, recorded: datetime) -> None:
        """Add the scan and its findings in one transaction (see the module docstring)."""
        info = report.info
        rows = []
        texts: dict[datetime, str] = {}  # a few distinct first-seen instants, many findings
        for result in report.findings:
            fingerprint = of_result(result)
            state = history.of(fingerprint)
            first_seen = state.first_seen if state else info.as_of
            if first_seen not in texts:
                texts[first_seen] = iso(first_seen)
            rows.append((info.id, fingerprint, result.check.id, result.job.id,
                         result.outcome.subject, result.status.value,
                         result.check.severity.value, int(result.waived), texts[first_seen]))
        compared = history.baseline is not None
        with self._errors("record the scan"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                latest = self.latest(history.scope_key)
                if (latest.id if latest else None) != (
                        history.previous.id if history.previous else None):
                    raise HistoryError(
                        str(self.path), f"scan {latest.id if latest else '?'} of the same scope "
                        "was recorded while this scan ran, so its comparison is out of date",
                        "rerun the scan; its reports were written but not recorded")
                if self.scan(info.id) is not None:
                    raise HistoryError(str(self.path), f"scan {info.id} is already recorded",
                                       "a scan is recorded once; rerun it for a new scan id")
                self._db.execute(
                    "INSERT INTO scans (id, started, finished, as_of, scope_key, source, "
                    "source_detail, complete, tool_version, settings_digest, findings, new, "
                    "resolved, baseline_scan_id, previous_scan_id, previous_manifest_sha256, "
                    "manifest_sha256, report_folder, recorded) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (info.id, iso(info.started), iso(info.finished), iso(info.as_of),
                     history.scope_key, info.source, info.source_detail, int(report.complete),
                     info.tool_version, report.settings.digest(), len(rows),
                     history.new if compared else None,
                     len(history.resolved) if compared else None,
                     history.baseline.id if history.baseline else None,
                     history.previous.id if history.previous else None,
                     history.previous_manifest_sha256, manifest_sha256,
                     str(report_folder.resolve()), iso(recorded)))
                # In key order: each row then lands next to the last in both indexes, instead
                # of a random page of them (tens of thousands of findings: seconds).
                self._db.executemany(
                    f"INSERT INTO findings (scan_id, {_FINDING_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", sorted(rows, key=itemgetter(1)))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise


def _sorted(rows: Iterator[FindingRow] | Sequence[FindingRow]) -> tuple[FindingRow, ...]:
    return tuple(sorted(rows, key=FindingRow.sort_key))


def _scan_row(row: Sequence[Any]) -> ScanRow:
    return ScanRow(
        seq=row[0], id=row[1], started=parse_iso(row[2]), finished=parse_iso(row[3]),
        as_of=parse_iso(row[4]), scope_key=row[5], source=row[6], source_detail=row[7],
        complete=bool(row[8]), tool_version=row[9], settings_digest=row[10], findings=row[11],
        new=row[12], resolved=row[13], baseline_scan_id=row[14], previous_scan_id=row[15],
        previous_manifest_sha256=row[16], manifest_sha256=row[17], report_folder=row[18])


# --- what `auditor history` and `auditor diff` print --------------------------------------------

def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def format_scans(rows: Sequence[ScanRow]) -> str:
    """One line per scan, oldest first; NEW and RESOLVED are "-" when there was no baseline."""
    table = [("SCAN ID", "STARTED (UTC)", "AS OF (UTC)", "SOURCE", "COMPLETE", "FINDINGS", "NEW",
              "RESOLVED", "SCOPE")]
    table += [(r.id, iso(r.started), iso(r.as_of), r.source, "yes" if r.complete else "NO",
               str(r.findings), _count(r.new), _count(r.resolved), r.scope_key) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    return "\n".join("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)),
                                row[-1]]) for row in table)


def _finding_line(state: str, row: FindingRow) -> str:
    subject = f"  [{row.subject}]" if row.subject else ""
    waived = "  (waived)" if row.waived else ""
    return (f"{state:<10}  {row.severity:<8}  {row.check_id:<8}  {row.status:<7}  "
            f"{row.resource_id}{subject}{waived}")


def format_diff(diff: Diff) -> str:
    a, b = diff.first, diff.second
    lines = [f"from {a.id}  as of {iso(a.as_of)}  scope {a.scope_key}",
             f"to   {b.id}  as of {iso(b.as_of)}  scope {b.scope_key}",
             f"{len(diff.new)} new, {len(diff.resolved)} resolved, "
             f"{len(diff.persisting)} persisting"]
    lines += [_finding_line("new", r) for r in diff.new]
    lines += [_finding_line("resolved", r) for r in diff.resolved]
    lines += [_finding_line("persisting", r) for r in diff.persisting]
    return "\n".join(lines)


def diff_document(diff: Diff) -> dict[str, Any]:
    def finding(row: FindingRow) -> dict[str, Any]:
        return {"fingerprint": row.fingerprint, "check_id": row.check_id,
                "resource_id": row.resource_id, "subject": row.subject, "status": row.status,
                "severity": row.severity, "waived": row.waived,
                "first_seen": iso(row.first_seen)}

    return {"from": diff.first.to_dict(), "to": diff.second.to_dict(),
            "new": [finding(r) for r in diff.new],
            "resolved": [finding(r) for r in diff.resolved],
            "persisting": [finding(r) for r in diff.persisting]}
