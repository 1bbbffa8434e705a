"""One scan: collect (or take a snapshot) → snapshot → normalize → evaluate → report.

Live collection writes the same snapshot a person exports by hand, and the scan then reads that
snapshot: live and offline scans share every step after collection.
"""

from __future__ import annotations

import gc
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING

import checks
import reports
from auditor import __version__
from auditor.actual_cost import load_actual_costs
from auditor.engine import active_checks, evaluate
from auditor.history import HistoryStore
from auditor.normalize import NORMALIZED_WHILE_READING, normalize
from auditor.output import discard, publish, staging_folder
from auditor.pricing import price
from auditor.reproducible import folder_digest, scan_id
from auditor.results import ScanInfo, ScanReport
from auditor.settings import Settings
from auditor.snapshot import RawSnapshot, read_snapshot
from auditor.waivers import Waiver, apply_waivers, load_waivers
from reports.manifest import FILE_NAME as MANIFEST_FILE

if TYPE_CHECKING:
    from auditor.shards import MergePlan, Shard
    from reports.finops import Priced
    from reports.workers import Worker

SNAPSHOT_DIR = "snapshot"
SAMPLE_WAIVERS = "waivers.toml"
Stage = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ScanRequest:
    source: str  # "live", "snapshot", "sample" or "merge"
    out: Path
    settings: Settings
    snapshot: Path | None = None
    as_of: datetime | None = None
    waivers: Path | None = None
    actual_cost: tuple[Path, ...] = ()  # Cost Management or FOCUS exports to reconcile with
    since: datetime | None = None  # execution-history window (live scans); see history_window
    until: datetime | None = None
    history: Path | None = None  # the history store (auditor.history); None keeps no history
    shard: Shard | None = None  # scan only this shard's subscriptions (auditor.shards)
    merge: MergePlan | None = None  # source "merge": the shard outputs to evaluate as one scan
    report_processes: int | None = None  # None: as many as reports.write_all may use


def _no_progress(stage: str) -> None:
    return None


def run_scan(
    request: ScanRequest,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    progress: Stage = _no_progress,
    tool_version: str = __version__,
) -> ScanReport:
    """Run the whole scan and publish its reports into `request.out`; return what was found.

    With `request.history`, findings are compared with the store before the reports are written
    and the scan is recorded after they are published. The scan id derives from the input and
    `clock()` (see auditor.reproducible): inject `clock` and `tool_version` for byte-identical
    reports.
    """
    with _rare_collections():
        return _run(request, clock, progress, tool_version)


@contextmanager
def _rare_collections() -> Iterator[None]:
    """Let the cyclic garbage collector run rarely while scanning.

    A scan builds millions of objects that live until it ends (rows, executions, results) and
    almost none in cycles; at the default thresholds the collector walks them all again and
    again, a third of the time of reading a large snapshot. Reference counting still frees
    everything as usual.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 1_000)
    try:
        yield
    finally:
        gc.unfreeze()  # what the report workers froze, should the scan fail before they end
        gc.set_threshold(*thresholds)


def _run(request: ScanRequest, clock: Callable[[], datetime], progress: Stage,
         tool_version: str) -> ScanReport:
    started = clock()
    catalogue = checks.catalogue()
    waivers = _waivers(request, [c.id for c in catalogue])
    staging = staging_folder(request.out)
    early: Worker[Priced] | None = None
    try:
        evidence = staging / SNAPSHOT_DIR
        progress("collect")
        scope, source = _gather(request, evidence, started)
        progress("normalize")
        raw = read_snapshot(source, convert=NORMALIZED_WHILE_READING)
        if source != evidence:
            _copy_evidence(source, evidence)
        estate = normalize(raw)
        raw.items.clear()  # the estate holds what the checks need: free the raw rows early
        progress("evaluate")
        active = active_checks(catalogue, request.settings)
        as_of = request.as_of or started
        since, until = _cost_window(raw, request, as_of)
        cost = price(estate, request.settings.cost, since, until)
        if request.actual_cost:
            cost = replace(cost, actual=load_actual_costs(request.actual_cost, since, until))
        # The cost export needs no check: with a second CPU it is written while they run.
        early = reports.start_early(reports.PricedEstate(request.settings, cost), staging,
                                    processes=request.report_processes)
        results, reviews = apply_waivers(
            evaluate(estate, active, request.settings.policy, as_of, cost), waivers, as_of)
        evidence_files = folder_digest(evidence) if evidence.is_dir() else []
        info = ScanInfo(
            id=scan_id(tool_version=tool_version, settings_digest=request.settings.digest(),
                       source=request.source, scope=scope, as_of=as_of, started=started,
                       waivers=(w.to_dict() for w in waivers), evidence=evidence_files),
            evidence_files=tuple((str(p), int(n), str(h)) for p, n, h in evidence_files),
            started=started,
            finished=clock(),
            as_of=as_of,
            source=request.source,
            source_detail=str(request.snapshot) if request.snapshot else request.source,
            tool_version=tool_version,
            scope=scope,
            snapshot_files=tuple(raw.files),
            other_types=dict(sorted(raw.other_types.items())),
        )
        report = ScanReport(info, request.settings, raw.coverage, active, estate, results,
                            reviews, cost=cost)
        if request.history is not None:
            with HistoryStore(request.history) as store:
                report = report.with_history(store.compare(report))
        progress("report")
        reports.write_all(report, staging, processes=request.report_processes,
                          known={f"{SNAPSHOT_DIR}/{path}": (size, digest)
                                 for path, size, digest in info.evidence_files}, early=early)
        publish(staging, request.out)
    except BaseException:
        if early is not None:  # before the folder it writes into is discarded
            early.stop()
        discard(staging)
        raise
    if report.history is not None and request.history is not None:
        manifest = (request.out / MANIFEST_FILE).read_bytes()
        with HistoryStore(request.history) as store:
            store.record(report, report.history, report_folder=request.out, recorded=clock(),
                         manifest_sha256=hashlib.sha256(manifest).hexdigest())
    return report


def _cost_window(raw: RawSnapshot, request: ScanRequest,
                 as_of: datetime) -> tuple[datetime, datetime]:
    """The history window the collection read, else the configured days before --as-of."""
    window = ((raw.collection or {}).get("history") or {}).get("window") or {}
    try:
        return (datetime.fromisoformat(str(window["since"]).replace("Z", "+00:00")),
                datetime.fromisoformat(str(window["until"]).replace("Z", "+00:00")))
    except (KeyError, ValueError):
        return as_of - timedelta(days=request.settings.history.days), as_of


def _waivers(request: ScanRequest, known_checks: list[str]) -> tuple[Waiver, ...]:
    """The --waivers file, else the configured one, else (for --sample) the sample's own."""
    path = request.waivers or (Path(request.settings.scan.waivers)
                               if request.settings.scan.waivers else None)
    if path is not None:
        return load_waivers(path, known_checks)
    if request.source == "sample":
        with as_file(files("auditor.sample_estate").joinpath(SAMPLE_WAIVERS)) as sample:
            return load_waivers(Path(sample), known_checks)
    return ()


def _gather(request: ScanRequest, evidence: Path,
            started: datetime) -> tuple[dict[str, object], Path]:
    """Collect or locate the scan's input; return the scope it covers and the folder to read.

    A snapshot given by the user is read where it is (so errors name the user's files) and
    copied into the evidence folder afterwards. A shard of a snapshot, and a merge of shards,
    are written into the evidence folder first (auditor.shards).
    """
    if request.merge is not None:
        from auditor.shards import gather_merge

        return gather_merge(request.merge, evidence), evidence
    if request.shard is not None and request.source != "live":
        from auditor.shards import gather_slice

        return gather_slice(request, evidence), evidence
    if request.source == "live":
        from auditor.collect.history import prepare
        from auditor.collect.live import collect  # the Azure SDKs load only for live scans

        history = prepare(request.settings.history, since=request.since, until=request.until,
                          as_of=request.as_of, now=started)
        collect(request.settings.azure, evidence, history=history, shard=request.shard)
        azure = request.settings.azure
        scope: dict[str, object] = {"subscriptions": list(azure.subscriptions),
                                    "management_groups": list(azure.management_groups),
                                    "cloud": azure.cloud}
        if request.shard is not None:
            scope["shard"] = request.shard.to_dict()
        return scope, evidence
    if request.source == "sample":
        with as_file(files("auditor.sample_estate")) as sample:
            _copy_evidence(Path(sample), evidence)
        return {"sample": True}, evidence
    assert request.snapshot is not None
    return {"snapshot": str(request.snapshot)}, request.snapshot


def _copy_evidence(source: Path, evidence: Path) -> None:
    """Keep the input as evidence, owner-only: it holds what Azure returned."""
    evidence.mkdir(mode=0o700)
    for path in sorted(source.rglob("*.json")):
        if not path.is_file():  # a folder named x.json: the reader skips it too
            continue
        target = evidence / path.relative_to(source)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        os.chmod(target, 0o600)
