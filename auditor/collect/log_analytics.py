"""Execution history from Log Analytics: one KQL query per workspace, split when it is too big.

The query (`auditor/queries/executions.kql`, or the file `[history] query` names) aggregates the
environment's system logs into one row per execution; this module only runs it, checks the result
against the contract, merges the rows of a window it had to split, and turns the rows into
execution resources in the shape `az containerapp job execution list` prints.

The service caps a result (500,000 rows, ~100 MiB) and a query's run time (10 minutes at most).
A result cut short for size (a partial result naming a limit), one that reaches
`max_rows_per_query` rows, or a query that timed out (504) is asked for again as two halves of its
time range, within a bounded number of extra requests. Any other partial result, or a failed
request, is a failure for that window: its rows are not kept (the service warns a partial result
may be wrong) and the window is named in the coverage.

The query goes through the SDK's `LogsQueryClient` (its sign-in, audience, retry policy, timeouts
and transport), but as the client's own `send_request` with the request `query_workspace` sends,
and the JSON body is read here: the SDK builds a row object and deserialises every datetime cell
through its generic model code, many times the cost of everything else done with a row, for
results of up to 500,000 rows. Errors come out as `query_workspace` raises them
(`HttpResponseError`), and cells are read as the SDK converts them (datetime columns parsed,
timespan and guid columns as strings).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from heapq import heapify, heappop, heappush
from importlib.resources import files
from itertools import accumulate
from operator import itemgetter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.rest import HttpRequest, HttpResponse
from azure.monitor.query import LogsQueryClient, LogsQueryError

from auditor.collect.clouds import Endpoints
from auditor.collect.credentials import sign_in_failed
from auditor.collect.resource_graph import (
    DEADLINE_EXCEEDED,
    PacedRetryPolicy,
    ServiceError,
    Throttle,
)
from auditor.errors import InputError
from auditor.settings import AzureSettings, HistorySettings
from auditor.snapshot import ROW_SEPARATOR, encoded_row

log = logging.getLogger(__name__)

SOURCE = "log-analytics"
QUERY_PACKAGE = "auditor.queries"
QUERY_FILE = "executions.kql"
EXECUTION_TYPE = "Microsoft.App/jobs/executions"
# Extra requests one workspace may spend splitting its window: 2 per split, so a window can be
# cut into up to 33 pieces (30 days into pieces of under a day).
SPLIT_BUDGET = 64
# A window is not split below this: if one minute of logs is too big, halving will not help.
MIN_WINDOW = timedelta(minutes=1)
# The client waits this much longer than the server may take, so the server's answer arrives.
READ_TIMEOUT_MARGIN_SECONDS = 60

# Columns every result must have (the contract in executions.kql); the rest are optional.
REQUIRED_COLUMNS = ("JobName", "ExecutionName", "StartTime", "EndTime", "Status")
STATUS_RANK = {"Failed": 3, "Succeeded": 2, "Running": 1, "Unknown": 0}
TERMINAL = {"Failed", "Succeeded"}
# Distinct strings of one column (job names, statuses, `Reasons` lists...) remembered while one
# result is read.
REMEMBERED = 65536

# How the service says a result or a query went over its limits (in an error's code, message or
# details): the Kusto result-set limits, runaway or memory-bound queries, and response size.
_LIMIT_MARKERS = (
    "e_query_result_set_too_large", "80da0003", "record count limit", "data size limit",
    "e_runaway_query", "80da0001", "e_low_memory_condition", "responsepayloadtoolarge",
    "responsesizelimitexceeded", "resultsizelimitexceeded", "exceed the set limit",
)


# --- the query ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Query:
    """The KQL text and where it came from (for the record)."""

    text: str
    source: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def load_query(settings: HistorySettings) -> Query:
    """The configured query file, else the built-in one."""
    if not settings.query.strip():
        text = files(QUERY_PACKAGE).joinpath(QUERY_FILE).read_text(encoding="utf-8")
        return Query(text, f"built-in {QUERY_PACKAGE.replace('.', '/')}/{QUERY_FILE}")
    path = Path(settings.query)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise InputError("history.query", f"cannot read the query file {path} ({reason})",
                         "name a readable UTF-8 KQL file, or leave it empty for the built-in "
                         "query") from e
    if not text.strip():
        raise InputError("history.query", f"the query file {path} is empty",
                         "give a KQL query that keeps the result contract of executions.kql")
    return Query(text, str(path))


def with_parameters(query: Query, jobs: Iterable[str], environments: Iterable[str]) -> str:
    """The query text after the `let` statements that name the jobs and environments in scope."""
    return (f"let AuditorJobs = dynamic({_names(jobs)});\n"
            f"let AuditorEnvironments = dynamic({_names(environments)});\n"
            f"{query.text}")


def _names(names: Iterable[str]) -> str:
    # A JSON array of strings is a KQL dynamic literal; JSON escaping keeps any name a string.
    return json.dumps(sorted({n.lower() for n in names if n}), ensure_ascii=False)


# --- jobs and their rows -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class HistoryJob:
    """A job in scope, with what history collection needs to know about it."""

    id: str
    name: str
    subscription_id: str | None
    resource_group: str | None
    environment_name: str | None


@dataclass(slots=True)
class ExecutionRecord:
    """One execution as the query reported it, merged over the windows that saw it.

    `start_text` and `end_text` are start and end as the row writes them (`isoformat()`), when
    they were worked out as the cells were read; None has row() work them out.
    """

    job: str
    environment: str
    name: str
    start: datetime | None
    end: datetime | None
    status: str
    reason: str
    events: int
    reasons: list[str]
    start_text: str | None = None
    end_text: str | None = None

    def merge(self, other: ExecutionRecord) -> None:
        """The same execution seen in two windows: widen the span, keep the stronger status.

        Failed > Succeeded > Running > Unknown gives the status the query would have given the
        union of both windows' events. On a tie the span and status already held are kept.
        """
        if other.start is not None and (self.start is None or other.start < self.start):
            self.start, self.start_text = other.start, other.start_text
        if other.end is not None and (self.end is None or other.end > self.end):
            self.end, self.end_text = other.end, other.end_text
        if STATUS_RANK.get(other.status, 0) > STATUS_RANK.get(self.status, 0):
            self.status, self.reason = other.status, other.reason
        self.events += other.events
        self.reasons = sorted({*self.reasons, *other.reasons})

    def text(self, job: HistoryJob, workspace: str) -> bytes:
        """`row()` as the snapshot writes it (`encoded_row`), the same bytes, without the dicts:
        a large estate has hundreds of thousands of executions, and building, encoding and
        freeing their rows took more than twice as long. Each value is encoded by orjson as
        in the row; one it refuses (a lone surrogate) has the row encoded as before."""
        start = self.start_text or (self.start.isoformat() if self.start else None)
        end = self.end_text or (self.end.isoformat() if self.end else None)
        try:
            first, last = _dumps(start), _dumps(end)
            return _ROW_TEXT % (
                _dumps(f"{job.id}/executions/{self.name}"), _dumps(self.name),
                _dumps(job.resource_group), _dumps(self.status),
                first, last if self.status in TERMINAL else b"null", _dumps(self.reason or None),
                _dumps(workspace), first, last, _dumps(self.events), _dumps(self.reasons))
        except orjson.JSONEncodeError:
            return encoded_row(self.row(job, workspace))

    def row(self, job: HistoryJob, workspace: str) -> dict[str, Any]:
        """The execution as an ARM resource (`az containerapp job execution list` shape)."""
        start = self.start_text or (self.start.isoformat() if self.start else None)
        end = self.end_text or (self.end.isoformat() if self.end else None)
        return {
            "id": f"{job.id}/executions/{self.name}",
            "name": self.name,
            "type": EXECUTION_TYPE,
            "resourceGroup": job.resource_group,
            "properties": {
                "status": self.status,
                "startTime": start,
                "endTime": end if self.status in TERMINAL else None,
                "reason": self.reason or None,
            },
            "logAnalytics": {
                "workspace": workspace,
                "firstEvent": start,
                "lastEvent": end,
                "events": self.events,
                "reasons": self.reasons,
            },
        }


_dumps = orjson.dumps
# `row()`'s keys and constants, as orjson writes a dict: compact, in insertion order.
_ROW_TEXT = (b'{"id":%b,"name":%b,"type":' + _dumps(EXECUTION_TYPE) + b',"resourceGroup":%b,'
             b'"properties":{"status":%b,"startTime":%b,"endTime":%b,"reason":%b},'
             b'"logAnalytics":{"workspace":%b,"firstEvent":%b,"lastEvent":%b,"events":%b,'
             b'"reasons":%b}}')


# --- errors ------------------------------------------------------------------------------------

class LogsError(ServiceError):
    """A window that could not be read; `over_limits` when a smaller window may succeed."""

    def __init__(self, status: int | None, code: str, message: str, *,
                 over_limits: bool = False) -> None:
        self.over_limits = over_limits
        super().__init__(status, code, message)


def _from_http_error(error: HttpResponseError, auth: str) -> LogsError:
    status = error.status_code
    if status == 401:
        return LogsError(401, "InvalidAuthenticationToken", str(sign_in_failed(auth, error)))
    detail = error.error
    code = str(getattr(detail, "code", None) or error.reason or type(error).__name__)
    message = _first_line(str(getattr(detail, "message", None) or error.message or error))
    if status == 403:
        message += "; grant the scanning identity Log Analytics Reader on this workspace"
    timed_out = status == 504
    codes, messages = _error_parts(detail)
    if timed_out:
        message += " (the query ran longer than the server timeout)"
    return LogsError(status, code, message,
                     over_limits=timed_out or _names_a_limit([*codes, *messages]))


def _no_response(error: AzureError) -> LogsError:
    message = _first_line(str(error))
    if "CERTIFICATE_VERIFY_FAILED" in message:
        message += ("; the endpoint's certificate is not trusted: for a TLS-inspecting proxy or "
                    "a private endpoint, set REQUESTS_CA_BUNDLE to its CA file")
    return LogsError(None, type(error).__name__, message)


def _partial(error: Any, rows: int) -> LogsError:
    """A partial result: the service stopped part way; say why, with the innermost message."""
    codes, messages = _error_parts(error)
    code = str(getattr(error, "code", None) or "PartialError")
    message = _first_line(messages[-1]) if messages else "the service returned a partial result"
    return LogsError(200, code, f"{message.rstrip('.')} ({rows} partial rows were not kept)",
                     over_limits=_names_a_limit([*codes, *messages]))


def _error_parts(error: Any) -> tuple[list[str], list[str]]:
    """Every code and every message in an error, its inner errors and details, outermost first."""
    codes: list[str] = []
    messages: list[str] = []

    def walk(item: Any, depth: int) -> None:
        if item is None or depth > 8:
            return
        if isinstance(item, Mapping):
            code, message = item.get("code"), item.get("message")
            inner, details = item.get("innererror"), item.get("details")
        else:
            code, message = getattr(item, "code", None), getattr(item, "message", None)
            inner, details = getattr(item, "innererror", None), getattr(item, "details", None)
        if isinstance(code, str) and code:
            codes.append(code)
        if isinstance(message, str) and message:
            messages.append(message)
        walk(inner, depth + 1)
        for detail in details if isinstance(details, list) else []:
            walk(detail, depth + 1)

    walk(error, 0)
    return codes, messages


def _names_a_limit(parts: Sequence[str]) -> bool:
    text = " ".join(parts).lower()
    return any(marker in text for marker in _LIMIT_MARKERS)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else text
    return first if len(first) <= 500 else first[:497] + "..."


# --- the client --------------------------------------------------------------------------------

class LogsRetryPolicy(PacedRetryPolicy):
    """azure-core's retries, paced by the Throttle, but never for 504: a query that timed out
    would time out again; the window is split instead."""

    def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
        if response.http_response.status_code == 504:
            return False
        return bool(super().is_retry(settings, response))


def open_client(credential: TokenCredential, endpoints: Endpoints, settings: AzureSettings,
                throttle: Throttle) -> LogsQueryClient:
    """The SDK client at the chosen endpoint, asking tokens for the cloud's Log Analytics
    audience (not the endpoint's address)."""
    return LogsQueryClient(
        credential,
        endpoint=endpoints.log_analytics,
        audience=endpoints.cloud.log_analytics_audience,
        retry_policy=LogsRetryPolicy(throttle, settings.max_retries,
                                     settings.max_retry_wait_seconds),
        connection_timeout=settings.connect_timeout_seconds,
    )


# What `LogsQueryClient.query_workspace` (azure-monitor-query 2.x) does around its HTTP call, kept
# here so the call can go through the client's `send_request` and the body be read without the
# SDK's row models. The request is the one query_workspace sends, byte for byte (a test holds it).

def _query_request(workspace: str, text: str, start: datetime, end: datetime,
                   server_timeout: int) -> HttpRequest:
    """`POST /workspaces/{id}/query` with the query, `start/end` and `Prefer: wait=<seconds>`."""
    body = {"query": text, "timespan": f"{_sdk_iso(start)}/{_sdk_iso(end)}", "workspaces": None}
    return HttpRequest(
        "POST", f"/workspaces/{quote(str(workspace), safe='')}/query",
        headers={"Prefer": f"wait={server_timeout}" if server_timeout else "",
                 "content-type": "application/json", "Accept": "application/json"},
        content=json.dumps(body))


def _sdk_iso(value: datetime) -> str:
    """An instant as the SDK writes a timespan's ends: UTC, at least milliseconds, `Z`."""
    utc = value.utctimetuple()
    fraction = str(value.microsecond).rjust(6, "0").rstrip("0").ljust(3, "0")
    return (f"{utc.tm_year:04}-{utc.tm_mon:02}-{utc.tm_mday:02}T{utc.tm_hour:02}:"
            f"{utc.tm_min:02}:{utc.tm_sec:02}.{fraction}Z")


def _http_error(response: HttpResponse) -> HttpResponseError:
    """A non-200 answer as query_workspace raises it: an HttpResponseError over the response
    (status, reason, the ODataV4 `error`, the message, the headers), its model the service's
    error as the SDK's LogsQueryError."""
    try:
        body = response.json()
    except ValueError:  # not JSON (a proxy's page): the status and reason say it all
        body = None
    error = body.get("error") if isinstance(body, Mapping) else None
    return HttpResponseError(response=response, model=_query_error(error))


def _reraised(error: HttpResponseError) -> HttpResponseError:
    """An HttpResponseError from the pipeline (an undecodable body, a refused sign-in) as
    query_workspace re-raises it: a plain HttpResponseError with its message and response."""
    return HttpResponseError(message=error.message, response=error.response)


def _query_error(error: Any) -> LogsQueryError | None:
    """The SDK's LogsQueryError for an `error` member: its code and details, and the message of
    its innermost `innererror`."""
    if not isinstance(error, Mapping) or not error:
        return None
    inner: Mapping[str, Any] = error
    while isinstance(inner.get("innererror"), Mapping) and inner["innererror"]:
        inner = inner["innererror"]
    return LogsQueryError(code=error.get("code"), message=inner.get("message"),
                          details=error.get("details"))


# --- one workspace -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class WindowFailure:
    start: datetime
    end: datetime
    reason: str

    def describe(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}: {self.reason}"


@dataclass(slots=True)
class WorkspaceResult:
    """What one workspace answered over the whole window, and what it could not answer."""

    workspace: str
    jobs: list[HistoryJob]
    records: dict[tuple[str, str, str], ExecutionRecord] = field(default_factory=dict)
    # The executions as snapshot rows, in id order: their texts joined by ROW_SEPARATOR (one
    # buffer per workspace, freed whole), where each starts in it, and their ids lower-cased
    # (the order of the snapshot file, which merges every workspace's: `merged_texts`).
    texts: bytes = b""
    starts: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    windows: list[tuple[datetime, datetime]] = field(default_factory=list)
    failures: list[WindowFailure] = field(default_factory=list)
    requests: int = 0
    splits: int = 0
    result_rows: int = 0
    merged: int = 0
    unnamed_events: int = 0
    unattributed: list[str] = field(default_factory=list)
    out_of_scope: int = 0

    def add(self, record: ExecutionRecord) -> None:
        self.result_rows += 1
        if not record.name:  # the query's count of a job's events that name no execution
            self.unnamed_events += record.events
            return
        key = (record.job, record.environment, record.name)
        if key in self.records:
            self.records[key].merge(record)
            self.merged += 1
        else:
            self.records[key] = record

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The executions as snapshot rows, decoded."""
        return [orjson.loads(self.span(i, i + 1)) for i in range(len(self.ids))]

    def span(self, first: int, end: int) -> memoryview:
        """The text of rows `first` to `end` (excluded), joined by ROW_SEPARATOR."""
        stop = self.starts[end] - len(ROW_SEPARATOR) if end < len(self.starts) else None
        return memoryview(self.texts)[self.starts[first]:stop]

    def summary(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "jobs": sorted(j.id for j in self.jobs),
            "requests": self.requests,
            "splits": self.splits,
            "windows_read": [[s.isoformat(), e.isoformat()] for s, e in sorted(self.windows)],
            "result_rows": self.result_rows,
            "executions": len(self.ids),
            "merged_across_windows": self.merged,
            "events_naming_no_execution": self.unnamed_events,
            "unattributed_executions": sorted(self.unattributed),
            "rows_outside_scope": self.out_of_scope,
            "failed_windows": [f.describe() for f in self.failures],
        }


class LogAnalytics:
    """Runs the executions query through one client; translates every SDK error where the call
    is made. Used by one thread at a time (its client is not made for two); the Throttle may be
    shared."""

    def __init__(self, client: LogsQueryClient, azure: AzureSettings, history: HistorySettings,
                 throttle: Throttle, *, split_budget: int = SPLIT_BUDGET,
                 min_window: timedelta = MIN_WINDOW) -> None:
        self._client, self._throttle = client, throttle
        self._auth = azure.auth
        self._max_retries = azure.max_retries
        self._max_rows = history.max_rows_per_query
        self._timeout = history.server_timeout_seconds
        self._split_budget = split_budget
        self._min_window = min_window

    def read(self, workspace: str, jobs: Sequence[HistoryJob], query: Query, since: datetime,
             until: datetime) -> WorkspaceResult:
        """The executions of `jobs` in [since, until), halving windows that are too big."""
        result = WorkspaceResult(workspace, list(jobs))
        text = with_parameters(query, (j.name for j in jobs),
                               (j.environment_name or "" for j in jobs))
        pending = [(since, until)]
        budget = self._split_budget
        while pending:
            start, end = pending.pop()
            try:
                records = self._window(workspace, text, start, end, result)
            except LogsError as e:
                if e.over_limits and end - start >= 2 * self._min_window and budget >= 2:
                    budget -= 2
                    result.splits += 1
                    middle = start + (end - start) / 2
                    log.info("workspace %s: %s; splitting %s..%s", workspace, e.reason,
                             start, end)
                    pending += [(middle, end), (start, middle)]
                    continue
                result.failures.append(WindowFailure(start, end, self._failure_reason(e, budget)))
                continue
            result.windows.append((start, end))
            for record in records:
                result.add(record)
        _encode(result)
        result.records.clear()  # merged into the rows: free them before the next workspace
        log.debug("workspace %s: %d requests, %d splits, %d executions, %d failed windows",
                  workspace, result.requests, result.splits, len(result.ids),
                  len(result.failures))
        return result

    def _failure_reason(self, error: LogsError, budget: int) -> str:
        if error.over_limits and budget < 2:
            return (f"{error.reason}; the window was already split {self._split_budget // 2} "
                    f"times, the most allowed")
        if error.over_limits:
            return f"{error.reason}; the window is too short to split further"
        return error.reason

    def _window(self, workspace: str, text: str, start: datetime, end: datetime,
                result: WorkspaceResult) -> list[ExecutionRecord]:
        """One window, retried here when the service throttles without saying how long."""
        attempt = 0
        reauthenticated = False
        while True:
            self._throttle.wait_turn()
            deadline = self._throttle.deadline
            if deadline is not None and self._throttle.expired():
                raise LogsError(None, DEADLINE_EXCEEDED, deadline.message())
            result.requests += 1
            read_timeout = min(self._timeout + READ_TIMEOUT_MARGIN_SECONDS,
                               self._throttle.remaining())
            try:
                body = self._query(workspace, text, start, end, max(read_timeout, 0.001))
            except HttpResponseError as e:
                if e.status_code == 401 and not reauthenticated:
                    reauthenticated = True  # azure-core dropped the refused token: ask afresh
                    continue
                if e.status_code == 429 and not _retry_after(e) and attempt < self._max_retries:
                    self._throttle.back_off(attempt)
                    attempt += 1
                    continue
                raise _from_http_error(e, self._auth) from e
            except (ServiceRequestError, ServiceResponseError) as e:
                # No reply (reset, timeout) to a read-only query: asking again is safe. A read
                # timeout is not retried: the query would run as long again.
                if (_worth_retrying(e) and attempt < self._max_retries
                        and "timeout" not in type(e).__name__.lower()):
                    self._throttle.back_off(attempt)
                    attempt += 1
                    continue
                raise _no_response(e) from e
            except AzureError as e:  # anything else without a usable response
                raise _no_response(e) from e
            if not isinstance(body, Mapping):
                raise LogsError(200, "UnexpectedResult", "the response holds no result table")
            tables = body.get("tables")
            if not isinstance(tables, list):
                tables = []
            if body.get("error"):  # a partial result: rows beside an error
                raise _partial(_query_error(body["error"]),
                               sum(len(t.get("rows") or []) for t in tables
                                   if isinstance(t, Mapping)))
            table = _result_table(tables)
            if len(table.rows) >= self._max_rows:
                raise LogsError(200, "RowLimit",
                                f"the result holds {len(table.rows)} rows, the most one query "
                                f"may return ([history] max_rows_per_query), so rows may be "
                                f"missing", over_limits=True)
            return _records(table)

    def _query(self, workspace: str, text: str, start: datetime, end: datetime,
               read_timeout: float) -> Any:
        """The query as `query_workspace` sends it, through the client's pipeline; the parsed
        JSON body of its 200, or the HttpResponseError query_workspace would raise."""
        request = _query_request(workspace, text, start, end, self._timeout)
        try:
            response = self._client.send_request(request, read_timeout=read_timeout)
        except HttpResponseError as e:
            raise _reraised(e) from e
        if response.status_code != 200:
            raise _http_error(response)
        try:
            return _json(response)
        except ValueError as e:  # a 200 that is not JSON (not declared as JSON either)
            raise LogsError(200, "UnexpectedResult", "the response body is not JSON") from e


def _encode(result: WorkspaceResult) -> None:
    """Each merged execution as a resource of the job it belongs to, in id order, into
    `result.texts`, `starts` and `ids`.

    Records that are one execution of one job (logged under two environment names, e.g.
    both table families, or with names that differ in case) are merged in the order of
    their logged keys, so the result does not depend on the order the windows or rows came
    back in; only those few are sorted, not every record.
    """
    owners = _Owners(result.jobs)
    owned: dict[str, tuple[tuple[str, str, str], HistoryJob, ExecutionRecord]] = {}
    clashes: dict[str, list[tuple[tuple[str, str, str], ExecutionRecord]]] = {}
    unattributed: list[tuple[str, str, str]] = []
    candidates_of = owners.of
    for logged, record in result.records.items():
        candidates = candidates_of(logged[0], logged[1])
        if len(candidates) != 1:
            if candidates:
                unattributed.append(logged)
            else:  # a replacement query that does not filter to the scope
                result.out_of_scope += 1
            continue
        job = candidates[0]
        key = f"{job.id}/{logged[2]}".lower()
        if key in owned:
            clashes.setdefault(key, []).append((logged, record))
        else:
            owned[key] = (logged, job, record)
    for key, more in clashes.items():
        first, job, record = owned[key]
        (first, record), *rest = sorted([(first, record), *more], key=itemgetter(0))
        for _logged, other in rest:
            record.merge(other)
            result.merged += 1
        owned[key] = (first, job, record)
    result.unattributed += [f"{name}/{execution}"
                            for name, _, execution in sorted(unattributed)]
    entries = list(owned.values())
    ids = [f"{job.id}/executions/{record.name}".lower() for _, job, record in entries]
    order = sorted(range(len(ids)), key=ids.__getitem__)
    if len(set(ids)) < len(ids):  # one id for two executions (names with "/" in them):
        order.sort(key=lambda i: (ids[i], entries[i][0]))  # in their logged keys' order
    workspace = result.workspace
    texts = [entries[i][2].text(entries[i][1], workspace) for i in order]
    result.ids = [ids[i] for i in order]
    apart = len(ROW_SEPARATOR)
    result.starts = list(accumulate(map(len, texts), lambda at, size: at + size + apart,
                                    initial=0))[:-1]
    result.texts = ROW_SEPARATOR.join(texts)


def merged_texts(results: Sequence[WorkspaceResult]) -> Iterator[memoryview]:
    """Every workspace's rows in id order, as `sorted` orders them all by id (a tie in
    workspace order): a run of one workspace's rows at a time (each workspace's are in id
    order already, and the workspaces of a large estate hold runs of subscriptions)."""
    heads = [(r.ids[0], n, 0) for n, r in enumerate(results) if r.ids]  # (id, workspace, row)
    heapify(heads)
    while heads:
        _, n, first = heappop(heads)
        ids = results[n].ids
        end = len(ids)
        if heads:  # up to the next workspace's row: after it when that workspace comes first
            bound, other, _ = heads[0]
            end = (bisect_right if n < other else bisect_left)(ids, bound, first)
        yield results[n].span(first, end)
        if end < len(ids):
            heappush(heads, (ids[end], n, end))


class _Owners:
    """The jobs in scope a row may belong to: those of its name, narrowed by the logged
    environment name when that is one of theirs (logs may name environments otherwise).

    Indexed once per workspace: one holds thousands of jobs and far more executions, and a scan
    of every job per execution row took minutes.
    """

    def __init__(self, jobs: Sequence[HistoryJob]) -> None:
        self._named: dict[str, list[HistoryJob]] = {}
        for job in jobs:
            self._named.setdefault(job.name.lower(), []).append(job)
        self._known = {(j.environment_name or "").lower() for j in jobs}
        self._asked: dict[tuple[str, str], tuple[HistoryJob, ...]] = {}

    def of(self, name: str, environment: str) -> tuple[HistoryJob, ...]:
        """The candidates, worked out once per job name and environment (a job has many
        executions)."""
        key = (name, environment)
        found = self._asked.get(key)
        if found is None:
            named = self._named.get(name, [])
            if environment and environment in self._known:
                named = [j for j in named if (j.environment_name or "").lower() == environment]
            found = self._asked[key] = tuple(named)
        return found


def _json(response: HttpResponse) -> Any:
    """The body as `response.json()` reads it. A UTF-8 body (the service's) is parsed by orjson,
    a third faster on results of up to 500,000 rows; what orjson refuses (another charset, NaN,
    integers beyond 64 bits, lone surrogates) is left to `response.json()`."""
    charset = response.headers.get("content-type", "").lower().partition("charset=")[2]
    if charset.strip(' "') in ("", "utf-8", "utf8"):
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            pass
    return response.json()


def _worth_retrying(error: AzureError) -> bool:
    return "CERTIFICATE_VERIFY_FAILED" not in str(error)


def _retry_after(error: HttpResponseError) -> str | None:
    headers = getattr(error.response, "headers", None)
    return headers.get("Retry-After") if headers is not None else None


# --- the result contract -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Table:
    """The result table as the REST API sends it: column names and types, rows of cells."""

    columns: list[Any]
    types: list[Any]
    rows: list[Any]


def _result_table(tables: list[Any]) -> _Table:
    """The first table, with every column the contract in executions.kql requires."""
    table = tables[0] if tables else None
    if not isinstance(table, Mapping):
        raise LogsError(200, "UnexpectedResult", "the response holds no result table")
    described = [c if isinstance(c, Mapping) else {} for c in table.get("columns") or []]
    columns = [c.get("name") for c in described]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise LogsError(200, "UnexpectedResult",
                        f"the query's result has no column {', '.join(missing)}; a replacement "
                        f"query ([history] query) must keep the result contract of {QUERY_FILE}")
    rows = table.get("rows")
    if not isinstance(rows, list):
        raise LogsError(200, "UnexpectedResult", "the result table holds no rows")
    return _Table(columns, [c.get("type") for c in described], rows)


def _records(table: _Table) -> list[ExecutionRecord]:
    """The table's rows as records. Each contract column is read once per row by a reader
    chosen for its type here, once per table; a missing optional column reads as empty. The
    texts that recur on every row (job and environment names, statuses, reasons) are read once
    each."""
    index = {name: i for i, name in enumerate(table.columns)}  # a repeated name: its last
    width = len(table.columns)

    def reader(column: str, read: Callable[[Any], Any]) -> tuple[int, Callable[[Any], Any]]:
        return index[column], _typed(read, table.types[index[column]])

    def optional(column: str,
                 read: Callable[[Any], Any]) -> tuple[int | None, Callable[[Any], Any]]:
        return reader(column, read) if column in index else (None, read)

    job_at, job = reader("JobName", _text)
    name_at, name = reader("ExecutionName", _text)
    start_at, start = reader("StartTime", _time)
    end_at, end = reader("EndTime", _time)
    status_at, status = reader("Status", _text)
    environment_at, environment = optional("EnvironmentName", _text)
    reason_at, reason = optional("Reason", _text)
    events_at, events = optional("Events", _count)
    reasons_at, reasons = optional("Reasons", _reasons)
    job_name = _remembered(lambda value: job(value).lower())
    environment_name = _remembered(lambda value: environment(value).lower())
    status, reason, reasons = _remembered(status), _remembered(reason), _remembered(reasons)

    records: list[ExecutionRecord] = []
    append = records.append
    for row in table.rows:
        if row.__class__ is not list or len(row) != width:
            raise LogsError(200, "UnexpectedResult",
                            f"a row of the result does not hold the {width} columns it names")
        state = status(row[status_at])
        start_cell, end_cell = row[start_at], row[end_at]
        started, ended = start(start_cell), end(end_cell)
        append(ExecutionRecord(
            job_name(row[job_at]),
            environment_name(row[environment_at]) if environment_at is not None else "",
            name(row[name_at]),
            started,
            ended,
            state if state in STATUS_RANK else "Unknown",
            reason(row[reason_at]) if reason_at is not None else "",
            events(row[events_at]) if events_at is not None else 0,
            reasons(row[reasons_at]).copy() if reasons_at is not None else [],  # its own
            _iso_text(start_cell, started),
            _iso_text(end_cell, ended),
        ))
    return records


def _remembered(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`read`, remembering its answer for each string cell (up to REMEMBERED of them)."""
    seen: dict[str, Any] = {}

    def remembered(value: Any) -> Any:
        if value.__class__ is not str:
            return read(value)
        known = seen.get(value)
        if known is None:
            known = read(value)
            if len(seen) < REMEMBERED:
                seen[value] = known
        return known

    return remembered


def _iso_text(cell: Any, instant: datetime | None) -> str | None:
    """`instant.isoformat()`, for the instant a time cell was read as.

    A cell in the service's own form (`2025-05-10T02:00:01Z`, `2025-05-10T02:00:01.1234567Z`)
    was read field for field, so its text is cut from the cell: isoformat() costs several times
    more, twice a row. (Hour 24, which a later Python may read as the next day, is left to
    isoformat.) Any other cell's text is isoformat()'s.
    """
    if instant is None:
        return None
    if cell.__class__ is str and cell[11:13] != "24":
        separators = cell[4:20:3]  # - - T : : and Z, or the fraction's dot
        if separators == "--T::Z" and len(cell) == 20:
            return cell[:19] + "+00:00"
        if separators == "--T::." and cell[-1] == "Z":
            fraction = cell[20:-1][:6].ljust(6, "0")  # fromisoformat truncates to microseconds
            return cell[:19] + ("+00:00" if fraction == "000000" else f".{fraction}+00:00")
    return instant.isoformat()


def _typed(read: Callable[[Any], Any], kind: Any) -> Callable[[Any], Any]:
    """`read` of a cell as the SDK would have handed it over: a datetime column's cells parsed,
    a timespan's or guid's as strings, any other as the JSON has it."""
    if kind == "datetime":
        if read is _time:
            return _datetime_cell
        return lambda value: read(_sdk_datetime(value))
    if kind in ("timespan", "guid"):
        return lambda value: read(str(value))
    return read


# The SDK parses a datetime cell only when it starts like this (after upper-casing); any other
# cell is handed over as it came.
_SDK_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def _datetime_cell(value: Any) -> datetime | None:
    """A datetime column's cell (`2025-05-10T02:00:01.1234567Z`), as `_time` read what the SDK
    made of it. Where fromisoformat reads the text it gives the SDK's instant (a fraction
    truncated to microseconds, as the SDK truncates it) or, where the SDK gives up, the one
    `_time` then read from the text; where it does not, the SDK's own rule decides."""
    if value.__class__ is str:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = _sdk_datetime(value)
        if parsed.__class__ is datetime:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return _time(value)


def _sdk_datetime(value: Any) -> Any:
    """A datetime cell as the SDK hands it over: parsed when it starts as an ISO 8601 instant
    (in any case), else unchanged."""
    if isinstance(value, str):
        upper = value.upper()
        if _SDK_DATETIME.match(upper):
            try:
                return datetime.fromisoformat(upper)
            except ValueError:
                pass
    return value


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def _time(value: Any) -> datetime | None:
    """Datetime columns arrive as datetime; a string (a replacement query's) is parsed."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _count(value: Any) -> int:
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def _reasons(value: Any) -> list[str]:
    """A dynamic column arrives as a JSON string (`["Completed", ...]`); a list is taken as is."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError:
            return [value]
    if isinstance(value, list):
        return sorted({str(v) for v in value if v not in (None, "")})
    return []
