"""`auditor verify DIR`: is a report folder still what the scan wrote?

It recomputes the size and SHA-256 of every file the folder's manifest.json lists and reports,
one line each:
- `changed: PATH: ...`: the file's size or SHA-256 is not the recorded one;
- `missing: PATH: ...`: a listed file is gone;
- `not in manifest: PATH: ...`: a file the scan did not write (or the manifest no longer lists);
- `invalid entry: PATH: ...`: a manifest entry that is not a plain relative path and digest.

With a history store (`--history FILE`) it also checks the evidence chain: the store recorded
this scan, with the SHA-256 of this manifest.json (so an edited manifest shows), and the
manifest's `previous_manifest_sha256` is the manifest of the scan recorded just before it for the
same scope (so a removed or replaced period shows), and the scan recorded after it, if any, names
this manifest. Problems there are `chain: ...` lines.

The manifest cannot hash itself: without a history store an edit to manifest.json that also
rewrites the hashes goes unseen, which is why the store keeps each manifest's SHA-256.

Exit codes (see auditor.cli): 0 intact, 1 any problem above, 2 the folder cannot be verified
(no folder, no readable manifest.json, an unusable history store).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from auditor.errors import InputError
from auditor.history import HistoryStore
from reports.manifest import FILE_NAME as MANIFEST


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    path: str
    detail: str

    def line(self) -> str:
        return f"{self.kind}: {self.path}: {self.detail}"


@dataclass(slots=True)
class Verification:
    folder: Path
    scan_id: str
    files: int  # entries the manifest lists
    problems: list[Problem] = field(default_factory=list)
    chain_checked: bool = False

    @property
    def intact(self) -> bool:
        return not self.problems


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _short(digest: object) -> str:
    return str(digest)[:12] if digest else "none"


def load_manifest(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise InputError(str(folder), "no such report folder", "pass the folder a scan wrote")
    path = folder / MANIFEST
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError(str(path), "the folder has no manifest.json",
                         "pass a folder written by `auditor scan`") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(str(path), f"manifest.json is not valid JSON ({e})",
                         "the manifest itself was damaged; compare it with the history store"
                         ) from e
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        raise InputError(str(path), "manifest.json has no list of files",
                         "pass a folder written by `auditor scan`")
    return document


def _entry_path(entry: Any) -> str | None:
    """The entry's path when the entry is well formed: relative, inside the folder."""
    if not isinstance(entry, dict):
        return None
    name, size, digest = entry.get("path"), entry.get("bytes"), entry.get("sha256")
    if not isinstance(name, str) or not isinstance(size, int) or not isinstance(digest, str):
        return None
    pure = PurePosixPath(name)
    if not name or "\\" in name or pure.is_absolute() or ".." in pure.parts or name == MANIFEST:
        return None
    return name


def verify_folder(folder: Path, history: Path | None = None) -> Verification:
    manifest = load_manifest(folder)
    result = Verification(folder, str(manifest.get("scan_id") or ""), len(manifest["files"]))
    listed: set[str] = set()
    for entry in manifest["files"]:
        name = _entry_path(entry)
        if name is None:
            shown = entry.get("path") if isinstance(entry, dict) else entry
            result.problems.append(Problem("invalid entry", str(shown),
                                           "not a relative path with bytes and sha256"))
            continue
        listed.add(name)
        path = folder / name
        if not path.is_file():
            result.problems.append(Problem("missing", name, "listed in the manifest, not found"))
            continue
        size, digest = path.stat().st_size, _sha256(path)
        if size != entry["bytes"] or digest != entry["sha256"]:
            result.problems.append(Problem(
                "changed", name, f"recorded {entry['bytes']} bytes, sha256 "
                f"{_short(entry['sha256'])}…; found {size} bytes, sha256 {_short(digest)}…"))
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if name != MANIFEST and name not in listed:
            result.problems.append(Problem("not in manifest", name,
                                           "the scan did not write this file"))
    if history is not None:
        result.problems.extend(_chain(folder, manifest, history, result.scan_id))
        result.chain_checked = True
    return result


def _chain(folder: Path, manifest: dict[str, Any], store_path: Path,
           scan_id: str) -> list[Problem]:
    """The evidence chain of this manifest against the history store."""
    problems: list[Problem] = []
    store_name = str(store_path)
    with HistoryStore(store_path, create=False) as store:
        row = store.scan(scan_id) if scan_id else None
        if row is None:
            return [Problem("chain", MANIFEST,
                            f"scan {scan_id or '(no id)'} is not recorded in {store_name}")]
        found = _sha256(folder / MANIFEST)
        if found != row.manifest_sha256:
            problems.append(Problem(
                "chain", MANIFEST, f"sha256 {_short(found)}… is not the "
                f"{_short(row.manifest_sha256)}… the history store recorded for scan {row.id}"))
        previous = store.latest(row.scope_key, before_seq=row.seq)
        expected = previous.manifest_sha256 if previous else None
        named = manifest.get("previous_manifest_sha256")
        if named != expected:
            before = f"scan {previous.id} with manifest {_short(expected)}…" if previous else \
                "no earlier scan of this scope"
            problems.append(Problem(
                "chain", MANIFEST, f"names previous manifest {_short(named)}…, but the history "
                f"store has {before}"))
        following = store.following(row)
        if following is not None and following.previous_manifest_sha256 != row.manifest_sha256:
            problems.append(Problem(
                "chain", MANIFEST, f"the next scan of this scope, {following.id}, names previous "
                f"manifest {_short(following.previous_manifest_sha256)}…, not this scan's"))
    return problems
