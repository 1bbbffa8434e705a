"""Live collection: sign in, find the subscriptions in scope, query each resource type, and
write Azure's rows plus the record of what was and was not read as a snapshot folder.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential

from auditor import __version__
from auditor.collect.clouds import Endpoints, resolve
from auditor.collect.credentials import build_credential
from auditor.collect.history import HistoryRequest, collect_history
from auditor.collect.resource_graph import (
    ENVIRONMENTS,
    JOBS,
    RESOURCE_QUERIES,
    SUBSCRIPTIONS,
    Clock,
    Deadline,
    Failure,
    GraphQuery,
    QueryResult,
    ResourceGraph,
    Scope,
    Sleep,
    Throttle,
    batches,
    open_client,
)
from auditor.coverage import Coverage, Gap, Read
from auditor.errors import CollectionError
from auditor.settings import AzureSettings
from auditor.shards import Shard
from auditor.snapshot import write_collection, write_rows

log = logging.getLogger(__name__)

FILE_PREFIX = "resource-graph-"

# Who changed which job how, in the 14 days Resource Graph keeps (`resourcechanges`). Azure's full
# rows, `id` kept so pages carry skip tokens; their `type` is microsoft.resources/changes (the
# row shape and its sources are in auditor.changes). Written as resource-graph-changes.json.
CHANGES = GraphQuery(
    "changes",
    "resourcechanges | where type =~ 'microsoft.resources/changes' "
    "| where properties.targetResourceType =~ 'microsoft.app/jobs' "
    "| extend changeTime = todatetime(properties.changeAttributes.timestamp) "
    "| where changeTime > ago(14d) | order by id asc",
)
QUERIES = (*RESOURCE_QUERIES, CHANGES)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def collect(
    settings: AzureSettings,
    folder: Path,
    *,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
    now: Callable[[], datetime] = _utc_now,
    environ: Mapping[str, str] | None = None,
    history: HistoryRequest | None = None,
    shard: Shard | None = None,
) -> Coverage:
    """Read the scope in `settings` from Resource Graph into `folder`; return the coverage.

    With `shard`, only that shard's subscriptions are read (auditor.shards): explicit ones are
    filtered before anything is asked, a tenant's or management group's after they are listed.

    With `history`, the execution history of the jobs read (Log Analytics, else the executions
    API; see `history`) is collected in a thread of its own as soon as the jobs and environments
    are read, while the other queries wait on Resource Graph's quota. Its coverage follows
    Resource Graph's, as if it had run after; an error in it is raised here once Resource Graph
    is done, and an error here stops it.

    Raises CollectionError when nothing at all could be read (sign-in failed, every batch
    denied); anything less becomes a Gap and the scan goes on. Collection stops at the deadline
    (`deadline_seconds` after the start, on `clock`): what was not read by then is a Gap.
    """
    started = now()
    asked = settings
    if shard is not None and settings.subscriptions:
        settings = settings.model_copy(update={"subscriptions": tuple(
            s for s in settings.subscriptions if shard.owns(s))})
        if not settings.subscriptions:
            return _empty_shard(asked, folder, shard, started, now, environ)
    deadline = Deadline.after(settings.deadline_seconds, clock)
    endpoints = resolve(settings, environ)
    credential = build_credential(settings.auth, endpoints.cloud, environ)
    throttle = Throttle(sleep, clock, settings.max_retry_wait_seconds, deadline)
    coverage = Coverage()
    background: _History | None = None
    try:
        with open_client(credential, endpoints, settings, throttle) as client:
            graph = ResourceGraph(client, settings, throttle)
            found = _find_subscriptions(graph, settings, coverage, folder)
            targets = _targets(settings, found)
            if shard is not None and not settings.subscriptions:
                targets = batches("subscriptions", [i for i in _subscription_ids(found.rows)
                                                    if shard.owns(i)],
                                  settings.subscriptions_per_request)
            results: list[QueryResult] = []
            for query in QUERIES:
                results.append(_collect_query(graph, query, targets, coverage, folder))
                if query == ENVIRONMENTS and history is not None and _read_any(results):
                    background = _History.start(credential, endpoints, settings, history,
                                                results, folder, sleep, clock, deadline)
        if history is not None and background is None and _read_any(results):
            # The jobs and environments read nothing, a later query did: history as before.
            background = _History.start(credential, endpoints, settings, history, results,
                                        folder, sleep, clock, deadline)
        history_record = background.result(coverage) if background is not None else None
    finally:
        if background is not None:
            background.stop()
        _close(credential)
    asked_anything = any(result.scopes for result in results)  # a shard may own nothing
    if asked_anything and not _read_any(results):
        # Nothing at all came back; rows received before a failure still make a report.
        raise CollectionError(_nothing_read(results))
    record = _record(asked, endpoints, started, now(), found, results, throttle)
    if history_record is not None:
        record["history"] = history_record
    if shard is not None:
        record["shard"] = shard.to_dict()
    write_collection(folder, record, coverage)
    return coverage


class _History:
    """`collect_history` in a thread of its own, with its own Coverage, merged into the scan's
    after Resource Graph's so the record reads as if history had run last."""

    def __init__(self, run: Callable[[Coverage, threading.Event], dict[str, Any]]) -> None:
        self._coverage = Coverage()
        self._stop = threading.Event()
        self._record: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(run,),
                                        name="auditor-history", daemon=True)

    @classmethod
    def start(cls, credential: TokenCredential, endpoints: Endpoints, settings: AzureSettings,
              request: HistoryRequest, results: Sequence[QueryResult], folder: Path,
              sleep: Sleep, clock: Clock, deadline: Deadline) -> _History:
        """Collect the history of the jobs in `results` (read so far) from now on."""
        jobs, environments = _rows_of(results, JOBS), _rows_of(results, ENVIRONMENTS)

        def run(coverage: Coverage, stop: threading.Event) -> dict[str, Any]:
            return collect_history(credential, endpoints, settings, request, jobs, environments,
                                   coverage, folder, sleep=sleep, clock=clock, deadline=deadline,
                                   stop=stop)

        history = cls(run)
        history._thread.start()
        return history

    def _run(self, run: Callable[[Coverage, threading.Event], dict[str, Any]]) -> None:
        try:
            self._record = run(self._coverage, self._stop)
        except BaseException as e:  # raised again in the scan's thread, by result()
            self._error = e

    def result(self, coverage: Coverage) -> dict[str, Any]:
        """Wait for the history; add its coverage to `coverage`; its record, or its error."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._record is not None
        coverage.reads.extend(self._coverage.reads)
        coverage.gaps.extend(self._coverage.gaps)
        coverage.queries.extend(self._coverage.queries)
        return self._record

    def stop(self) -> None:
        """Have it stop at its next request or wait, and wait until it has (it may be done)."""
        self._stop.set()
        self._thread.join()


def _empty_shard(settings: AzureSettings, folder: Path, shard: Shard, started: datetime,
                 now: Callable[[], datetime], environ: Mapping[str, str] | None) -> Coverage:
    """A shard that owns none of the asked subscriptions: nothing to ask Azure, and a snapshot
    of empty results that says so."""
    coverage = Coverage()
    found = QueryResult(SUBSCRIPTIONS, [])
    results = [QueryResult(query, []) for query in QUERIES]
    for result in (found, *results):
        _account(result, coverage, folder, consequence="")
    record = _record(settings, resolve(settings, environ), started, now(), found, results,
                     Throttle(time.sleep, time.monotonic, 0.0))
    record["shard"] = shard.to_dict()
    write_collection(folder, record, coverage)
    return coverage


# --- scope -------------------------------------------------------------------------------------

def _asked(settings: AzureSettings) -> list[Scope]:
    size = settings.subscriptions_per_request
    if settings.subscriptions:
        return batches("subscriptions", _unique(settings.subscriptions), size)
    if settings.management_groups:
        return batches("management groups", _unique(settings.management_groups), size)
    return [Scope("tenant")]


def _find_subscriptions(graph: ResourceGraph, settings: AzureSettings, coverage: Coverage,
                        folder: Path) -> QueryResult:
    """List the subscriptions in scope first.

    With no scope given this is how the tenant's subscriptions are known at all; with explicit
    subscriptions or management groups it finds the denied ones once (splitting a denied batch
    costs requests), so the resource queries then skip them instead of failing four times.
    """
    found = graph.run(SUBSCRIPTIONS, _asked(settings))
    _account(found, coverage, folder, consequence="no resources in this scope were read")
    if not found.read:
        raise CollectionError(_nothing_read([found]))
    tenant = not (settings.subscriptions or settings.management_groups)
    if tenant and not found.rows:
        raise CollectionError(
            "the identity can read no subscription in this tenant; grant it Reader on the "
            "subscriptions to audit, or pass --subscription")
    return found


def _targets(settings: AzureSettings, found: QueryResult) -> list[Scope]:
    """The batches the resource queries run over: what the enumeration was allowed to read.

    An asked-for subscription that was not denied stays in scope even when it returned no
    subscription row: an identity with Reader on one resource group sees its resources but not
    the subscription itself.
    """
    size = settings.subscriptions_per_request
    readable = [i for scope in found.read for i in scope.ids]
    if settings.subscriptions:
        return batches("subscriptions", _in_order(settings.subscriptions, readable), size)
    if settings.management_groups:
        return batches("management groups", _in_order(settings.management_groups, readable), size)
    return batches("subscriptions", _subscription_ids(found.rows), size)


def _subscription_ids(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    ids = (str(row.get("subscriptionId") or "") for row in rows)
    return _unique(i for i in ids if i)


def _in_order(asked: Sequence[str], readable: Iterable[str]) -> list[str]:
    keep = {i.lower() for i in readable}
    return [i for i in _unique(asked) if i.lower() in keep]


def _unique(ids: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for item in ids:
        if item.lower() not in seen:
            seen.add(item.lower())
            kept.append(item)
    return kept


# --- per query ---------------------------------------------------------------------------------

def _collect_query(graph: ResourceGraph, query: GraphQuery, targets: list[Scope],
                   coverage: Coverage, folder: Path) -> QueryResult:
    result = graph.run(query, targets)
    _account(result, coverage, folder, consequence="")
    return result


def _account(result: QueryResult, coverage: Coverage, folder: Path, consequence: str) -> None:
    """Write the rows and note in `coverage` what was read, what was not, and the query."""
    write_rows(folder, FILE_PREFIX + result.query.name, result.rows)
    source = f"Resource Graph {result.query.name}"
    if result.read:
        coverage.reads.append(Read(_summary(result.read), source, len(result.rows)))
    for failure in result.failures:
        coverage.gaps.append(_gap(failure, source, consequence))
    coverage.queries.append(result.summary())


def _read_any(results: Sequence[QueryResult]) -> bool:
    return any(result.read or result.rows for result in results)


def _rows_of(results: Sequence[QueryResult], query: GraphQuery) -> list[dict[str, Any]]:
    return [row for result in results if result.query == query for row in result.rows]


def _gap(failure: Failure, source: str, consequence: str) -> Gap:
    reason = f"{failure.reason}; {consequence}" if consequence else failure.reason
    return Gap(failure.scope.describe(), source, reason)


def _summary(scopes: Sequence[Scope]) -> str:
    """A short name for what was read; the full lists are in collection.json."""
    ids = [i for scope in scopes for i in scope.ids]
    if scopes[0].kind == "tenant" or len(ids) <= 3:
        return "; ".join(scope.describe() for scope in scopes)
    return f"{len(ids)} {scopes[0].kind}"


def _nothing_read(results: Sequence[QueryResult]) -> str:
    failures = [f for r in results for f in r.failures]
    if not failures:
        return "Resource Graph returned nothing that could be read"
    first = failures[0]
    more = f" (and {len(failures) - 1} more failures)" if len(failures) > 1 else ""
    return f"nothing could be read from Resource Graph: {first.scope.describe()}: " \
           f"{first.reason}{more}"


# --- the record --------------------------------------------------------------------------------

def _record(settings: AzureSettings, endpoints: Endpoints, started: datetime, finished: datetime,
            found: QueryResult, results: Sequence[QueryResult],
            throttle: Throttle) -> dict[str, Any]:
    """What was asked, where it was sent, and which subscriptions were found and not read."""
    failed = [f.scope for r in (found, *results) for f in r.failures]
    return {
        "tool_version": __version__,
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "cloud": endpoints.cloud.name,
        "arm_endpoint": endpoints.arm,
        "arm_endpoint_source": endpoints.arm_source,
        "arm_token_audience": endpoints.cloud.arm_audience,
        "auth": settings.auth,
        "resource_graph_api_version": settings.resource_graph_api_version,
        "page_size": settings.page_size,
        "subscriptions_per_request": settings.subscriptions_per_request,
        "scope": {
            "subscriptions": list(settings.subscriptions),
            "management_groups": list(settings.management_groups),
            "tenant": not (settings.subscriptions or settings.management_groups),
            "subscriptions_found": _subscription_ids(found.rows),
            "subscriptions_not_read": _unique(
                i for s in failed if s.kind == "subscriptions" for i in s.ids),
            "management_groups_not_read": _unique(
                i for s in failed if s.kind == "management groups" for i in s.ids),
        },
        "throttling": {"waits": throttle.waits,
                       "seconds": round(throttle.waited_seconds, 3)},
        "limits": {"deadline_seconds": settings.deadline_seconds,
                   "deadline_passed": throttle.expired(),
                   "max_retries": settings.max_retries,
                   "max_retry_wait_seconds": settings.max_retry_wait_seconds,
                   "connect_timeout_seconds": settings.connect_timeout_seconds,
                   "read_timeout_seconds": settings.read_timeout_seconds},
    }


def _close(credential: TokenCredential) -> None:
    close = getattr(credential, "close", None)
    if callable(close):
        close()
