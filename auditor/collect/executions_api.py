"""Execution history from the Container Apps executions API, for jobs without Log Analytics.

`GET .../Microsoft.App/jobs/{job}/executions` (read-only) lists a job's executions, following
`nextLink`; Azure keeps only each job's last 100. Rows are kept as Azure returned them, with the
`id` and `type` the list items may lack filled in from the job, so that each execution names its
job. Executions that did not overlap the history window are left out (and counted).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.mgmt.appcontainers import ContainerAppsAPIClient

from auditor.collect.clouds import Endpoints
from auditor.collect.credentials import sign_in_failed
from auditor.collect.log_analytics import EXECUTION_TYPE, HistoryJob
from auditor.collect.pipeline import disable_auto_registration
from auditor.collect.resource_graph import (
    DEADLINE_EXCEEDED,
    PacedRetryPolicy,
    ServiceError,
    Throttle,
)
from auditor.settings import AzureSettings

log = logging.getLogger(__name__)

SOURCE = "executions-api"
# Azure keeps only this many executions per job.
KEPT_EXECUTIONS = 100


class ApiError(ServiceError):
    """A job whose executions could not be listed."""


@dataclass(slots=True)
class JobResult:
    """One job's executions, or why they could not be read."""

    job: HistoryJob
    rows: list[dict[str, Any]] = field(default_factory=list)
    listed: int = 0
    outside_window: int = 0
    pages: int = 0
    oldest_start: datetime | None = None
    error: str | None = None

    def truncated_before(self, since: datetime) -> bool:
        """Azure kept only the last 100 and the oldest of them started after the window began:
        executions between the window's start and that one cannot be seen."""
        return (self.error is None and self.listed >= KEPT_EXECUTIONS
                and self.oldest_start is not None and self.oldest_start > since)


class ExecutionsApi:
    """One ARM client per subscription, opened on first use and closed with `close()`."""

    def __init__(self, credential: TokenCredential, endpoints: Endpoints,
                 settings: AzureSettings, throttle: Throttle) -> None:
        self._credential, self._endpoints, self._settings = credential, endpoints, settings
        self._throttle = throttle
        self._clients: dict[str, ContainerAppsAPIClient] = {}
        self._stack = ExitStack()
        self.api_version: str | None = None

    def __enter__(self) -> ExecutionsApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()
        self._clients.clear()

    def read(self, job: HistoryJob, since: datetime, until: datetime) -> JobResult:
        """The job's executions that overlap [since, until)."""
        result = JobResult(job)
        if not (job.subscription_id and job.resource_group):
            result.error = "the job's id names no subscription or resource group"
            return result
        try:
            for row in self._list(job, result):
                result.listed += 1
                start = _time(_properties(row).get("startTime"))
                if start is not None:
                    result.oldest_start = min(result.oldest_start or start, start)
                if _overlaps(row, since, until):
                    result.rows.append(row)
                else:
                    result.outside_window += 1
        except ApiError as e:
            result.error = e.reason
            if result.rows:
                result.error += f"; the {len(result.rows)} executions read before it are kept"
        return result

    def _list(self, job: HistoryJob, result: JobResult) -> Iterator[dict[str, Any]]:
        assert job.subscription_id and job.resource_group
        client = self._client(job.subscription_id)
        pages = client.jobs_executions.list(job.resource_group, job.name).by_page()
        reauthenticated = False
        while True:
            self._throttle.wait_turn()
            deadline = self._throttle.deadline
            if deadline is not None and self._throttle.expired():
                raise ApiError(None, DEADLINE_EXCEEDED, deadline.message())
            try:
                page = list(next(pages))
            except StopIteration:
                return
            except HttpResponseError as e:
                if e.status_code == 401 and not reauthenticated:
                    # azure-core dropped the refused token; the same page is asked again (the
                    # pager keeps its continuation) with a fresh one.
                    reauthenticated = True
                    continue
                raise _from_http_error(e, self._settings.auth) from e
            except AzureError as e:
                raise ApiError(None, type(e).__name__, _first_line(str(e))) from e
            result.pages += 1
            for item in page:
                yield _as_row(item, job)

    def _client(self, subscription_id: str) -> ContainerAppsAPIClient:
        key = subscription_id.lower()
        if key not in self._clients:
            client = disable_auto_registration(ContainerAppsAPIClient(
                self._credential, subscription_id, base_url=self._endpoints.arm,
                credential_scopes=[self._endpoints.cloud.arm_scope],
                retry_policy=PacedRetryPolicy(self._throttle, self._settings.max_retries,
                                              self._settings.max_retry_wait_seconds),
                connection_timeout=self._settings.connect_timeout_seconds,
                read_timeout=self._settings.read_timeout_seconds))
            self._clients[key] = self._stack.enter_context(client)
            config = getattr(client, "_config", None)
            self.api_version = getattr(config, "api_version", None)
        return self._clients[key]


def _as_row(item: Any, job: HistoryJob) -> dict[str, Any]:
    """Azure's item as raw JSON, naming its job: the list items may carry neither id nor type."""
    row: dict[str, Any] = dict(item.as_dict()) if hasattr(item, "as_dict") else dict(item)
    name = str(row.get("name") or str(row.get("id") or "").rsplit("/", 1)[-1])
    row["name"] = name
    row["id"] = f"{job.id}/executions/{name}"
    row["type"] = row.get("type") or EXECUTION_TYPE
    row.setdefault("resourceGroup", job.resource_group)
    return row


def _properties(row: dict[str, Any]) -> dict[str, Any]:
    props = row.get("properties")
    return props if isinstance(props, dict) else {}


def _overlaps(row: dict[str, Any], since: datetime, until: datetime) -> bool:
    """Ran at some time in [since, until); an execution without times is kept (it is evidence)."""
    props = _properties(row)
    start, end = _time(props.get("startTime")), _time(props.get("endTime"))
    if start is not None and start >= until:
        return False
    return not (end is not None and end < since)


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _from_http_error(error: HttpResponseError, auth: str) -> ApiError:
    if error.status_code == 401:
        return ApiError(401, "InvalidAuthenticationToken", str(sign_in_failed(auth, error)))
    detail = error.error
    code = str(getattr(detail, "code", None) or error.reason or type(error).__name__)
    message = _first_line(str(getattr(detail, "message", None) or error.message or error))
    return ApiError(error.status_code, code, message)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else text
    return first if len(first) <= 500 else first[:497] + "..."
