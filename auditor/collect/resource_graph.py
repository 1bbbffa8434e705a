"""Resource Graph queries: batched by subscription, paged to the end, paced by Azure's quota.

Every problem ends as a `Failure` naming the scope that was not read and Azure's reason; nothing
is dropped quietly. A denied batch of several subscriptions is split to find exactly which ones
are denied, within a bounded number of extra requests.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import orjson
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import RetryPolicy
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions, QueryResponse

from auditor.collect.clouds import Endpoints
from auditor.collect.credentials import sign_in_failed
from auditor.collect.pipeline import disable_auto_registration
from auditor.settings import AzureSettings

log = logging.getLogger(__name__)

QUOTA_REMAINING = "x-ms-user-quota-remaining"
QUOTA_RESETS_AFTER = "x-ms-user-quota-resets-after"
# Extra requests one query may spend splitting denied batches to find the denied subscriptions:
# about 2·log2(100) ≈ 14 per denied subscription in a full batch, so three can be pinpointed.
SPLIT_BUDGET = 40
# First wait after a 429 that carries no Retry-After; doubles per attempt, capped by settings.
FIRST_BACKOFF_SECONDS = 1.0
# The quota window (about 15 queries per 5 s per user), for a reply that omits the reset time.
QUOTA_WINDOW_SECONDS = 5.0

# The code of the failure recorded for everything the scan's deadline left unread.
DEADLINE_EXCEEDED = "DeadlineExceeded"
# Resource Graph answers a skip token it no longer accepts (expired, or the data moved) with 400:
# the scope is read again from its first page, this many times, before it becomes a gap.
SKIP_TOKEN_RESTARTS = 1

Sleep = Callable[[float], None]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Deadline:
    """When collection must stop (a value of the collection's clock), and the setting behind it."""

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float, clock: Clock) -> Deadline:
        return cls(clock() + seconds, seconds)

    def message(self) -> str:
        return (f"the scan's deadline of {self.seconds:g} s ([azure] deadline_seconds) passed "
                f"before this was read")


@dataclass(frozen=True, slots=True)
class GraphQuery:
    """One Resource Graph query: a name for files and reports, and the KQL sent."""

    name: str
    text: str


def _of_type(table: str, kind: str, *filters: str) -> str:
    """Azure's full rows for one resource type, in id order so pages are stable."""
    where = "".join(f" | where {f}" for f in filters)
    return f"{table} | where type =~ '{kind}'{where} | order by id asc"


SUBSCRIPTIONS = GraphQuery(
    "subscriptions",
    # `type` is kept so the snapshot reader can tell these rows apart (it ignores file names).
    "resourcecontainers | where type =~ 'microsoft.resources/subscriptions' "
    "| project id, type, subscriptionId, name, properties | order by id asc",
)
JOBS = GraphQuery("jobs", _of_type("resources", "microsoft.app/jobs"))
ENVIRONMENTS = GraphQuery("environments",
                          _of_type("resources", "microsoft.app/managedenvironments"))
ROLE_ASSIGNMENTS = GraphQuery(
    "role-assignments",
    # Managed identities are service principals; other principals cannot be a job's identity.
    _of_type("authorizationresources", "microsoft.authorization/roleassignments",
             "properties.principalType =~ 'ServicePrincipal'"),
)
ROLE_DEFINITIONS = GraphQuery(
    "role-definitions",
    _of_type("authorizationresources", "microsoft.authorization/roledefinitions"),
)
RESOURCE_QUERIES = (JOBS, ENVIRONMENTS, ROLE_ASSIGNMENTS, ROLE_DEFINITIONS)


# --- scopes ------------------------------------------------------------------------------------

ScopeKind = Literal["subscriptions", "management groups", "tenant"]


@dataclass(frozen=True, slots=True)
class Scope:
    """What one request covers: some subscriptions, some management groups, or the tenant."""

    kind: ScopeKind
    ids: tuple[str, ...] = ()

    def request(self, query: str, options: QueryRequestOptions) -> QueryRequest:
        """The request body: Resource Graph takes either list, or neither for the tenant."""
        subscriptions = list(self.ids) if self.kind == "subscriptions" else None
        groups = list(self.ids) if self.kind == "management groups" else None
        return QueryRequest(query=query, subscriptions=subscriptions, management_groups=groups,
                            options=options)

    def describe(self) -> str:
        """Names every id: a gap must say exactly what was not read."""
        if self.kind == "tenant":
            return "tenant (every subscription the identity can read)"
        singular = "subscription" if self.kind == "subscriptions" else "management group"
        if len(self.ids) == 1:
            return f"{singular} {self.ids[0]}"
        return f"{self.kind} {', '.join(self.ids)}"

    def split(self) -> tuple[Scope, Scope]:
        half = len(self.ids) // 2
        return Scope(self.kind, self.ids[:half]), Scope(self.kind, self.ids[half:])


def batches(kind: ScopeKind, ids: Sequence[str], size: int) -> list[Scope]:
    """Consecutive batches of at most `size` ids (Resource Graph takes up to ~100-300)."""
    return [Scope(kind, tuple(ids[i:i + size])) for i in range(0, len(ids), size)]


# --- errors ------------------------------------------------------------------------------------

class ServiceError(Exception):
    """An Azure request that failed, with the status, error code and message Azure gave; its
    `reason` is what coverage records. Each collector raises its own subclass."""

    def __init__(self, status: int | None, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        if self.code == DEADLINE_EXCEEDED:
            return f"{self.code}: {self.message.rstrip('.')}"
        status = f"HTTP {self.status}" if self.status else "no response"
        return f"{self.code} ({status}): {self.message.rstrip('.')}"


class GraphError(ServiceError):
    """A Resource Graph request that failed."""

    @property
    def denied(self) -> bool:
        return self.status == 403


def _from_http_error(error: HttpResponseError) -> GraphError:
    """Azure's ARM error body (`{"error": {"code", "message"}}`) when there is one."""
    detail = error.error
    code = getattr(detail, "code", None) or error.reason or type(error).__name__
    message = getattr(detail, "message", None) or _first_line(str(error.message or error))
    return GraphError(error.status_code, str(code), _first_line(str(message)))


def _no_response(error: AzureError) -> GraphError:
    message = _first_line(str(error))
    if "CERTIFICATE_VERIFY_FAILED" in message:
        message += ("; the endpoint's certificate is not trusted: for a TLS-inspecting proxy or "
                    "a private endpoint, set REQUESTS_CA_BUNDLE to its CA file")
    return GraphError(None, type(error).__name__, message)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else text


# --- pacing ------------------------------------------------------------------------------------

class Throttle:
    """Paces requests: waits out an exhausted quota and backs off after throttling.

    Every wait goes through here, bounded by `max_wait`, with an injectable sleep and clock so
    tests run instantly; the totals go into the collection record.
    """

    def __init__(self, sleep: Sleep, clock: Clock, max_wait: float,
                 deadline: Deadline | None = None) -> None:
        self._sleep, self._clock, self._max_wait = sleep, clock, max_wait
        self.deadline = deadline
        self._resume_at = 0.0
        self.waits = 0
        self.waited_seconds = 0.0

    def remaining(self) -> float:
        """Seconds left before the deadline (infinite without one)."""
        return self.deadline.at - self._clock() if self.deadline else float("inf")

    def expired(self) -> bool:
        return self.remaining() <= 0

    def wait_turn(self) -> None:
        """Call before each request: sleeps until a quota reset or back-off has passed."""
        delay = self._resume_at - self._clock()
        if delay > 0:
            self.pause(delay)

    def pause(self, seconds: float) -> None:
        """Sleep, at most `max_wait` and never past the deadline."""
        seconds = min(max(seconds, 0.0), self._max_wait, max(self.remaining(), 0.0))
        if seconds <= 0:
            return
        log.info("Resource Graph throttling: waiting %.1f s", seconds)
        self.waits += 1
        self.waited_seconds += seconds
        self._sleep(seconds)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read the user quota every response reports; at 0, hold the next request until reset."""
        remaining = _as_int(headers.get(QUOTA_REMAINING))
        if remaining is not None and remaining <= 0:
            resets = _as_duration(headers.get(QUOTA_RESETS_AFTER))
            self._defer(resets if resets is not None else QUOTA_WINDOW_SECONDS)

    def back_off(self, attempt: int) -> None:
        """After a 429 that gave no Retry-After: exponential, never shorter than a known reset."""
        self._defer(FIRST_BACKOFF_SECONDS * 2 ** attempt)

    def _defer(self, seconds: float) -> None:
        until = self._clock() + min(seconds, self._max_wait)
        self._resume_at = max(self._resume_at, until)


def _as_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


_DURATION = re.compile(r"^\s*(?:(\d+)\.)?(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*$")


def _as_duration(value: str | None) -> float | None:
    """`hh:mm:ss` (a .NET TimeSpan, optionally `d.hh:mm:ss` or with fractions) in seconds."""
    match = _DURATION.match(value or "")
    if not match:
        return None
    days, hours, minutes, seconds = match.groups()
    return (int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds))


class PacedRetryPolicy(RetryPolicy[Any, Any]):
    """azure-core's own retries (429 and 5xx with Retry-After), waiting through the Throttle.

    azure-core sleeps for whatever Retry-After says; here each wait is capped by the settings
    and counted, and tests can replace the clock.
    """

    def __init__(self, throttle: Throttle, max_retries: int, max_wait: float) -> None:
        super().__init__(retry_total=max_retries, retry_connect=max_retries,
                         retry_read=max_retries, retry_status=max_retries,
                         retry_backoff_max=max_wait)
        self._throttle = throttle

    def sleep(self, settings: dict[str, Any], transport: Any, response: Any = None) -> None:
        retry_after = _retry_after_seconds(self, response) if response is not None else None
        self._throttle.pause(retry_after if retry_after else self.get_backoff_time(settings))

    def increment(self, settings: dict[str, Any], response: Any = None,
                  error: Exception | None = None) -> bool:
        """No retry once the deadline has passed: the caller records what was not read."""
        if self._throttle.expired():
            return False
        return bool(super().increment(settings, response=response, error=error))


def _retry_after_seconds(policy: RetryPolicy[Any, Any], response: Any) -> float | None:
    """Retry-After in seconds or as an HTTP date; an unreadable one is no hint (azure-core
    would raise ValueError out of the pipeline)."""
    try:
        return policy.get_retry_after(response)
    except (ValueError, TypeError, OverflowError):
        return None


# --- the client --------------------------------------------------------------------------------

def open_client(credential: TokenCredential, endpoints: Endpoints, settings: AzureSettings,
                throttle: Throttle) -> ResourceGraphClient:
    """The SDK client at the chosen endpoint, asking tokens for the cloud's ARM audience."""
    client = ResourceGraphClient(
        credential,
        base_url=endpoints.arm,
        credential_scopes=[endpoints.cloud.arm_scope],
        api_version=settings.resource_graph_api_version,
        retry_policy=PacedRetryPolicy(throttle, settings.max_retries,
                                      settings.max_retry_wait_seconds),
        connection_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
    )
    client._deserialize = _PagesAsSent(client._deserialize)  # type: ignore[assignment]
    return disable_auto_registration(client)


class _PagesAsSent:
    """The SDK client's deserializer, except that a page of results (`QueryResponse`) is built
    from its JSON body directly.

    The SDK passes `data` (typed `object`) through its generic model code cell by cell, to give
    back the values the JSON parser made: 0.4 s for a page of 1,000 jobs, a third of a large
    scan's collection. A body of another shape (facets, a field of an unexpected type, not
    JSON) goes to the SDK's own deserializer, as does everything else (errors included).
    """

    def __init__(self, sdk: Any) -> None:
        self._sdk = sdk

    def __call__(self, target: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        page = _page_as_sent(data) if target == "QueryResponse" and not args else None
        return page if page is not None else self._sdk(target, data, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sdk, name)


_PAGE_FIELDS = {"totalRecords", "count", "resultTruncated", "$skipToken", "data", "facets"}


def _page_as_sent(response: Any) -> QueryResponse | None:
    """The page the SDK would deserialize from `response`, or None to leave it to the SDK."""
    try:
        body = orjson.loads(response.content)
    except (AttributeError, TypeError, orjson.JSONDecodeError):
        return None
    if not isinstance(body, dict) or not body.keys() <= _PAGE_FIELDS:
        return None
    total, count, truncated, token, data, facets = (
        body.get("totalRecords"), body.get("count"), body.get("resultTruncated"),
        body.get("$skipToken"), body.get("data"), body.get("facets"))
    if total.__class__ is not int or count.__class__ is not int or \
            not isinstance(truncated, str) or not isinstance(token, str | None) or \
            not isinstance(data, list) or facets not in (None, []):
        return None
    return QueryResponse(total_records=total, count=count, result_truncated=truncated,
                         skip_token=token, data=cast(Any, data), facets=facets)


def _with_headers(pipeline_response: PipelineResponse[Any, Any], data: QueryResponse,
                  _headers: dict[str, Any]) -> tuple[QueryResponse, Mapping[str, str]]:
    return data, pipeline_response.http_response.headers


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    skip_token: str | None
    truncated: bool


@dataclass(frozen=True, slots=True)
class Failure:
    """A scope one query could not read in full, and why."""

    scope: Scope
    reason: str


@dataclass(slots=True)
class QueryResult:
    """Everything one query returned over all its batches, and what it could not read."""

    query: GraphQuery
    scopes: list[Scope]
    rows: list[dict[str, Any]] = field(default_factory=list)
    read: list[Scope] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    requests: int = 0
    pages: int = 0
    duplicates: int = 0
    _ids: set[str] = field(default_factory=set)

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Keep each resource once: batches overlap on tenant-level rows (built-in roles)."""
        for row in rows:
            key = str(row.get("id") or "").lower()
            if key and key in self._ids:
                self.duplicates += 1
                continue
            if key:
                self._ids.add(key)
            self.rows.append(row)

    def summary(self) -> dict[str, Any]:
        """The entry in `coverage.queries`: what was asked and what came back."""
        return {
            "name": self.query.name,
            "query": self.query.text,
            "scope": self.scopes[0].kind if self.scopes else "none",
            "subscriptions": sum(len(s.ids) for s in self.scopes if s.kind == "subscriptions"),
            "management_groups": sum(len(s.ids) for s in self.scopes
                                     if s.kind == "management groups"),
            "batches": len(self.scopes),
            "requests": self.requests,
            "pages": self.pages,
            "rows": len(self.rows),
            "duplicates_dropped": self.duplicates,
            "failed_scopes": [f.scope.describe() for f in self.failures],
        }


class ResourceGraph:
    """Runs queries through one client; translates every SDK error where the call is made."""

    def __init__(self, client: ResourceGraphClient, settings: AzureSettings, throttle: Throttle,
                 *, split_budget: int = SPLIT_BUDGET) -> None:
        self._client, self._throttle = client, throttle
        self._auth = settings.auth
        self._page_size = settings.page_size
        self._max_retries = settings.max_retries
        self._connect_timeout = settings.connect_timeout_seconds
        self._read_timeout = settings.read_timeout_seconds
        self._split_budget = split_budget
        self._pages_read = 0
        # Set when sign-in stopped working after something was read: every later request would
        # fail the same way, so the rest of the scope is recorded as not read without asking.
        self._signed_out: GraphError | None = None

    def run(self, query: GraphQuery, scopes: Sequence[Scope]) -> QueryResult:
        """Every page of `query` over every scope; denied batches are split to pinpoint denials."""
        result = QueryResult(query, list(scopes))
        pending = list(reversed(scopes))
        budget = self._split_budget
        while pending:
            scope = pending.pop()
            before = len(result.rows)
            try:
                self._read_scope(query, scope, result)
            except GraphError as e:
                if e.denied and len(scope.ids) > 1 and budget >= 2:
                    budget -= 2
                    first, second = scope.split()
                    pending += [second, first]
                    continue
                result.failures.append(Failure(scope, self._failure_reason(
                    e, scope, len(result.rows) - before, budget)))
        log.debug("query %s: %d requests, %d pages, %d rows, %d failed scopes", query.name,
                  result.requests, result.pages, len(result.rows), len(result.failures))
        return result

    def _failure_reason(self, error: GraphError, scope: Scope, rows_kept: int,
                        budget: int) -> str:
        reason = error.reason
        if error.denied and len(scope.ids) > 1 and budget < 2:
            reason += (f"; at least one of these {len(scope.ids)} {scope.kind} is denied, and the "
                       f"search for which ones stopped after {self._split_budget} extra requests")
        if rows_kept:
            reason += f"; the {rows_kept} rows read before the failure are kept"
        return reason

    def _read_scope(self, query: GraphQuery, scope: Scope, result: QueryResult) -> None:
        """Follow skip tokens to the end: pages may hold fewer rows than $top and still go on.

        A skip token Azure refuses (400) sends the scope back to its first page, a bounded number
        of times; the rows already received are kept and repeats are dropped by id.
        """
        token: str | None = None
        restarts = 0
        while True:
            try:
                page = self._page(query, scope, token, result)
            except GraphError as e:
                if token and e.status == 400 and restarts < SKIP_TOKEN_RESTARTS:
                    log.info("query %s: skip token refused (%s); reading %s again from its "
                             "first page", query.name, e.reason, scope.describe())
                    restarts += 1
                    token = None
                    continue
                raise
            result.pages += 1
            result.add(page.rows)
            if page.skip_token:
                if page.skip_token == token:
                    raise GraphError(200, "SkipTokenRepeated",
                                     "Resource Graph returned the same skip token twice")
                token = page.skip_token
                continue
            if page.truncated:
                raise GraphError(200, "ResultTruncated",
                                 "Resource Graph marked the result truncated and returned no "
                                 "skip token, so the rest of the rows cannot be fetched")
            result.read.append(scope)
            return

    def _page(self, query: GraphQuery, scope: Scope, token: str | None,
              result: QueryResult) -> Page:
        """One request, retried here when Azure throttles without saying how long to wait."""
        request = scope.request(query.text, QueryRequestOptions(
            top=self._page_size, skip_token=token, result_format="objectArray"))
        attempt = 0
        reauthenticated = False
        while True:
            self._throttle.wait_turn()
            self._stop_if_past_deadline_or_signed_out()
            result.requests += 1
            try:
                response, headers = self._send(request)
            except ClientAuthenticationError as e:
                if e.status_code == 401 and not reauthenticated:
                    # A token that expired or was revoked mid-scan: azure-core dropped it on the
                    # 401, so asking again gets a fresh one from the credential.
                    reauthenticated = True
                    continue
                raise self._signed_out_error(e) from e
            except HttpResponseError as e:
                self._throttle.observe(_headers_of(e))
                if _retryable_status(e) and attempt < self._max_retries:
                    self._throttle.back_off(attempt)
                    attempt += 1
                    continue
                raise _from_http_error(e) from e
            except (ServiceRequestError, ServiceResponseError) as e:
                # No reply (reset, timeout): the query only reads, so asking again is safe.
                if _worth_retrying(e) and attempt < self._max_retries:
                    self._throttle.back_off(attempt)
                    attempt += 1
                    continue
                raise _no_response(e) from e
            except AzureError as e:  # anything else without a usable response
                raise _no_response(e) from e
            self._throttle.observe(headers)
            page = _page_of(response)
            self._pages_read += 1
            return page

    def _stop_if_past_deadline_or_signed_out(self) -> None:
        if self._signed_out is not None:
            raise self._signed_out
        deadline = self._throttle.deadline
        if deadline is not None and self._throttle.expired():
            raise GraphError(None, DEADLINE_EXCEEDED, deadline.message())

    def _signed_out_error(self, error: ClientAuthenticationError) -> Exception:
        """Before anything was read, sign-in failing ends the scan (CollectionError); after, the
        rows already read are kept and what is left becomes gaps."""
        failure = sign_in_failed(self._auth, error)
        if not self._pages_read:
            return failure
        self._signed_out = GraphError(error.status_code, "SignInFailed", str(failure))
        return self._signed_out

    def _send(self, request: QueryRequest) -> tuple[QueryResponse, Mapping[str, str]]:
        read_timeout = max(min(self._read_timeout, self._throttle.remaining()), 0.001)
        result = self._client.resources(request, cls=_with_headers,
                                        connection_timeout=self._connect_timeout,
                                        read_timeout=read_timeout)
        return cast(tuple[QueryResponse, Mapping[str, str]], result)


def _throttled_without_hint(error: HttpResponseError) -> bool:
    """azure-core retries a POST only when Retry-After is present; the rest is ours to retry."""
    return error.status_code == 429 and not _headers_of(error).get("Retry-After")


# Server errors worth asking again that azure-core does not retry for a POST (it retries 500, 503
# and 504 itself, within the same max_retries).
_TRANSIENT_STATUSES = {408, 502}


def _retryable_status(error: HttpResponseError) -> bool:
    return _throttled_without_hint(error) or error.status_code in _TRANSIENT_STATUSES


def _worth_retrying(error: AzureError) -> bool:
    """A dropped connection or a timeout may pass; an untrusted certificate will not."""
    return "CERTIFICATE_VERIFY_FAILED" not in str(error)


def _headers_of(error: HttpResponseError) -> Mapping[str, str]:
    headers = getattr(error.response, "headers", None)
    return cast(Mapping[str, str], headers) if headers is not None else {}


def _page_of(response: QueryResponse) -> Page:
    data = response.data
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise GraphError(200, "UnexpectedResponse",
                         "Resource Graph returned data that is not an array of objects")
    truncated = str(getattr(response.result_truncated, "value", response.result_truncated))
    return Page(rows=cast(list[dict[str, Any]], data), skip_token=response.skip_token or None,
                truncated=truncated.lower() == "true")
