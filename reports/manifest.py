"""manifest.json: what the report folder holds, written last, so any later change is detectable.

It lists every file below the folder (the snapshot evidence and the reports) with its size and
SHA-256, paths relative and sorted, next to the scan's identity and completeness.

The evidence chain: `previous_manifest_sha256` is the SHA-256 of the manifest.json of the scan
recorded just before this one for the same scope (`history_scope_key`) in the history store, and
`previous_scan_id` its id; both are null for the first scan of a scope, and all three are null
when no history store was kept. An edited or removed period breaks the chain, which
`auditor verify DIR --history FILE` checks.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from auditor.results import ScanReport
from auditor.snapshot import write_json_atomic
from reports.tables import counts, iso_utc, jsonable

FILE_NAME = "manifest.json"
MANIFEST_VERSION = 1


def file_entries(folder: Path) -> list[dict[str, Any]]:
    """Path, size and SHA-256 of every file below `folder` except the manifest itself."""
    entries = []
    for path in folder.rglob("*"):
        name = path.relative_to(folder).as_posix()
        if name == FILE_NAME or not path.is_file():
            continue
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        entries.append({"path": name, "bytes": path.stat().st_size, "sha256": digest})
    return sorted(entries, key=lambda e: str(e["path"]))


def document(report: ScanReport, folder: Path) -> dict[str, Any]:
    info, history = report.info, report.history
    return {
        "manifest_version": MANIFEST_VERSION,
        "tool_version": info.tool_version,
        "scan_id": info.id,
        "started": iso_utc(info.started),
        "finished": iso_utc(info.finished),
        "as_of": iso_utc(info.as_of),
        "source": info.source,
        "source_detail": info.source_detail,
        "scope": jsonable(info.scope),
        "settings_digest": report.settings.digest(),
        "complete": report.complete,
        "counts": counts(report),
        "history_scope_key": history.scope_key if history else None,
        "previous_scan_id": history.previous.id if history and history.previous else None,
        "previous_manifest_sha256": history.previous_manifest_sha256 if history else None,
        "files": file_entries(folder),
    }


def write_manifest(report: ScanReport, folder: Path) -> Path:
    """Write the manifest; call it after every other file of the folder is in place."""
    path = folder / FILE_NAME
    write_json_atomic(path, document(report, folder))
    return path
