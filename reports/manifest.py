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

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from auditor.reproducible import file_digest
from auditor.results import ScanReport
from auditor.snapshot import write_json_atomic
from reports.tables import counts, iso_utc, jsonable

FILE_NAME = "manifest.json"
MANIFEST_VERSION = 1


# Size and SHA-256 of files hashed as they were written, by path relative to the folder.
Digests = Mapping[str, tuple[int, str]]


def digests(paths: Iterable[Path], folder: Path) -> dict[str, tuple[int, str]]:
    """Size and SHA-256 of files just written: a report worker hashes its own files while the
    scan still writes others (a large estate's reports are over a gigabyte), and the manifest
    does not read them again."""
    return {path.relative_to(folder).as_posix(): file_digest(path) for path in paths}


def file_entries(folder: Path, known: Digests | None = None) -> list[dict[str, Any]]:
    """Path, size and SHA-256 of every file below `folder` except the manifest itself; a file
    `known` holds at its present size is not hashed again."""
    known = known or {}
    entries = []
    for path in folder.rglob("*"):
        name = path.relative_to(folder).as_posix()
        if name == FILE_NAME or not path.is_file():
            continue
        size, digest = known.get(name, (-1, ""))
        if size != path.stat().st_size:
            size, digest = file_digest(path)
        entries.append({"path": name, "bytes": size, "sha256": digest})
    return sorted(entries, key=lambda e: str(e["path"]))


def document(report: ScanReport, folder: Path, known: Digests | None = None) -> dict[str, Any]:
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
        "files": file_entries(folder, known),
    }


def write_manifest(report: ScanReport, folder: Path, known: Digests | None = None) -> Path:
    """Write the manifest; call it after every other file of the folder is in place. `known`:
    files already hashed (`digests`)."""
    path = folder / FILE_NAME
    write_json_atomic(path, document(report, folder, known))
    return path
