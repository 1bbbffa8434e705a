"""A loopback HTTPS stand-in for Azure, for tests: the real SDKs talk to it over real TLS.

It speaks Azure's REST contracts, not our code's: the Resource Graph query API (the response
shapes of the spec examples: `totalRecords`, `count`, `resultTruncated` as a string,
`$skipToken`, `data`, `facets`, and the user-quota headers) over an in-memory estate a test fills.
Faults are scripted per test: short pages, 429 with or without Retry-After, 403 for requests that
include a given subscription, truncated results. Every request is recorded, so tests can assert
what was sent.

Services are routes on a small router, so other Azure APIs (Log Analytics, the Container Apps
executions list) can be added beside Resource Graph.

Sign-in: `FakeAz` is an `az` executable put first on PATH; `--auth cli` gets the server's token
from it, and it logs how it was called (which audience the token was asked for).
"""

from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import json
import os
import re
import secrets
import select
import shutil
import socket
import ssl
import stat
import struct
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import trustme

# --- TLS ---------------------------------------------------------------------------------------


@functools.cache
def _tls() -> tuple[trustme.CA, trustme.LeafCert, Path]:
    """One CA and server certificate per test session (key generation is the slow part)."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = Path(tempfile.mkdtemp(prefix="auditor-test-ca-"))
    atexit.register(shutil.rmtree, folder, True)
    bundle = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return ca, cert, bundle


def ca_bundle() -> Path:
    """The PEM file that makes the server's certificate trusted (for REQUESTS_CA_BUNDLE)."""
    return _tls()[2]


# --- requests, replies, routing ----------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def arm_error(status: int, code: str, message: str, **headers: str) -> Reply:
    """Azure Resource Manager's error body shape."""
    return Reply(status, {"error": {"code": code, "message": message}}, dict(headers))


Handler = Callable[[Recorded], Reply]


class Router:
    """Method + path regex → handler; the first full match wins."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(pattern, re.IGNORECASE), handler))

    def dispatch(self, request: Recorded) -> Reply:
        for method, pattern, handler in self._routes:
            if method == request.method and pattern.fullmatch(request.path):
                return handler(request)
        return arm_error(404, "NoRoute", f"the test server has no route for "
                                         f"{request.method} {request.path}")


# --- the server --------------------------------------------------------------------------------


# Paths Azure serves without sign-in.
PUBLIC_PREFIXES = ("/api/retail/prices",)


class AzureServer:
    """The stand-in: HTTPS on 127.0.0.1 at a free port, bearer-token checked, every call logged."""

    def __init__(self) -> None:
        self.token = "fake-arm-token-" + secrets.token_hex(16)
        self.requests: list[Recorded] = []
        self.router = Router()
        self.resource_graph = ResourceGraph()
        self.router.add("POST", r"/providers/Microsoft\.ResourceGraph/resources",
                        self.resource_graph.handle)
        self.log_analytics = LogAnalytics()
        self.router.add("POST", r"/v1/workspaces/[^/]+/query", self.log_analytics.handle)
        self.executions = JobExecutions()
        self.router.add("GET", r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
                               r"Microsoft\.App/jobs/[^/]+/executions", self.executions.handle)
        self._lock = threading.Lock()
        self._http: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.az: FakeAz | None = None
        self.faults = FaultScript()  # scripted misbehaviour below the APIs (see FaultScript)

    @property
    def url(self) -> str:
        assert self._http is not None, "server not started"
        return f"https://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> None:
        _, cert, _ = _tls()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        http = ThreadingHTTPServer(("127.0.0.1", 0), _RequestHandler)
        http.daemon_threads = True
        http.socket = context.wrap_socket(http.socket, server_side=True)
        http.azure = self  # type: ignore[attr-defined]
        self._http = http
        self._thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="azure-stand-in", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.faults.stopping.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def handle(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            public = request.path.startswith(PUBLIC_PREFIXES)  # e.g. the Retail Prices API
            if not public and request.headers.get("authorization") != f"Bearer {self.token}":
                return arm_error(401, "InvalidAuthenticationToken",
                                 "The access token is missing or invalid.", **ARM_CHALLENGE)
            return self.router.dispatch(request)

    def graph_bodies(self) -> list[dict[str, Any]]:
        """The bodies of every Resource Graph query, in the order they arrived."""
        return [r.body for r in self.requests
                if r.path.lower() == "/providers/microsoft.resourcegraph/resources"]


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        parts = urlsplit(self.path)
        request = Recorded(self.command, parts.path, dict(parse_qsl(parts.query)),
                           {k.lower(): v for k, v in self.headers.items()}, body)
        reply = _answer(self, request)
        if reply is None:  # a scripted connection reset: no response at all
            return
        payload = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up waiting (a scripted slow reply): nothing to do
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        return None


# --- Resource Graph ----------------------------------------------------------------------------


class QueryNotUnderstood(ValueError):
    pass


@dataclass(frozen=True)
class ParsedQuery:
    """The small KQL subset the stand-in serves: a table, `where a.b =~ 'x'`, order, project."""

    table: str
    filters: tuple[tuple[str, str], ...]
    order: tuple[str, bool] | None  # column, descending
    project: tuple[str, ...] | None
    # `extend c = todatetime(a.b)` and `where c > ago(Nd)`, as the resourcechanges query uses them
    extends: tuple[tuple[str, str], ...] = ()  # column, path
    newer_than: tuple[tuple[str, int], ...] = ()  # column, days

    @property
    def type_filter(self) -> str | None:
        return next((v.lower() for k, v in self.filters if k.lower() == "type"), None)


_TABLE = re.compile(r"^[A-Za-z_]\w*$")
_CONDITION = re.compile(r"^([A-Za-z_][\w.]*)\s*=~\s*'([^']*)'$")
_ORDER = re.compile(r"^(?:order|sort)\s+by\s+([A-Za-z_]\w*)(?:\s+(asc|desc))?$", re.IGNORECASE)
_PROJECT = re.compile(r"^project\s+(.+)$", re.IGNORECASE)
_WHERE = re.compile(r"^where\s+(.+)$", re.IGNORECASE)
_EXTEND = re.compile(r"^extend\s+([A-Za-z_]\w*)\s*=\s*todatetime\(([A-Za-z_][\w.]*)\)$",
                     re.IGNORECASE)
_AGO = re.compile(r"^([A-Za-z_][\w.]*)\s*>\s*ago\((\d+)d\)$")


def parse_query(text: str) -> ParsedQuery:
    """Anything outside the subset is refused (400), so a test never passes by accident."""
    segments = [s.strip() for s in text.split("|")]
    if not _TABLE.match(segments[0]):
        raise QueryNotUnderstood(f"expected a table name, got {segments[0]!r}")
    filters: list[tuple[str, str]] = []
    order: tuple[str, bool] | None = None
    project: tuple[str, ...] | None = None
    extends: list[tuple[str, str]] = []
    newer_than: list[tuple[str, int]] = []
    for segment in segments[1:]:
        if where := _WHERE.match(segment):
            for condition in re.split(r"\s+and\s+", where.group(1), flags=re.IGNORECASE):
                match = _CONDITION.match(condition.strip())
                if recent := _AGO.match(condition.strip()):
                    newer_than.append((recent.group(1), int(recent.group(2))))
                    continue
                if not match:
                    raise QueryNotUnderstood(f"unsupported condition {condition!r}")
                filters.append((match.group(1), match.group(2)))
        elif by := _ORDER.match(segment):
            order = (by.group(1), (by.group(2) or "asc").lower() == "desc")
        elif extend := _EXTEND.match(segment):
            extends.append((extend.group(1), extend.group(2)))
        elif columns := _PROJECT.match(segment):
            project = tuple(c.strip() for c in columns.group(1).split(","))
        else:
            raise QueryNotUnderstood(f"unsupported operator {segment!r}")
    return ParsedQuery(segments[0].lower(), tuple(filters), order, project, tuple(extends),
                       tuple(newer_than))


def _path_value(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = next((v for k, v in value.items() if k.lower() == part.lower()), None)
    return value


class SlidingWindowQuota:
    """A per-user request quota as a sliding window: at most `limit` requests in any `window`
    seconds (Resource Graph: 15 per 5 s; Log Analytics: 200 per 30 s).

    `take()` admits or refuses one request and returns what a reply reports: the requests left
    in the window and the seconds until the quota next grows (the oldest admitted request leaves
    the window). Refused requests do not count against the quota.
    """

    def __init__(self, limit: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._admitted: deque[float] = deque()
        self.admitted = 0
        self.refused = 0

    def take(self) -> tuple[bool, int, float]:
        now = self._clock()
        while self._admitted and self._admitted[0] <= now - self.window:
            self._admitted.popleft()
        admitted = len(self._admitted) < self.limit
        if admitted:
            self._admitted.append(now)
            self.admitted += 1
        else:
            self.refused += 1
        resets = self._admitted[0] + self.window - now if self._admitted else 0.0
        return admitted, self.limit - len(self._admitted), max(resets, 0.0)


def timespan(seconds: float) -> str:
    """Seconds as a .NET TimeSpan (`hh:mm:ss`, with 7-digit fractions when there are any)."""
    whole, ticks = divmod(round(seconds * 10**7), 10**7)
    hours, rest = divmod(whole, 3600)
    text = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{text}.{ticks:07d}" if ticks else text


class ResourceGraph:
    """The Resource Graph query API over an in-memory estate, with scriptable faults."""

    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.management_groups: dict[str, list[str]] = {}
        # Faults and knobs a test sets:
        self.max_page_rows: int | None = None  # pages shorter than $top, token still returned
        self.throttles: list[tuple[str | None, dict[str, str]]] = []  # see `throttle`
        self.denied_subscriptions: set[str] = set()
        self.denied_management_groups: set[str] = set()
        self.truncate_types: set[str] = set()  # resultTruncated "true", no skip token
        self.quota_remaining: list[int] = []  # x-ms-user-quota-remaining, one per reply
        self.quota_resets_after = "00:00:05"
        # Azure's real quota, enforced (429 when exceeded) and reported on every reply; None
        # keeps the scripted `quota_remaining` values above.
        self.quota: SlidingWindowQuota | None = None
        self._quota_state: dict[str, str] = {}
        # Remember each query's selected rows across its pages (set when the estate is final).
        self.cache_selections = False
        self._selections: dict[str, list[dict[str, Any]]] = {}

    # estate

    def add(self, table: str, *rows: dict[str, Any]) -> None:
        self.tables.setdefault(table.lower(), []).extend(rows)

    def add_subscription(self, subscription_id: str, name: str | None = None) -> None:
        self.add("resourcecontainers", subscription_row(subscription_id, name))

    def throttle(self, times: int = 1, *, retry_after: str | None = None,
                 only_type: str | None = None, **headers: str) -> None:
        """Answer the next `times` queries (of one resource type, if given) with 429."""
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        self.throttles += [(only_type, headers)] * times

    # the API

    def handle(self, request: Recorded) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        if self.quota is not None:
            admitted, remaining, resets = self.quota.take()
            self._quota_state = {"x-ms-user-quota-remaining": str(remaining),
                                 "x-ms-user-quota-resets-after": timespan(resets)}
            if not admitted:
                return arm_error(429, "RateLimiting",
                                 "Please provide below info when asking for support: the "
                                 "user's query quota is exhausted; retry later.",
                                 **self._quota_state)
        if (throttled := self._throttled(str(body.get("query") or ""))) is not None:
            return arm_error(429, "RateLimiting",
                             "Please provide below info when asking for support: the request "
                             "was throttled; retry later.", **throttled)
        if not request.params.get("api-version"):
            return arm_error(400, "MissingApiVersionParameter", "api-version is required")
        if denied := self._denied(body):
            return arm_error(403, "AuthorizationFailed",
                             f"The client does not have authorization to perform action "
                             f"'Microsoft.ResourceGraph/resources/read' over scope '{denied}' "
                             f"or the scope is invalid.")
        try:
            return self._answer(body)
        except QueryNotUnderstood as e:
            return arm_error(400, "InvalidQuery", f"test server: {e}")

    def _throttled(self, text: str) -> dict[str, str] | None:
        try:
            kind = parse_query(text).type_filter
        except QueryNotUnderstood:
            kind = None
        for index, (only_type, headers) in enumerate(self.throttles):
            if only_type is None or only_type.lower() == kind:
                del self.throttles[index]
                return headers
        return None

    def _denied(self, body: dict[str, Any]) -> str | None:
        denied = {s.lower() for s in self.denied_subscriptions}
        for sub in body.get("subscriptions") or []:
            if sub.lower() in denied:
                return f"/subscriptions/{sub}"
        groups = {g.lower() for g in self.denied_management_groups}
        for group in body.get("managementGroups") or []:
            if group.lower() in groups:
                return f"/providers/Microsoft.Management/managementGroups/{group}"
        return None

    def _answer(self, body: dict[str, Any]) -> Reply:
        query = parse_query(str(body.get("query") or ""))
        options = body.get("options") or {}
        if options.get("resultFormat", "objectArray") != "objectArray":
            raise QueryNotUnderstood("only resultFormat objectArray is served")
        rows = self._selection(query, body)
        top = int(options.get("$top") or 100)
        if not 1 <= top <= 1000:
            return arm_error(400, "BadRequest", "$top must be between 1 and 1000")
        page_size = min(top, self.max_page_rows or 1000)
        offset = self._offset(options.get("$skipToken"), body)
        reply: dict[str, Any] = {"totalRecords": len(rows), "count": 0,
                                 "resultTruncated": "false", "facets": [], "data": []}
        if query.type_filter in self.truncate_types:
            page = rows[: max(1, len(rows) // 2)]
            reply.update(resultTruncated="true")
        else:
            page = rows[offset: offset + page_size]
            if offset + page_size < len(rows):
                reply["$skipToken"] = _token(offset + page_size, body)
        reply.update(count=len(page), data=page)
        return Reply(200, reply, self._quota_headers())

    def _selection(self, query: ParsedQuery, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The query's rows, selected once per query and scope when `cache_selections` is on
        (a large estate's later pages then cost what Azure's do, not a new scan of the table)."""
        if not self.cache_selections:
            return self._select(query, body)
        key = _fingerprint(body)
        if key not in self._selections:
            self._selections[key] = self._select(query, body)
        return self._selections[key]

    def _select(self, query: ParsedQuery, body: dict[str, Any]) -> list[dict[str, Any]]:
        in_scope = self._scope(body)
        rows = [r for r in self.tables.get(query.table, [])
                if _row_in_scope(r, in_scope)
                and all(str(_path_value(r, path) or "").lower() == value.lower()
                        for path, value in query.filters)]
        if query.extends:
            rows = [{**r, **{c: _path_value(r, path) for c, path in query.extends}} for r in rows]
        now = datetime.now(UTC)
        rows = [r for r in rows if all(_after(_path_value(r, c), now - timedelta(days=days))
                                       for c, days in query.newer_than)]
        if query.order:
            column, descending = query.order
            rows.sort(key=lambda r: str(_path_value(r, column) or "").lower(), reverse=descending)
        if query.project:
            rows = [{c: _path_value(r, c) for c in query.project} for r in rows]
        return rows

    def _scope(self, body: dict[str, Any]) -> set[str] | None:
        """The subscriptions a request covers (lower case); None means the whole tenant."""
        if body.get("subscriptions"):
            return {s.lower() for s in body["subscriptions"]}
        if body.get("managementGroups"):
            groups = {g.lower(): subs for g, subs in self.management_groups.items()}
            return {s.lower() for g in body["managementGroups"] for s in groups.get(g.lower(), [])}
        return None

    def _offset(self, token: Any, body: dict[str, Any]) -> int:
        if not token:
            return 0
        try:
            decoded = json.loads(base64.b64decode(str(token)))
        except ValueError as e:
            raise QueryNotUnderstood("skip token is not one this server issued") from e
        if decoded.get("request") != _fingerprint(body):
            raise QueryNotUnderstood("skip token belongs to another query or scope")
        return int(decoded["offset"])

    def _quota_headers(self) -> dict[str, str]:
        if self.quota is not None:
            return self._quota_state
        remaining = self.quota_remaining.pop(0) if self.quota_remaining else 14
        return {"x-ms-user-quota-remaining": str(remaining),
                "x-ms-user-quota-resets-after": self.quota_resets_after}


def _after(value: Any, since: datetime) -> bool:
    """`value` (an ISO 8601 time, as todatetime() reads it) is later than `since`."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) > since


def _row_in_scope(row: dict[str, Any], subscriptions: set[str] | None) -> bool:
    """Tenant-level rows (built-in role definitions: no subscriptionId) are in every scope."""
    sub = str(row.get("subscriptionId") or "").lower()
    return subscriptions is None or not sub or sub in subscriptions


def _fingerprint(body: dict[str, Any]) -> str:
    """A skip token is only valid for the same query and scope, as in Azure."""
    key = json.dumps([body.get("query"), body.get("subscriptions"),
                      body.get("managementGroups")], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _token(offset: int, body: dict[str, Any]) -> str:
    raw = json.dumps({"offset": offset, "request": _fingerprint(body)}).encode()
    return base64.b64encode(raw).decode()


# --- Log Analytics -----------------------------------------------------------------------------

# The columns of auditor's executions query (its result contract), in order, with their types.
EXECUTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("JobName", "string"), ("EnvironmentName", "string"), ("ExecutionName", "string"),
    ("StartTime", "datetime"), ("EndTime", "datetime"), ("Status", "string"),
    ("Reason", "string"), ("Events", "long"), ("Reasons", "dynamic"))


@dataclass(frozen=True)
class LogsQuery:
    """One query as the Log Analytics API received it."""

    workspace: str
    query: str
    start: datetime | None
    end: datetime | None
    prefer: str


LogsHandler = Callable[[LogsQuery], Reply]


class LogAnalytics:
    """The Log Analytics query API (`POST /v1/workspaces/{id}/query`).

    It runs no KQL: each workspace answers what the test set up, by a fixed table (`answer`) or a
    function of the request and its timespan (`script`). A workspace nobody set up answers an
    empty result with the executions query's columns (a workspace with no logs).
    """

    def __init__(self) -> None:
        self.handlers: dict[str, LogsHandler] = {}
        self.queries: list[LogsQuery] = []
        # The service's limits, enforced when set: requests per user (429 with Retry-After when
        # exceeded; 200 per 30 s in Azure) and rows per result (a partial result naming the
        # limit beyond it; 500,000 in Azure).
        self.rate: SlidingWindowQuota | None = None
        self.max_rows: int | None = None

    def answer(self, workspace: str, rows: list[list[Any]],
               columns: tuple[tuple[str, str], ...] = EXECUTION_COLUMNS) -> None:
        self.script(workspace, lambda _query: Reply(200, logs_tables(rows, columns)))

    def script(self, workspace: str, handler: LogsHandler) -> None:
        self.handlers[workspace.lower()] = handler

    def handle(self, request: Recorded) -> Reply:
        workspace = request.path.split("/")[3]
        body = request.body if isinstance(request.body, dict) else {}
        if self.rate is not None:
            admitted, _remaining, resets = self.rate.take()
            if not admitted:
                return logs_error(429, "ThrottledError", "Too many requests: the user's rate "
                                  "limit was exceeded; retry after the time given.",
                                  **{"Retry-After": str(max(1, round(resets + 0.5)))})
        if not str(body.get("query") or "").strip():
            return logs_error(400, "BadArgumentError", "The request had some invalid properties",
                              "Query is missing")
        start, end = _timespan(body.get("timespan"))
        query = LogsQuery(workspace, str(body["query"]), start, end,
                          request.headers.get("prefer", ""))
        self.queries.append(query)
        handler = self.handlers.get(workspace.lower())
        reply = handler(query) if handler else Reply(200, logs_tables([]))
        return self._limited(reply)

    def _limited(self, reply: Reply) -> Reply:
        """A result over `max_rows` comes back cut, as the service's partial result."""
        tables = reply.body.get("tables") if isinstance(reply.body, dict) else None
        if self.max_rows is None or reply.status != 200 or not tables:
            return reply
        rows = tables[0]["rows"]
        if len(rows) <= self.max_rows:
            return reply
        columns = tuple((c["name"], c["type"]) for c in tables[0]["columns"])
        return logs_partial(rows[: self.max_rows], RESULT_TOO_LARGE, columns=columns)


def _timespan(value: Any) -> tuple[datetime | None, datetime | None]:
    """`start/end` as the SDK sends it (ISO 8601 instants); durations are not served."""
    if not isinstance(value, str) or "/" not in value:
        return None, None
    first, second = value.split("/", 1)
    return (datetime.fromisoformat(first.replace("Z", "+00:00")),
            datetime.fromisoformat(second.replace("Z", "+00:00")))


def logs_tables(rows: list[list[Any]],
                columns: tuple[tuple[str, str], ...] = EXECUTION_COLUMNS) -> dict[str, Any]:
    """The success body: one `PrimaryResult` table (as in the API's own example)."""
    return {"tables": [{"name": "PrimaryResult",
                        "columns": [{"name": n, "type": t} for n, t in columns],
                        "rows": rows}]}


def logs_partial(rows: list[list[Any]], message: str, *, code: str = "-2133196797",
                 columns: tuple[tuple[str, str], ...] = EXECUTION_COLUMNS) -> Reply:
    """A 200 with tables and an `error` beside them: the service's partial result."""
    body = logs_tables(rows, columns)
    body["error"] = {
        "message": "There were some errors when processing your query.",
        "code": "PartialError",
        "correlationId": "7c3b0000-0000-4000-8000-00000000c0de",
        "details": [{"code": "EngineError",
                     "message": "Something went wrong processing your query on the server.",
                     "innererror": {"code": code, "message": message, "severity": 2,
                                    "severityName": "Error"}}],
    }
    return Reply(200, body)


RESULT_TOO_LARGE = ("Query result set has exceeded the internal record count limit 500000 "
                    "(E_QUERY_RESULT_SET_TOO_LARGE; see https://aka.ms/kustoquerylimits)")


def logs_error(status: int, code: str, message: str, inner: str | None = None,
               **headers: str) -> Reply:
    """The API's error body (`{"error": {message, code, correlationId, innererror}}`)."""
    error: dict[str, Any] = {"message": message, "code": code,
                             "correlationId": "7c3b0000-0000-4000-8000-00000000e770"}
    if inner:
        error["innererror"] = {"code": "QueryValidationError", "message": inner}
    return Reply(status, {"error": error}, dict(headers))


def execution_log_row(job: str, execution: str, start: str, end: str, *,
                      status: str = "Succeeded", reason: str = "", environment: str = "env",
                      events: int = 4, reasons: list[str] | None = None) -> list[Any]:
    """One row of the executions query, as the service sends it (dynamic as a JSON string)."""
    seen = reasons if reasons is not None else (
        ["SuccessfulCreate", reason or "Completed"] if status != "Running"
        else ["SuccessfulCreate"])
    return [job, environment, execution, start, end, status, reason, events, json.dumps(seen)]


# --- Container Apps job executions -------------------------------------------------------------


class JobExecutions:
    """`GET .../Microsoft.App/jobs/{job}/executions`: `{value, nextLink}` pages of a job's
    executions (items as in the spec's Job_Executions_Get example: name and properties only).

    A job nobody set up is not found (404), as in Azure.
    """

    def __init__(self) -> None:
        self.jobs: dict[str, list[dict[str, Any]]] = {}
        self.failures: dict[str, Reply] = {}
        self.page_size = 100

    def add(self, job_id: str, *executions: dict[str, Any]) -> None:
        self.jobs.setdefault(job_id.lower(), []).extend(executions)

    def fail(self, job_id: str, reply: Reply) -> None:
        self.failures[job_id.lower()] = reply

    def handle(self, request: Recorded) -> Reply:
        if not request.params.get("api-version"):
            return arm_error(400, "MissingApiVersionParameter", "api-version is required")
        job_id = request.path[: -len("/executions")].lower()
        if job_id in self.failures:
            return self.failures[job_id]
        if job_id not in self.jobs:
            name = job_id.rsplit("/", 1)[-1]
            return arm_error(404, "ResourceNotFound",
                             f"The Resource 'Microsoft.App/jobs/{name}' under resource group "
                             f"was not found.")
        rows = self.jobs[job_id]
        offset = int(request.params.get("$skiptoken") or 0)
        page = rows[offset: offset + self.page_size]
        next_link = None
        if offset + self.page_size < len(rows):
            next_link = (f"https://{request.headers.get('host')}{request.path}"
                         f"?api-version={request.params['api-version']}"
                         f"&$skiptoken={offset + self.page_size}")
        return Reply(200, {"value": page, "nextLink": next_link})


def execution_row(name: str, status: str, start: str, end: str | None = None) -> dict[str, Any]:
    """An executions-list item as in Job_Executions_Get (no id or type on the item)."""
    return {"name": name,
            "properties": {"status": status, "startTime": start, "endTime": end,
                           "template": {"containers": [{
                               "image": "contoso.azurecr.io/batch/worker:1.4.2",
                               "name": "worker", "resources": {"cpu": 0.5, "memory": "1Gi"}}],
                               "initContainers": []}}}


# --- az ----------------------------------------------------------------------------------------


class FakeAz:
    """`az` for AzureCliCredential: prints the server's token, logs each call's arguments."""

    def __init__(self, folder: Path, token: str) -> None:
        self.folder = folder
        self.token = token
        self.log = folder / "az-calls.log"
        folder.mkdir(parents=True, exist_ok=True)
        self.write(logged_in=True)

    def write(self, *, logged_in: bool) -> None:
        expires = int(time.time()) + 3600
        answer = json.dumps({
            "accessToken": self.token,
            "expires_on": expires,
            "expiresOn": datetime.fromtimestamp(expires).strftime("%Y-%m-%d %H:%M:%S.%f"),
            "subscription": "00000000-0000-0000-0000-000000000000",
            "tenant": TENANT,
            "tokenType": "Bearer",
        })
        reply = (f"cat <<'JSON'\n{answer}\nJSON\n" if logged_in else
                 "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n")
        # Written aside and renamed into place: a token rotated mid-scan rewrites the script
        # while other threads of the scan may be running it, and a script rewritten in place
        # is then half-written or busy ("Failed to execute").
        script = self.folder / "az"
        written = self.folder / f".az.{os.getpid()}.{threading.get_ident()}.tmp"
        written.write_text(
            "#!/bin/sh\n"
            f"for a in \"$@\"; do printf '%s\\t' \"$a\"; done >> '{self.log}'\n"
            f"printf '\\n' >> '{self.log}'\n"
            'if [ "$1 $2" != "account get-access-token" ]; then\n'
            '  echo "fake az: unsupported command: $*" >&2; exit 2\nfi\n'
            + reply)
        written.chmod(written.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        os.replace(written, script)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [line.rstrip("\t").split("\t") for line in self.log.read_text().splitlines()]

    def resources_asked(self) -> list[str]:
        """The `--resource` (or `--scope`) each token was asked for: the audience."""
        found = []
        for call in self.calls():
            for flag in ("--resource", "--scope"):
                if flag in call:
                    found.append(call[call.index(flag) + 1])
        return found


# --- wiring for tests --------------------------------------------------------------------------


@contextmanager
def serve(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Iterator[AzureServer]:
    """Start a server, point the SDKs and `az` at it through the environment, stop it after."""
    server = AzureServer()
    server.start()
    try:
        server.az = FakeAz(folder / "fake-az-bin", server.token)
        monkeypatch.setenv("PATH", f"{server.az.folder}{os.pathsep}{os.environ.get('PATH', '')}")
        monkeypatch.setenv("AUDITOR_ARM_ENDPOINT", server.url)
        monkeypatch.setenv("AUDITOR_LOG_ANALYTICS_ENDPOINT", server.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_bundle()))
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        yield server
    finally:
        server.stop()


# --- rows in Resource Graph's shape ------------------------------------------------------------

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def subscription_id(n: int) -> str:
    return f"{n:08x}-aaaa-4bbb-8ccc-{n:012x}"


def subscription_row(subscription: str, name: str | None = None) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{subscription}",
        "name": name or f"sub-{subscription[:8]}",
        "type": "microsoft.resources/subscriptions",
        "tenantId": TENANT,
        "kind": "",
        "location": "",
        "resourceGroup": "",
        "subscriptionId": subscription,
        "managedBy": "",
        "sku": None,
        "plan": None,
        "properties": {"state": "Enabled",
                       "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01",
                                                "quotaId": "PayAsYouGo_2014-09-01",
                                                "spendingLimit": "Off"}},
        "tags": {},
        "identity": None,
        "zones": None,
        "extendedLocation": None,
    }


def _arm_columns(resource_id: str, name: str, kind: str, subscription: str, group: str,
                 location: str) -> dict[str, Any]:
    """The columns Resource Graph adds to every row of the `resources` table."""
    return {
        "id": resource_id,
        "name": name,
        "type": kind,
        "tenantId": TENANT,
        "kind": "",
        "location": location,
        "resourceGroup": group,
        "subscriptionId": subscription,
        "managedBy": "",
        "sku": None,
        "plan": None,
        "tags": {},
        "identity": None,
        "zones": None,
        "extendedLocation": None,
    }


def environment_id(subscription: str, group: str = "rg-jobs", name: str = "env") -> str:
    return (f"/subscriptions/{subscription}/resourceGroups/{group}/providers/"
            f"Microsoft.App/managedEnvironments/{name}")


def job_row(subscription: str, name: str, group: str = "rg-jobs", *,
            identity: dict[str, Any] | None = None, tags: dict[str, str] | None = None,
            replica_timeout: int = 1800, retry_limit: int = 1,
            image: str = "contoso.azurecr.io/batch/worker:1.4.2") -> dict[str, Any]:
    """A Container Apps job as Resource Graph returns it (properties as in Job_Get)."""
    resource_id = (f"/subscriptions/{subscription}/resourceGroups/{group}/providers/"
                   f"Microsoft.App/jobs/{name}")
    row = _arm_columns(resource_id, name, "microsoft.app/jobs", subscription, group, "eastus")
    row["tags"] = dict(tags or {})
    row["identity"] = identity
    row["properties"] = {
        "provisioningState": "Succeeded",
        "runningState": "Ready",
        "environmentId": environment_id(subscription, group),
        "workloadProfileName": "Consumption",
        "configuration": {
            "replicaTimeout": replica_timeout,
            "replicaRetryLimit": retry_limit,
            "triggerType": "Manual",
            "manualTriggerConfig": {"replicaCompletionCount": 1, "parallelism": 1},
            "secrets": [],
            "registries": [{"server": image.split("/", 1)[0], "identity": "system"}],
        },
        "template": {
            "containers": [{
                "image": image,
                "name": name,
                "resources": {"cpu": 0.5, "memory": "1Gi"},
                "env": [{"name": "MODE", "value": "batch"}],
            }],
            "initContainers": [],
            "volumes": [],
        },
    }
    return row


def system_identity(principal_id: str) -> dict[str, Any]:
    return {"type": "SystemAssigned", "principalId": principal_id, "tenantId": TENANT}


def environment_row(subscription: str, group: str = "rg-jobs", name: str = "env",
                    workspace: str = "f0e1d2c3-0000-4000-8000-000000000001") -> dict[str, Any]:
    row = _arm_columns(environment_id(subscription, group, name), name,
                       "microsoft.app/managedenvironments", subscription, group, "eastus")
    row["properties"] = {
        "provisioningState": "Succeeded",
        "appLogsConfiguration": {"destination": "log-analytics",
                                 "logAnalyticsConfiguration": {"customerId": workspace}},
        "vnetConfiguration": {"internal": True},
        "publicNetworkAccess": "Disabled",
        "zoneRedundant": False,
        "workloadProfiles": [{"name": "Consumption", "workloadProfileType": "Consumption"}],
    }
    return row


def role_definition_row(guid: str, role_name: str, *,
                        actions: tuple[str, ...] = ("*/read",)) -> dict[str, Any]:
    """A built-in role definition: tenant-level, no subscription, as in authorizationresources."""
    return {
        "id": f"/providers/Microsoft.Authorization/RoleDefinitions/{guid}",
        "name": guid,
        "type": "microsoft.authorization/roledefinitions",
        "tenantId": TENANT,
        "kind": "",
        "location": "",
        "resourceGroup": "",
        "subscriptionId": "",
        "managedBy": "",
        "sku": None,
        "plan": None,
        "properties": {"roleName": role_name, "type": "BuiltInRole",
                       "description": f"{role_name} (test)", "assignableScopes": ["/"],
                       "permissions": [{"actions": list(actions), "notActions": [],
                                        "dataActions": [], "notDataActions": []}]},
        "tags": None,
        "identity": None,
        "zones": None,
        "extendedLocation": None,
    }


def role_assignment_row(subscription: str, principal_id: str, role_guid: str, *,
                        principal_type: str = "ServicePrincipal",
                        scope: str | None = None) -> dict[str, Any]:
    scope = scope or f"/subscriptions/{subscription}"
    guid = hashlib.sha256(f"{scope}{principal_id}{role_guid}".encode()).hexdigest()[:32]
    assignment = f"{guid[:8]}-{guid[8:12]}-{guid[12:16]}-{guid[16:20]}-{guid[20:]}"
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{assignment}",
        "name": assignment,
        "type": "microsoft.authorization/roleassignments",
        "tenantId": TENANT,
        "kind": "",
        "location": "",
        "resourceGroup": "",
        "subscriptionId": subscription,
        "managedBy": "",
        "sku": None,
        "plan": None,
        "properties": {
            "principalId": principal_id,
            "principalType": principal_type,
            "roleDefinitionId": (f"/subscriptions/{subscription}/providers/"
                                 f"Microsoft.Authorization/roleDefinitions/{role_guid}"),
            "scope": scope,
            "createdOn": "2024-05-01T10:00:00.0000000Z",
            "updatedOn": "2024-05-01T10:00:00.0000000Z",
        },
        "tags": None,
        "identity": None,
        "zones": None,
        "extendedLocation": None,
    }


def change_row(job_id: str, timestamp: str, change_type: str = "Update", *,
               changes: dict[str, dict[str, Any]] | None = None,
               changed_by: str = "j.doe@contoso.com", changed_by_type: str = "User",
               client_type: str = "Azure Portal") -> dict[str, Any]:
    """A `resourcechanges` row of a job, as Resource Graph returns it.

    The change resource of azure-rest-api-specs Microsoft.Resources/changes (2022-05-01) with the
    Change Actor fields, in Resource Graph's columns; ids as `<target>/providers/
    Microsoft.Resources/changes/<snapshot>_<guid>` (the sources are cited in auditor/changes.py).
    """
    digest = hashlib.sha256(f"{job_id}|{timestamp}|{change_type}".encode()).hexdigest()
    guid = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    name = f"0858{int(digest[32:44], 16):016d}_{guid}"
    parts = job_id.strip("/").split("/")
    verb = "delete" if change_type == "Delete" else "write"
    return {
        "id": f"{job_id}/providers/Microsoft.Resources/changes/{name}",
        "name": name,
        "type": "microsoft.resources/changes",
        "tenantId": TENANT,
        "kind": "",
        "location": "",
        "resourceGroup": parts[3].lower(),
        "subscriptionId": parts[1],
        "managedBy": "",
        "sku": None,
        "plan": None,
        "properties": {
            "targetResourceType": "microsoft.app/jobs",
            "targetResourceId": job_id,
            "changeAttributes": {
                "previousResourceSnapshotId": f"{name}_prev",
                "newResourceSnapshotId": f"{name}_new",
                "correlationId": guid,
                "changedByType": changed_by_type,
                "changesCount": len(changes or {}),
                "clientType": client_type,
                "changedBy": changed_by,
                "operation": f"Microsoft.App/jobs/{verb}",
                "timestamp": timestamp,
            },
            "changeType": change_type,
            "changes": changes or {},
        },
        "tags": None,
        "identity": None,
        "zones": None,
        "extendedLocation": None,
    }


# --- faults below the APIs ---------------------------------------------------------------------

# What ARM sends with a 401 (azure-core looks for it before it treats the 401 as a challenge).
ARM_CHALLENGE = {"WWW-Authenticate": 'Bearer authorization_uri="https://login.windows.net/'
                                     f'{"72f988bf-86f1-41af-91ab-2d7cd011db47"}", '
                                     'error="invalid_token", '
                                     'error_description="The access token is invalid."'}

Match = Callable[[Recorded], bool]


@dataclass
class Fault:
    """One scripted misbehaviour for the requests that `match`, `times` times (None: always).

    kind: "reply" answers `reply` instead of the API; "reset" closes the connection without a
    response (RST); "delay" holds the request `seconds` before the API answers; "before" runs
    `action` (e.g. rotate the token, make a subscription vanish) and then lets the API answer;
    "transform" lets the API answer and passes its reply through `transform`.
    """

    kind: str
    match: Match
    times: int | None = 1
    reply: Reply | None = None
    seconds: float = 0.0
    action: Callable[[Recorded], None] | None = None
    transform: Callable[[Recorded, Reply], Reply] | None = None
    hits: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)


class FaultScript:
    """The server's faults, first match wins; every request that met one is still recorded."""

    def __init__(self) -> None:
        self.items: list[Fault] = []
        self.stopping = threading.Event()  # set when the server stops: delays end early
        self.replies: list[tuple[Recorded, Reply]] = []  # every answer sent, faults or not
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.items.append(fault)
        return fault

    def reply(self, match: Match, reply: Reply, times: int | None = 1) -> Fault:
        return self.add(Fault("reply", match, times, reply=reply))

    def reset(self, match: Match, times: int | None = 1) -> Fault:
        return self.add(Fault("reset", match, times))

    def delay(self, match: Match, seconds: float, times: int | None = 1) -> Fault:
        return self.add(Fault("delay", match, times, seconds=seconds))

    def before(self, match: Match, action: Callable[[Recorded], None],
               times: int | None = 1) -> Fault:
        return self.add(Fault("before", match, times, action=action))

    def transform(self, match: Match, transform: Callable[[Recorded, Reply], Reply],
                  times: int | None = None) -> Fault:
        return self.add(Fault("transform", match, times, transform=transform))

    def take(self, request: Recorded) -> Fault | None:
        with self._lock:
            for fault in self.items:
                if fault.times is not None and fault.hits >= fault.times:
                    continue
                if fault.match(request):
                    fault.hits += 1
                    fault.arrived.set()
                    return fault
        return None


def _answer(handler: BaseHTTPRequestHandler, request: Recorded) -> Reply | None:
    azure: AzureServer = handler.server.azure  # type: ignore[attr-defined]
    reply = _answer_or_fail(handler, azure, request)
    if reply is not None:
        with azure.faults._lock:
            azure.faults.replies.append((request, reply))
    return reply


def _answer_or_fail(handler: BaseHTTPRequestHandler, azure: AzureServer,
                    request: Recorded) -> Reply | None:
    fault = azure.faults.take(request)
    if fault is None:
        return azure.handle(request)
    if fault.kind == "reset":
        with azure._lock:
            azure.requests.append(request)
        handler.close_connection = True
        try:  # linger 0: close sends a TCP reset instead of an orderly shutdown
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                          struct.pack("ii", 1, 0))
            handler.connection.close()
        except OSError:
            pass
        return None
    if fault.kind == "delay":
        azure.faults.stopping.wait(fault.seconds)
        readable, _, _ = select.select([handler.connection], [], [], 0)
        if readable:  # the client gave up and closed the connection: nobody to answer
            handler.close_connection = True
            return None
    if fault.kind == "reply":
        assert fault.reply is not None
        with azure._lock:
            azure.requests.append(request)
        return fault.reply
    if fault.kind == "before" and fault.action is not None:
        fault.action(request)
    reply = azure.handle(request)
    if fault.kind == "transform" and fault.transform is not None:
        reply = fault.transform(request, reply)
    return reply


def graph_query(kind: str | None = None, *, with_skip_token: bool | None = None,
                subscription: str | None = None) -> Match:
    """Matches Resource Graph queries: of one resource type, with or without a skip token,
    naming one subscription; any of them when not given."""

    def match(request: Recorded) -> bool:
        if request.path.lower() != "/providers/microsoft.resourcegraph/resources":
            return False
        body = request.body if isinstance(request.body, dict) else {}
        text = str(body.get("query", "")).lower()
        if kind is not None and f"where type =~ '{kind.lower()}'" not in text:
            return False
        token = bool((body.get("options") or {}).get("$skipToken"))
        if with_skip_token is not None and token != with_skip_token:
            return False
        subs = [s.lower() for s in body.get("subscriptions") or []]
        return subscription is None or subscription.lower() in subs

    return match


def any_request(method: str | None = None, path_contains: str = "") -> Match:
    return lambda r: ((method is None or r.method == method)
                      and path_contains.lower() in r.path.lower())


def rotate_token(azure: AzureServer) -> str:
    """The server stops accepting its token (it expired) and `az` hands out a new one."""
    with azure._lock:
        azure.token = "fake-arm-token-" + secrets.token_hex(16)
    if azure.az is not None:
        azure.az.token = azure.token
        azure.az.write(logged_in=True)
    return azure.token


def http_date(seconds_from_now: float) -> str:
    """An HTTP date (RFC 7231 IMF-fixdate), as Retry-After may carry one."""
    moment = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")


def repeat_last_row(served: list[dict[str, Any]] | None = None) -> Callable[[Recorded, Reply],
                                                                            Reply]:
    """A transform: each page after the first starts with the previous page's last row again,
    as Resource Graph may do when rows move between pages."""
    seen: list[dict[str, Any]] = served if served is not None else []

    def transform(request: Recorded, reply: Reply) -> Reply:
        if reply.status != 200 or not isinstance(reply.body, dict):
            return reply
        data = list(reply.body.get("data") or [])
        token = ((request.body or {}).get("options") or {}).get("$skipToken")
        if token and seen:
            data.insert(0, seen[-1])
        seen.extend(reply.body.get("data") or [])
        body = dict(reply.body, data=data, count=len(data))
        return Reply(reply.status, body, reply.headers)

    return transform


def served_rows(azure: AzureServer, kind: str) -> list[dict[str, Any]]:
    """Every row of `kind` the server sent in a successful Resource Graph reply."""
    match = graph_query(kind)
    return [row for request, reply in azure.faults.replies
            if match(request) and reply.status == 200 and isinstance(reply.body, dict)
            for row in reply.body.get("data") or []]
