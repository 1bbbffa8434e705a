"""Execution history of the jobs in scope, read once Resource Graph has listed them, from the best
source each has (in a thread of its own during a live scan: auditor.collect.live).

A job whose environment sends its logs to a Log Analytics workspace gets its history from that
workspace (one query per workspace for all its jobs in scope); any other job (logs sent to Azure
Monitor or nowhere, or an environment the scan could not read) from the Container Apps
executions API, which keeps only the last 100 executions. Both land in the snapshot as
`microsoft.app/jobs/executions` rows; the collection record says which source each job's history
came from, the window, and the caveats a report must repeat. Every window, workspace or job that
could not be read is a coverage Gap.

Workspaces are read LOG_ANALYTICS_READERS at a time, so that one reader parses a result while the
service computes and sends another's; everything written is in workspace order, as if they had
been read one after another.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential

from auditor.collect import executions_api, log_analytics
from auditor.collect.clouds import Endpoints
from auditor.collect.executions_api import ExecutionsApi, JobResult
from auditor.collect.log_analytics import HistoryJob, LogAnalytics, Query, WorkspaceResult
from auditor.collect.resource_graph import Clock, Deadline, Sleep, Throttle
from auditor.coverage import Coverage, Gap, Read
from auditor.errors import InputError
from auditor.normalize import environment_from_row
from auditor.readers import as_dict, as_str, scope_fields
from auditor.settings import AzureSettings, HistorySettings
from auditor.snapshot import write_row_texts, write_rows

LOG_ANALYTICS_FILE = "executions-log-analytics"
EXECUTIONS_API_FILE = "executions-api"
# Workspaces read at once, each by a thread with its own client. Log Analytics runs up to 5
# queries per user at once; two keep this process parsing while the service works on the next.
LOG_ANALYTICS_READERS = 2
LOG_ANALYTICS_SOURCE = "Log Analytics executions"
EXECUTIONS_API_SOURCE = "Container Apps executions API"
NO_SOURCE = "none"

CAVEAT_LOGS = (
    "Log Analytics: an execution missing from the logs is not proof that nothing ran; Container "
    "Apps is known to lose system-log rows for some executions. An execution's start and end are "
    "its first and last system-log events inside the window, and one whose end was not logged "
    "stays Running or Unknown.")
CAVEAT_API = (
    "Executions API: Azure keeps only each job's last 100 executions; older executions of these "
    "jobs cannot be seen.")


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """What a live scan asks of history collection: the settings and the window [since, until),
    and the query when it was loaded beforehand (else it is loaded from the settings)."""

    settings: HistorySettings
    since: datetime
    until: datetime
    query: Query | None = None


def prepare(settings: HistorySettings, *, since: datetime | None, until: datetime | None,
            as_of: datetime | None, now: datetime) -> HistoryRequest:
    """The request for a live scan, checked before anything is asked of Azure: the window and
    the query file (a bad one is an InputError now, not after Resource Graph was read)."""
    start, end = history_window(settings, since=since, until=until, as_of=as_of, now=now)
    return HistoryRequest(settings, start, end, log_analytics.load_query(settings))


def history_window(settings: HistorySettings, *, since: datetime | None, until: datetime | None,
                   as_of: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """--until, else --as-of, else now; --since, else `[history] days` before the end."""
    end = until or as_of or now
    start = since or end - timedelta(days=settings.days)
    if start >= end:
        raise InputError("--since", f"the history window starts at {start.isoformat()}, not "
                                    f"before its end {end.isoformat()}",
                         "give a --since earlier than --until (or --as-of)")
    return start, end


# --- which source for which job ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Route:
    """A job and where its history is read: a workspace, or (None) the executions API, and why."""

    job: HistoryJob
    workspace: str | None
    why: str


def route(job_rows: Iterable[Mapping[str, Any]],
          environment_rows: Iterable[Mapping[str, Any]]) -> list[Route]:
    """Where each job's history is read. A job row is read for its id, name, subscription,
    resource group and environment only, as `normalize.job_from_row` reads them: normalizing
    the whole row cost seconds for 20,000 jobs, while Resource Graph was still being read."""
    environments = {e.id.lower(): e for e in
                    (environment_from_row(dict(r)) for r in environment_rows) if e}
    routes: dict[str, Route] = {}
    for row in job_rows:
        resource_id = as_str(row.get("id"))
        if not resource_id or resource_id.lower() in routes:
            continue
        environment_id = as_str(as_dict(row.get("properties")).get("environmentId"))
        environment = environments.get((environment_id or "").lower())
        named = environment.name if environment else (environment_id or "").rsplit("/", 1)[-1]
        name = as_str(row.get("name")) or resource_id.rsplit("/", 1)[-1]
        target = HistoryJob(resource_id, name, *scope_fields(row, resource_id), named or None)
        routes[resource_id.lower()] = _route(target, environment, environment_id)
    return sorted(routes.values(), key=lambda r: r.job.id.lower())


def _route(job: HistoryJob, environment: Any, environment_id: str | None) -> Route:
    if environment is None:
        return Route(job, None, f"its environment {environment_id or '(none)'} was not read "
                                f"by this scan, so its log destination is unknown")
    destination = environment.logs_destination or ""
    workspace = environment.log_analytics_customer_id
    if destination.lower() != "log-analytics":
        return Route(job, None, f"environment {environment.name} sends its logs to "
                                f"{destination or 'no destination'}, not to Log Analytics")
    if not workspace:
        return Route(job, None, f"environment {environment.name} names no Log Analytics "
                                f"workspace (customerId)")
    return Route(job, workspace, f"environment {environment.name} sends its logs to workspace "
                                 f"{workspace}")


class Stopped(Exception):
    """History collection was told to stop (the rest of the scan failed or was interrupted)."""


class _StoppableThrottle(Throttle):
    """A Throttle another thread can stop, shared by the workspace readers: every reader calls
    `wait_turn` before a request and waits through `pause`, so once `stop` is set (or `halt`
    called) no request is sent and no wait goes on.

    A real sleep becomes a wait on `stop`, which the stop ends at once (time.sleep would hold
    the stop up to `max_wait`); an injected sleep (a test's clock) is kept as it is. The counters
    and the time to resume at change under a lock, which is released while a reader sleeps: one
    reader's wait does not hold up the other's.
    """

    def __init__(self, sleep: Sleep, clock: Clock, max_wait: float, deadline: Deadline | None,
                 stop: threading.Event) -> None:
        self._stop = stop
        self._halted = False
        self._lock = threading.Lock()
        self._sleep_now = self._wait if sleep is time.sleep else sleep
        super().__init__(self._sleep_unlocked, clock, max_wait, deadline)

    def wait_turn(self) -> None:
        self.check()
        super().wait_turn()
        self.check()

    def pause(self, seconds: float) -> None:
        self.check()
        with self._lock:
            super().pause(seconds)
        self.check()

    def _defer(self, seconds: float) -> None:
        with self._lock:
            super()._defer(seconds)

    def _sleep_unlocked(self, seconds: float) -> None:
        """The sleep `pause` ends with, the lock released meanwhile."""
        self._lock.release()
        try:
            self._sleep_now(seconds)
        finally:
            self._lock.acquire()

    def _wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def halt(self) -> None:
        """Stop the readers at their next request or wait (one of them failed, or the thread
        waiting for them was interrupted); unlike `stop`, a wait already begun is not cut
        short (it lasts `max_wait` at most)."""
        self._halted = True

    def check(self) -> None:
        """Raise Stopped once told to stop."""
        if self._halted or self._stop.is_set():
            raise Stopped("execution history collection was stopped")


def collect_history(credential: TokenCredential, endpoints: Endpoints, azure: AzureSettings,
                    request: HistoryRequest, job_rows: Sequence[Mapping[str, Any]],
                    environment_rows: Sequence[Mapping[str, Any]], coverage: Coverage,
                    folder: Path, *, sleep: Sleep, clock: Clock,
                    deadline: Deadline | None = None,
                    stop: threading.Event | None = None) -> dict[str, Any]:
    """Read the history of the jobs in `job_rows` into `folder`; return the collection record's
    `history` entry. Problems become Gaps in `coverage`; nothing here stops the scan. Past the
    `deadline`, nothing more is asked and what is left becomes Gaps. Once `stop` is set (by
    another thread), it raises Stopped before its next request or wait."""
    query = request.query or log_analytics.load_query(request.settings)
    routes = route(job_rows, environment_rows)
    throttle = _StoppableThrottle(sleep, clock, azure.max_retry_wait_seconds, deadline,
                                 stop or threading.Event())
    workspaces: dict[str, list[HistoryJob]] = {}
    for r in routes:
        if r.workspace:
            workspaces.setdefault(r.workspace.lower(), []).append(r.job)
    fallback = [r for r in routes if r.workspace is None]

    logs = _from_log_analytics(credential, endpoints, azure, request, query, workspaces, throttle)
    api, api_version = _from_executions_api(credential, endpoints, azure, request, fallback,
                                            throttle)
    sources = _sources(routes, logs, api)
    throttle.check()  # a stopped scan keeps no snapshot: writing it would only delay the stop
    _account_logs(logs, request, query, coverage, folder)
    _account_api(api, request, api_version, coverage, folder)
    return {
        "window": {"since": request.since.isoformat(), "until": request.until.isoformat()},
        "sources": sources,
        "fallback_reasons": {r.job.id: r.why for r in fallback},
        "caveats": _caveats(logs, api),
        "log_analytics": {
            "endpoint": endpoints.log_analytics,
            "endpoint_source": endpoints.log_analytics_source,
            "token_audience": endpoints.cloud.log_analytics_audience,
            "query_source": query.source,
            "query_sha256": query.sha256,
            "max_rows_per_query": request.settings.max_rows_per_query,
            "server_timeout_seconds": request.settings.server_timeout_seconds,
            "workspaces": {w.workspace: w.summary() for w in logs},
        },
        "executions_api": {
            "endpoint": endpoints.arm,
            "api_version": api_version,
            "jobs": {a.job.id: _api_summary(a) for a in api},
        },
        "throttling": {"waits": throttle.waits, "seconds": round(throttle.waited_seconds, 3)},
    }


def _from_log_analytics(credential: TokenCredential, endpoints: Endpoints, azure: AzureSettings,
                        request: HistoryRequest, query: Query,
                        workspaces: Mapping[str, list[HistoryJob]],
                        throttle: _StoppableThrottle) -> list[WorkspaceResult]:
    """Each workspace's result, in workspace order, read by up to LOG_ANALYTICS_READERS threads.

    Each thread has a client of its own: azure-core's requests transport is documented as not
    thread-safe, and the bearer-token policy drops and reads its token unlocked. Every thread
    has ended when this returns or raises; a reader's error stops the others and is raised
    (the first in workspace order) once they have stopped.
    """
    todo: queue.SimpleQueue[tuple[int, str, list[HistoryJob]]] = queue.SimpleQueue()
    for position, (workspace, jobs) in enumerate(sorted(workspaces.items())):
        todo.put((position, workspace, jobs))
    results: dict[int, WorkspaceResult] = {}
    errors: dict[int, BaseException] = {}

    def read(reader: LogAnalytics) -> None:
        """One reader: workspaces off the queue until none is left or one fails."""
        while True:
            try:
                position, workspace, jobs = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[position] = reader.read(workspace, jobs, query, request.since,
                                                request.until)
            except BaseException as e:  # raised below, once every reader has stopped
                errors[position] = e
                throttle.halt()
                return

    with ExitStack() as clients:
        threads = []
        for number in range(min(LOG_ANALYTICS_READERS, len(workspaces))):
            client = clients.enter_context(
                log_analytics.open_client(credential, endpoints, azure, throttle))
            reader = LogAnalytics(client, azure, request.settings, throttle)
            threads.append(threading.Thread(target=read, args=(reader,), daemon=True,
                                            name=f"auditor-history-logs-{number + 1}"))
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        except BaseException:  # interrupted here (Ctrl-C): the readers stop before this does
            throttle.halt()
            for thread in threads:
                if thread.is_alive():
                    thread.join()
            raise
    if errors:  # a reader's own error rather than the Stopped its halt caused the others
        raise errors[min(errors, key=lambda p: (isinstance(errors[p], Stopped), p))]
    return [results[position] for position in range(len(workspaces))]


def _from_executions_api(credential: TokenCredential, endpoints: Endpoints,
                         azure: AzureSettings, request: HistoryRequest, fallback: Sequence[Route],
                         throttle: Throttle) -> tuple[list[JobResult], str | None]:
    if not fallback:
        return [], None
    with ExecutionsApi(credential, endpoints, azure, throttle) as api:
        results = [api.read(r.job, request.since, request.until) for r in fallback]
        return results, api.api_version


def _sources(routes: Sequence[Route], logs: Sequence[WorkspaceResult],
             api: Sequence[JobResult]) -> dict[str, str]:
    """Which source each job's history came from; `none` when nothing of it could be read."""
    read_workspaces = {w.workspace.lower() for w in logs if w.windows}
    api_read = {a.job.id.lower() for a in api if a.error is None or a.rows}
    sources = {}
    for r in routes:
        if r.workspace:
            read = r.workspace.lower() in read_workspaces
            sources[r.job.id] = log_analytics.SOURCE if read else NO_SOURCE
        else:
            read = r.job.id.lower() in api_read
            sources[r.job.id] = executions_api.SOURCE if read else NO_SOURCE
    return sources


def _caveats(logs: Sequence[WorkspaceResult], api: Sequence[JobResult]) -> list[str]:
    caveats = []
    if logs:
        caveats.append(CAVEAT_LOGS)
    for w in logs:
        if w.unnamed_events:
            caveats.append(f"Log Analytics workspace {w.workspace}: {w.unnamed_events} system-log "
                           f"events of jobs in scope name no execution and are not counted as "
                           f"history.")
    if api:
        caveats.append(CAVEAT_API)
    return caveats


# --- what was read and what was not ------------------------------------------------------------

def _account_logs(results: Sequence[WorkspaceResult], request: HistoryRequest, query: Query,
                  coverage: Coverage, folder: Path) -> None:
    count = sum(len(w.ids) for w in results)
    write_row_texts(folder, LOG_ANALYTICS_FILE, count, log_analytics.merged_texts(results))
    for w in results:
        scope = f"Log Analytics workspace {w.workspace}"
        if w.windows:
            coverage.reads.append(Read(scope, LOG_ANALYTICS_SOURCE, len(w.ids)))
        for failure in w.failures:
            coverage.gaps.append(Gap(scope, LOG_ANALYTICS_SOURCE, (
                f"{failure.reason}; the execution history of {_jobs(w.jobs)} from "
                f"{failure.start.isoformat()} to {failure.end.isoformat()} was not read")))
        if w.unattributed:
            coverage.gaps.append(Gap(scope, LOG_ANALYTICS_SOURCE, (
                f"{len(w.unattributed)} executions ({', '.join(sorted(w.unattributed)[:5])}"
                f"{', ...' if len(w.unattributed) > 5 else ''}) could not be attributed to one "
                f"job: several jobs in scope have that name and the logs name no environment")))
    if results:
        coverage.queries.append({
            "name": LOG_ANALYTICS_FILE,
            "query": query.text,
            "query_source": query.source,
            "window": [request.since.isoformat(), request.until.isoformat()],
            "workspaces": len(results),
            "requests": sum(w.requests for w in results),
            "splits": sum(w.splits for w in results),
            "rows": count,
            "failed_workspaces": [w.workspace for w in results if w.failures],
        })


def _account_api(results: Sequence[JobResult], request: HistoryRequest,
                 api_version: str | None, coverage: Coverage, folder: Path) -> None:
    rows = sorted((row for a in results for row in a.rows), key=lambda r: str(r["id"]).lower())
    write_rows(folder, EXECUTIONS_API_FILE, rows)
    read = [a for a in results if a.error is None]
    if read:
        coverage.reads.append(Read(_jobs([a.job for a in read]), EXECUTIONS_API_SOURCE,
                                   sum(len(a.rows) for a in read)))
    for a in results:
        scope = f"job {a.job.id}"
        if a.error is not None:
            coverage.gaps.append(Gap(scope, EXECUTIONS_API_SOURCE,
                                     f"{a.error}; the job's execution history was not read"))
        elif a.truncated_before(request.since):
            assert a.oldest_start is not None
            coverage.gaps.append(Gap(scope, EXECUTIONS_API_SOURCE, (
                f"Azure keeps only a job's last {executions_api.KEPT_EXECUTIONS} executions and "
                f"the oldest of them started at {a.oldest_start.isoformat()}, after the window's "
                f"start {request.since.isoformat()}: earlier executions cannot be seen; send the "
                f"environment's logs to Log Analytics to audit the whole window")))
    if results:
        coverage.queries.append({
            "name": EXECUTIONS_API_FILE,
            "api_version": api_version,
            "window": [request.since.isoformat(), request.until.isoformat()],
            "jobs": len(results),
            "pages": sum(a.pages for a in results),
            "listed": sum(a.listed for a in results),
            "outside_window": sum(a.outside_window for a in results),
            "rows": len(rows),
            "failed_jobs": [a.job.id for a in results if a.error is not None],
        })


def _api_summary(result: JobResult) -> dict[str, Any]:
    return {
        "listed": result.listed,
        "kept": len(result.rows),
        "outside_window": result.outside_window,
        "pages": result.pages,
        "oldest_start": result.oldest_start.isoformat() if result.oldest_start else None,
        "error": result.error,
    }


def _jobs(jobs: Sequence[HistoryJob]) -> str:
    """Names every job when there are few; the full list is in collection.json."""
    if len(jobs) == 1:
        return f"job {jobs[0].id}"
    if len(jobs) <= 3:
        return "jobs " + ", ".join(j.id for j in jobs)
    return f"{len(jobs)} jobs"
