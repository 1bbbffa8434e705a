"""Sharded scans: each shard scans a fixed slice of the subscriptions; `merge` joins them.

`auditor scan --shard I/N` reads only the subscriptions whose shard is I: the SHA-256 of the
subscription id in lower case, as a big-endian integer, modulo N, plus one. The slice depends on
nothing but the id and N, so shards run anywhere, in any order, and agree without talking to each
other. A live shard collects only its subscriptions (explicit ones are filtered before anything
is asked; a tenant's or management group's are found first, then filtered). A shard of a
snapshot (`--snapshot`, `--sample`) keeps the rows of its subscriptions: rows that name no
subscription go to shard 1, except role definitions, which every shard keeps (built-in roles are
tenant-wide and every shard's checks look them up). Each shard writes its own reports and its
own `snapshot/` evidence, with the shard recorded in `collection.json` and in `scope.shard`.

`auditor merge DIR... --out OUT` reads each shard's `snapshot/` (copied into
`OUT/snapshot/shard-I-of-N/`, byte for byte) and evaluates them together as one scan, with one
manifest. Coverage is the union of the shards'. The merged scan is complete only when every shard
was complete and the shards given are 1..N: a missing shard is a coverage gap (exit 3).

A shard's own report sees only its slice: a job's identity may hold roles in another shard's
subscription. The merged report sees everything the shards read.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.coverage import Coverage, Gap
from auditor.errors import InputError
from auditor.snapshot import (
    COLLECTION_FILE,
    COLLECTION_KEY,
    ROLE_DEFINITIONS,
    RawSnapshot,
    _item_type,
    _rows,
    read_snapshot,
    write_collection,
    write_rows,
)

if TYPE_CHECKING:
    from auditor.scan import ScanRequest
    from auditor.settings import Settings

METHOD = "sha256(lower-case subscription id) mod count, plus 1"
MERGE_SOURCE = "merge"
SNAPSHOT_DIR = "snapshot"
_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Shard:
    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`I/N` with 1 <= I <= N; ValueError says what is wrong."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise ValueError(f"expected I/N (for example 2/8), got {text!r}")
        index, count = int(match.group(1)), int(match.group(2))
        if not 1 <= index <= count:
            raise ValueError(f"the shard index must be 1 to {count}, got {index}")
        return cls(index, count)

    def owns(self, subscription_id: str) -> bool:
        return shard_of(subscription_id, self.count) == self.index

    def describe(self) -> str:
        return f"{self.index}/{self.count}"

    def folder(self) -> str:
        return f"shard-{self.index}-of-{self.count}"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "count": self.count, "method": METHOD}


def shard_of(subscription_id: str, count: int) -> int:
    """The shard (1..count) a subscription belongs to."""
    digest = hashlib.sha256(subscription_id.strip().lower().encode("utf-8")).digest()
    return int.from_bytes(digest, "big") % count + 1


# --- a shard of a snapshot ----------------------------------------------------------------------

def subscription_of(row: Any) -> str | None:
    """The subscription a row belongs to: its `subscriptionId` column, else its ARM id."""
    if not isinstance(row, dict):
        return None
    value = row.get("subscriptionId")
    if isinstance(value, str) and value.strip():
        return value.strip()
    resource_id = row.get("id")
    match = _SUBSCRIPTION.match(resource_id) if isinstance(resource_id, str) else None
    return match.group(1) if match else None


def _kept(row: Any, shard: Shard) -> bool:
    subscription = subscription_of(row)
    if subscription is not None:
        return shard.owns(subscription)
    if isinstance(row, dict) and _item_type(row) == ROLE_DEFINITIONS:
        return True  # tenant-wide lookups every shard's checks need
    return shard.index == 1


def gather_slice(request: ScanRequest, evidence: Path) -> dict[str, object]:
    """Write the shard's slice of a snapshot (or of the sample) into `evidence`; return the scope.

    The input is read and checked first, so an error names the user's file.
    """
    assert request.shard is not None
    if request.source == "sample":
        with as_file(files("auditor.sample_estate")) as sample:
            slice_snapshot(Path(sample), evidence, request.shard, {"sample": True})
        return {"sample": True, "shard": request.shard.to_dict()}
    assert request.snapshot is not None
    of: dict[str, object] = {"snapshot": str(request.snapshot)}
    slice_snapshot(request.snapshot, evidence, request.shard, of)
    return {**of, "shard": request.shard.to_dict()}


def slice_snapshot(source: Path, evidence: Path, shard: Shard, of: dict[str, object]) -> None:
    """Every file of `source` again under its own name, holding the rows of `shard` only, as an
    `az graph query` result; and a collection record with the shard and the input's own gaps
    (a page left behind in an input file is a gap of every shard: its rows may be anyone's)."""
    full = read_snapshot(source)
    evidence.mkdir(mode=0o700, parents=True, exist_ok=True)
    record: dict[str, Any] = {k: v for k, v in (full.collection or {}).items()
                              if k not in ("format", "coverage", "shard")}
    for name in full.files:
        path = source / name
        document = json.loads(path.read_text(encoding="utf-8-sig"))
        if isinstance(document, dict) and COLLECTION_KEY in document:
            continue  # its history and gaps are carried in the shard's own record
        rows = [row for row in _rows(document, path, name, RawSnapshot()) if _kept(row, shard)]
        target = Path(name)
        (evidence / target.parent).mkdir(mode=0o700, parents=True, exist_ok=True)
        write_rows(evidence / target.parent, target.name.removesuffix(".json"), rows)
    record["shard"] = {**shard.to_dict(), "of": of}
    if (evidence / COLLECTION_FILE).exists():
        raise InputError(str(source), f"holds a data file named {COLLECTION_FILE} at its top",
                         "rename the file: a shard writes its own collection record there")
    write_collection(evidence, record, Coverage(gaps=list(full.coverage.gaps)))


# --- merging shards -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ShardOutput:
    folder: Path  # the shard's --out folder
    shard: Shard
    of: dict[str, Any]  # what was sharded: the scope every shard of a set shares
    scope: dict[str, Any] | None  # the scope in its findings.json, when there is one
    as_of: datetime | None
    started: datetime | None
    manifest_sha256: str | None


@dataclass(frozen=True, slots=True)
class MergePlan:
    outputs: tuple[ShardOutput, ...]
    count: int
    missing: tuple[int, ...]

    @property
    def sample(self) -> bool:
        return self.outputs[0].of.get("sample") is True

    def as_of(self) -> datetime | None:
        """The latest as-of time of the shards: the merged scan judges as of then."""
        times = [o.as_of for o in self.outputs if o.as_of is not None]
        return max(times) if times else None

    def scope(self) -> dict[str, object]:
        base = dict(self.outputs[0].scope or self.outputs[0].of)
        base.pop("shard", None)
        return {**base, "shards": {"count": self.count, "method": METHOD,
                                   "merged": [o.shard.index for o in self.outputs],
                                   "missing": list(self.missing)}}


def inspect(folders: Sequence[Path], *, within: timedelta | None = None) -> MergePlan:
    """Read and check the shard outputs to merge: one shard set, each shard at most once, and
    (with `within`) scans that started within that time of each other, so a shard's output
    left over from an earlier run is not merged as if it were today's."""
    if not folders:
        raise InputError("merge", "no shard folders given", "pass the --out folder of each shard")
    outputs = sorted((_output(folder) for folder in folders), key=lambda o: o.shard.index)
    counts = {o.shard.count for o in outputs}
    if len(counts) > 1:
        raise InputError(str(outputs[0].folder), f"the shards come from different shard sets "
                         f"(counts {', '.join(map(str, sorted(counts)))})",
                         "merge the shards of one `--shard I/N` run with the same N")
    for first, second in itertools.pairwise(outputs):
        if first.shard.index == second.shard.index:
            raise InputError(str(second.folder), f"shard {second.shard.describe()} is also "
                             f"given as {first.folder}", "give each shard once")
    for other in outputs[1:]:
        if _comparable(other.of) != _comparable(outputs[0].of):
            raise InputError(str(other.folder), "this shard scanned another scope than "
                             f"{outputs[0].folder} ({other.of} against {outputs[0].of})",
                             "merge only shards of the same scan")
    started = [o for o in outputs if o.started is not None]
    if within is not None and started:
        first = min(started, key=lambda o: o.started or datetime.min)
        last = max(started, key=lambda o: o.started or datetime.min)
        assert first.started is not None and last.started is not None
        if last.started - first.started > within:
            raise InputError(str(first.folder), f"shard {first.shard.describe()} started at "
                             f"{first.started.isoformat()}, {last.started - first.started} "
                             f"before shard {last.shard.describe()} ({last.folder}): it is "
                             "not from the same run", "rerun the stale shard, or raise --within")
    count = counts.pop()
    present = {o.shard.index for o in outputs}
    missing = tuple(i for i in range(1, count + 1) if i not in present)
    return MergePlan(tuple(outputs), count, missing)


def _output(folder: Path) -> ShardOutput:
    record_path = folder / SNAPSHOT_DIR / COLLECTION_FILE
    if not (folder / SNAPSHOT_DIR).is_dir():
        raise InputError(str(folder), "holds no snapshot/ folder",
                         "pass the --out folder of an `auditor scan --shard I/N` run")
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))[COLLECTION_KEY]
        entry = record["shard"]
        shard = Shard(int(entry["index"]), int(entry["count"]))
    except FileNotFoundError as e:
        raise InputError(str(folder), f"{SNAPSHOT_DIR}/{COLLECTION_FILE} is missing, so this is "
                         "not the output of a sharded scan",
                         "pass the --out folder of an `auditor scan --shard I/N` run") from e
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(str(record_path), f"no shard is recorded here ({e!r})",
                         "pass the --out folder of an `auditor scan --shard I/N` run") from e
    if not 1 <= shard.index <= shard.count:
        raise InputError(str(record_path), f"shard {shard.describe()} is out of range",
                         "restore the file from the shard's scan")
    findings = _findings(folder)
    scan = findings.get("scan") if isinstance(findings, dict) else None
    scope = scan.get("scope") if isinstance(scan, dict) else None
    manifest = folder / "manifest.json"
    return ShardOutput(
        folder=folder, shard=shard, of=_sharded_scope(record),
        scope=scope if isinstance(scope, dict) else None,
        as_of=_time(scan.get("as_of")) if isinstance(scan, dict) else None,
        started=_time(scan.get("started")) if isinstance(scan, dict) else None,
        manifest_sha256=hashlib.sha256(manifest.read_bytes()).hexdigest()
        if manifest.is_file() else None)


def _findings(folder: Path) -> Any:
    try:
        return json.loads((folder / "findings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _sharded_scope(record: dict[str, Any]) -> dict[str, Any]:
    """What the shard set sliced: a snapshot, the sample, or a live scope."""
    of = record["shard"].get("of")
    if isinstance(of, dict):
        return of
    scope = record.get("scope")
    if not isinstance(scope, dict):
        scope = {}
    return {"cloud": record.get("cloud"),
            "subscriptions": list(scope.get("subscriptions") or []),
            "management_groups": list(scope.get("management_groups") or []),
            "tenant": bool(scope.get("tenant"))}


def _comparable(of: dict[str, Any]) -> str:
    normal = {k: sorted(str(v).lower() for v in value) if isinstance(value, list) else value
              for k, value in of.items()}
    return json.dumps(normal, sort_keys=True, default=str)


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def gather_merge(plan: MergePlan, evidence: Path) -> dict[str, object]:
    """Copy every shard's snapshot into `evidence` and record the merge (a missing shard is a
    gap); return the merged scope."""
    evidence.mkdir(mode=0o700, parents=True, exist_ok=True)
    for output in plan.outputs:
        source = output.folder / SNAPSHOT_DIR
        target = evidence / output.shard.folder()
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            copy = target / path.relative_to(source)
            copy.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
            os.chmod(copy, 0o600)
    gaps = [Gap(f"shard {index}/{plan.count}", "merge",
                "no output of this shard was given to `auditor merge`; the subscriptions it "
                "covers were not read") for index in plan.missing]
    record = {"merge": {
        "count": plan.count, "method": METHOD,
        "shards": [{"index": o.shard.index, "folder": str(o.folder),
                    "evidence": f"{SNAPSHOT_DIR}/{o.shard.folder()}",
                    "manifest_sha256": o.manifest_sha256} for o in plan.outputs],
        "missing": list(plan.missing)}}
    write_collection(evidence, record, Coverage(gaps=gaps))
    return plan.scope()


@contextmanager
def merge_request(folders: Sequence[Path], out: Path, settings: Settings, *,
                  as_of: datetime | None, waivers: Path | None, history: Path | None = None,
                  within: timedelta | None = None) -> Iterator[ScanRequest]:
    """The scan request that merges `folders`: as of the latest shard unless `as_of` is given;
    the sample's waivers when the shards scanned the sample and no waivers are configured."""
    from auditor.scan import SAMPLE_WAIVERS, ScanRequest

    plan = inspect(folders, within=within)
    with as_file(files("auditor.sample_estate").joinpath(SAMPLE_WAIVERS)) as sample_waivers:
        if waivers is None and not settings.scan.waivers and plan.sample:
            waivers = Path(sample_waivers)
        yield ScanRequest(source=MERGE_SOURCE, out=out, settings=settings,
                          as_of=as_of or plan.as_of(), waivers=waivers, merge=plan,
                          history=history)
