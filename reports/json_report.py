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
  `fingerprint` (32 hex digits, `auditor.fingerprint`) is the same in every scan that finds the
  same check, resource and subject. `history` is {state: "new" | "persisting", first_seen,
  age_days} against the last complete scan of the same scope, or null when no history store
  was kept (`--no-history`).
- `waivers`: every waiver with its state (applied, expired, stale) and the findings it matched.
- `history`: null without a history store, else {store, scope_key, baseline (the scan compared
  with: id, as_of, manifest_sha256; null for the first scan of the scope), new, persisting,
  resolved (counts)}.
- `resolved`: null without a history store, else the baseline's findings this scan no longer
  has: fingerprint, check_id, resource_id, subject, severity, last_status, waived, first_seen,
  last_seen, and `now` (what this scan found for that check and resource, or "not evaluated").

- `changes`: the jobs' configuration changes Resource Graph recorded (`resourcechanges`, which
  keeps 14 days), newest first: id, resource_id, resource_name, subscription_id,
  resource_group, job_in_scan (false for a deleted job), change_type (Create | Update |
  Delete), timestamp, changed_by, changed_by_type, client_type, operation, correlation_id,
  changes_count, and `properties`: [{path, before, after, property_change_type,
  change_category, masked}]. `before`/`after` are null where the property did not exist; values
  that could hold a secret (env values, secrets, args, command, scale-rule metadata, anything
  credential-like) are masked (`masked` is true), never given in clear.

`fingerprint`, `history`, `resolved` and `changes` were added within schema version 1: readers
that ignore unknown keys are unaffected.

Keys keep this order and times are ISO 8601 UTC with a Z, so one scan always gives the same bytes.
"""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter
from pathlib import Path
from typing import Any

from auditor.results import ScanReport
from auditor.snapshot import write_json_atomic
from reports import config_changes
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


# A record's fields in order, read without `dataclasses.asdict`, which deep-copies each of
# tens of thousands of findings only for the waivers to be replaced by their own dicts.
_RECORD_FIELDS = tuple(f.name for f in fields(Record))
_record_values = attrgetter(*_RECORD_FIELDS)


def _finding(report: ScanReport, item: Record) -> dict[str, Any]:
    state = report.history.of(item.fingerprint) if report.history is not None else None
    return {**dict(zip(_RECORD_FIELDS, _record_values(item), strict=True)),
            "evidence": list(item.evidence),
            "waiver": item.waiver.to_dict() if item.waiver else None,
            "expired_waiver": item.expired_waiver.to_dict() if item.expired_waiver else None,
            "history": state.to_dict() if state is not None else None}


def _history(report: ScanReport) -> dict[str, Any] | None:
    history = report.history
    if history is None:
        return None
    baseline = history.baseline
    return {"store": history.store, "scope_key": history.scope_key,
            "baseline": {"id": baseline.id, "as_of": iso_utc(baseline.as_of),
                         "manifest_sha256": baseline.manifest_sha256} if baseline else None,
            "new": history.new, "persisting": history.persisting,
            "resolved": len(history.resolved)}


def document(report: ScanReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "scan": _scan(report),
        "checks": [
            {"id": c.id, "title": c.title, "severity": c.severity.value, "category": c.category,
             **tally}
            for c, tally in check_counts(report)
        ],
        "findings": [_finding(report, r) for r in finding_records(report)],
        "waivers": [{"state": r.state.value, "matched": r.matched, **r.waiver.to_dict()}
                    for r in report.waivers],
        "history": _history(report),
        "resolved": [r.to_dict() for r in report.history.resolved]
        if report.history is not None else None,
        "changes": _changes(report),
    }


def _changes(report: ScanReport) -> list[dict[str, Any]]:
    known = config_changes.job_ids(report)
    return [config_changes.to_dict(c, known) for c in config_changes.newest_first(report)]


def write_findings_json(report: ScanReport, folder: Path) -> Path:
    path = folder / FILE_NAME
    write_json_atomic(path, document(report))
    return path
