"""What a scan produced: the one object every report writer reads."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from auditor.check import Check, Outcome, Status
from auditor.cost import CostView
from auditor.coverage import Coverage
from auditor.model import Estate, Job
from auditor.settings import Settings

if TYPE_CHECKING:
    from auditor.history import History
    from auditor.waivers import Waiver, WaiverReview

# Statuses that are reported as findings: everything an auditor must look at.
FINDING_STATUSES = (Status.FAIL, Status.ERROR, Status.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Result:
    check: Check
    job: Job
    outcome: Outcome
    waiver: Waiver | None = None  # a live waiver accepted this finding
    expired_waiver: Waiver | None = None  # a waiver matched, but has expired

    @property
    def status(self) -> Status:
        return self.outcome.status

    @property
    def waived(self) -> bool:
        return self.waiver is not None


@dataclass(frozen=True, slots=True)
class ScanInfo:
    id: str
    started: datetime
    finished: datetime
    as_of: datetime
    source: str  # "live", "snapshot" or "sample"
    source_detail: str  # the snapshot folder, or the scope collected
    tool_version: str
    scope: dict[str, Any] = field(default_factory=dict)
    snapshot_files: tuple[str, ...] = ()
    # (path under snapshot/, bytes, SHA-256) of every evidence file, as the scan id used them.
    evidence_files: tuple[tuple[str, int, str], ...] = ()
    other_types: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScanReport:
    info: ScanInfo
    settings: Settings
    coverage: Coverage
    checks: tuple[Check, ...]
    estate: Estate
    results: tuple[Result, ...]
    waivers: tuple[WaiverReview, ...] = ()
    cost: CostView | None = None
    # What the history store says of this scan's findings; None when no store is kept.
    history: History | None = None
    # What is derived once and shared by every report, since a large estate has hundreds of
    # thousands of results: `findings`, `check_counts`, and what writers keep here (the finding
    # records of reports.tables). Not an init field, so `dataclasses.replace` starts afresh.
    memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def complete(self) -> bool:
        return self.coverage.complete

    @property
    def findings(self) -> tuple[Result, ...]:
        """Non-passing results, most severe first, then by check and resource."""
        if "findings" not in self.memo:
            found = [r for r in self.results if r.status in FINDING_STATUSES]
            self.memo["findings"] = tuple(sorted(found, key=lambda r: (
                -r.check.severity.rank, r.check.id, r.job.id.lower(), r.outcome.subject)))
        findings: tuple[Result, ...] = self.memo["findings"]
        return findings

    def with_history(self, history: History) -> ScanReport:
        """This report with what the history store says of its findings; the findings, already
        sorted to compare them with the store, are not sorted again."""
        compared = replace(self, history=history)
        if "findings" in self.memo:
            compared.memo["findings"] = self.memo["findings"]
        return compared

    def owner(self, job: Job) -> str | None:
        value = job.tag(self.settings.scan.owner_tag)
        return value.strip() if value and value.strip() else None

    def check_counts(self) -> dict[str, dict[str, int]]:
        """Per check id: counts by status, plus `evaluated` (every job the check ran on)."""
        if "check_counts" not in self.memo:
            tally: dict[str, Counter[str]] = {c.id: Counter() for c in self.checks}
            for r in self.results:
                tally[r.check.id][r.status.value] += 1
                tally[r.check.id]["waived"] += r.waived
            self.memo["check_counts"] = {
                check_id: {"evaluated": sum(t.values()) - t["waived"], "passed": t["pass"],
                           "failed": t["fail"], "waived": t["waived"],
                           "not_applicable": t["not_applicable"],
                           "unknown": t["unknown"], "error": t["error"]}
                for check_id, t in tally.items()
            }
        counts: dict[str, dict[str, int]] = self.memo["check_counts"]
        return {check_id: dict(tally) for check_id, tally in counts.items()}

    def failing_at_or_above(self) -> list[Result]:
        threshold = self.settings.scan.fail_on.rank
        return [r for r in self.results if r.status is Status.FAIL and not r.waived
                and r.check.severity.rank >= threshold]
