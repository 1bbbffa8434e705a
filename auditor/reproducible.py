"""Scan ids derived from what the scan read, so one input gives one report, byte for byte.

A scan id is a name-based UUID (version 5, RFC 4122) of:
- the tool version and the settings digest,
- the source, the scope and the as-of time,
- the time the scan started, to the microsecond (the injected clock in tests),
- the waivers applied, and
- the path, size and SHA-256 of every file of the snapshot evidence.

Two real runs differ in their start time, so they get different ids (the history store needs
that). A run with an injected clock and version over the same snapshot, settings, waivers and
`--as-of` gets the same id, and so byte-identical report.md, findings.json, findings.csv and
findings.sarif (report.xlsx stamps its own creation time into the zip, so it is not compared).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

# The namespace of auditor's scan ids (a fixed, random UUID).
SCAN_NAMESPACE = uuid.UUID("5b0f6a57-3c52-4d1e-9a0b-7e2f1c9d4a38")


def folder_digest(folder: Path) -> list[list[Any]]:
    """[relative path, size, SHA-256] of every file below `folder`, sorted by path."""
    return [[path.relative_to(folder).as_posix(), *file_digest(path)]
            for path in sorted(p for p in folder.rglob("*") if p.is_file())]


def file_digest(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file, both of the bytes read."""
    with path.open("rb") as handle:
        return os.fstat(handle.fileno()).st_size, hashlib.file_digest(handle, "sha256").hexdigest()


def scan_id(*, tool_version: str, settings_digest: str, source: str, scope: Mapping[str, Any],
            as_of: datetime, started: datetime, waivers: Iterable[Mapping[str, str]],
            evidence: list[list[Any]]) -> str:
    """`evidence` is `folder_digest` of the snapshot evidence folder."""
    material = {
        "tool_version": tool_version,
        "settings_digest": settings_digest,
        "source": source,
        "scope": scope,
        "as_of": as_of.isoformat(),
        "started": started.isoformat(),
        "waivers": list(waivers),
        "evidence": evidence,
    }
    text = json.dumps(material, sort_keys=True, default=str, separators=(",", ":"))
    return str(uuid.uuid5(SCAN_NAMESPACE, text))
