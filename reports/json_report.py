"""findings.json: the machine-readable report (schema version 1).

Top level, in this order:
- `schema_version`: 1; bumped only when a field changes meaning or goes away.
- `scan`: id, started, finished, as_of, source, source_detail, tool_version, settings_digest,
  scope, complete, coverage (reads, gaps, queries), other_types (unrecognised item types and how
  many), counts (jobs, environments, executions, role_assignments, results, findings, waived).
- `checks`: per check id, title, severity, category and its counts (evaluated, passed, failed,
  waived, not_applicable, unknown, error).
- `findings`: one object per non-passing result (fail, unknown, error), most severe first, with
  the fields of `reports.tables.Record`; a waived finding keeps its status and carries `waiver`.
- `waivers`: every waiver with its state (applied, expired, stale) and the findings it matched.

Keys keep this order and times are ISO 8601 UTC with a Z, so one scan always gives the same bytes.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from auditor.results import ScanReport
from auditor.snapshot import write_json_atomic
from reports.tables import Record, check_counts, counts, finding_records, iso_utc, jsonable

FILE_NAME = "findings.json"
SCHEMA_VERSION = 1


def _scan(report: ScanReport) -> dict[str, Any]:
    info = report.info
    return {
        "id": info.id,
        "started": iso_utc(info.started),
        "finished": iso_utc(info.finished),
        "as_of": iso_utc(info.as_of),
        "source": info.source,
        "source_detail": info.source_detail,
        "tool_version": info.tool_version,
        "settings_digest": report.settings.digest(),
        "scope": jsonable(info.scope),
        "complete": report.complete,
        "coverage": jsonable(report.coverage.to_dict()),
        "other_types": dict(info.other_types),
        "counts": counts(report),
    }


def _finding(item: Record) -> dict[str, Any]:
    return {**asdict(item), "evidence": list(item.evidence),
            "waiver": item.waiver.to_dict() if item.waiver else None,
            "expired_waiver": item.expired_waiver.to_dict() if item.expired_waiver else None}


def document(report: ScanReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "scan": _scan(report),
        "checks": [
            {"id": c.id, "title": c.title, "severity": c.severity.value, "category": c.category,
             **tally}
            for c, tally in check_counts(report)
        ],
        "findings": [_finding(r) for r in finding_records(report)],
        "waivers": [{"state": r.state.value, "matched": r.matched, **r.waiver.to_dict()}
                    for r in report.waivers],
    }


def write_findings_json(report: ScanReport, folder: Path) -> Path:
    path = folder / FILE_NAME
    write_json_atomic(path, document(report))
    return path
