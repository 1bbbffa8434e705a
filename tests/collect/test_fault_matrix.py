"""The fault matrix: every way Azure misbehaves, through the whole CLI, against the real SDKs.

Each case scripts one fault into the loopback Azure and runs `auditor scan` live. The scan must
either recover with complete data (exit 0 or 1, every job read), or finish with its reports
marked incomplete, the coverage naming exactly the scopes and sources that were not read and why,
and exit code 3. Either way it never loses a row it received: every job row Azure sent is in the
evidence snapshot and in the findings.

Real sleeps stay tiny ([azure] max_retry_wait_seconds is 0.01 here); the exact waits are proven
with a fake clock in test_fault_timing.py. docs/reliability.md lists these cases as guarantees.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import EXIT_INCOMPLETE, main
from auditor.collect import live
from tests.azure_server import (
    ARM_CHALLENGE,
    AzureServer,
    Recorded,
    Reply,
    any_request,
    arm_error,
    environment_row,
    graph_query,
    http_date,
    job_row,
    logs_error,
    repeat_last_row,
    role_assignment_row,
    role_definition_row,
    rotate_token,
    serve,
    served_rows,
    subscription_id,
    system_identity,
)

SUB_A, SUB_B = subscription_id(0xA), subscription_id(0xB)
JOBS = "microsoft.app/jobs"
ENVIRONMENTS = "microsoft.app/managedenvironments"
ROLE_DEFINITIONS = "microsoft.authorization/roledefinitions"
WORKSPACE = "f0e1d2c3-0000-4000-8000-00000000000a"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
AS_OF = "2025-06-01T00:00:00Z"
JOBS_EACH = 5
BOTH = f"subscriptions {SUB_A}, {SUB_B}"
LA = "Log Analytics executions"
API = "Container Apps executions API"


def _graph_sources() -> list[str]:
    """Every resource query a live scan runs (after the subscription enumeration)."""
    queries = getattr(live, "QUERIES", None) or live.RESOURCE_QUERIES
    return [f"Resource Graph {q.name}" for q in queries]


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AzureServer]:
    with serve(monkeypatch, tmp_path) as server:
        _estate(server)
        yield server


def _estate(azure: AzureServer) -> None:
    """Two subscriptions of five jobs each, served four rows a page, so every query pages.

    SUB_A's environment logs to a workspace (history from Log Analytics); SUB_B's to Azure
    Monitor (history from the executions API).
    """
    graph = azure.resource_graph
    graph.max_page_rows = 4
    for sub in (SUB_A, SUB_B):
        graph.add_subscription(sub)
        graph.add("resources", *(job_row(sub, f"job-{n}", identity=system_identity(
            f"5f1c7a0e-0000-4000-8000-0000000{sub[7]}000{n}")) for n in range(JOBS_EACH)))
    env_a = environment_row(SUB_A, workspace=WORKSPACE)
    env_b = environment_row(SUB_B)
    env_b["properties"]["appLogsConfiguration"] = {"destination": "azure-monitor"}
    graph.add("resources", env_a, env_b)
    graph.add("authorizationresources", role_definition_row(READER, "Reader"),
              role_assignment_row(SUB_A, "5f1c7a0e-0000-4000-8000-0000000a0000", READER))
    for sub in (SUB_A, SUB_B):  # no executions, but known (SUB_A's when its logs are unknown)
        for n in range(JOBS_EACH):
            azure.executions.add(job_row(sub, f"job-{n}")["id"])


@dataclass(frozen=True)
class Case:
    """One fault: how to script it, what settings the scan runs with, what must come out."""

    id: str
    arrange: Callable[[AzureServer], None]
    # None: the scan recovers, complete. Otherwise the exact (source, scope) of every gap.
    gaps: set[tuple[str, str]] | None = None
    reason: str = ""  # text every gap's reason holds
    settings: dict[str, Any] = field(default_factory=dict)
    # Gaps whose scope and reason are checked loosely (history of jobs that depend on timing).
    loose_sources: frozenset[str] = frozenset()
    check: Callable[[AzureServer, Path], None] | None = None


def _throttle_jobs(times: int | None, **headers: str) -> Callable[[AzureServer], None]:
    def arrange(azure: AzureServer) -> None:
        azure.faults.reply(graph_query(JOBS), arm_error(
            429, "RateLimiting", "Please retry later.", **headers), times=times)
    return arrange


def _reply(match: Callable[[Recorded], bool], reply: Reply,
           times: int | None = 1) -> Callable[[AzureServer], None]:
    return lambda azure: azure.faults.reply(match, reply, times=times) and None


def _reset(match: Callable[[Recorded], bool],
           times: int | None = 1) -> Callable[[AzureServer], None]:
    return lambda azure: azure.faults.reset(match, times=times) and None


def _slow(match: Callable[[Recorded], bool], seconds: float,
          times: int | None = 1) -> Callable[[AzureServer], None]:
    return lambda azure: azure.faults.delay(match, seconds, times=times) and None


def _expire_token_mid_scan(azure: AzureServer) -> None:
    azure.faults.before(graph_query(JOBS, with_skip_token=True), lambda _: rotate_token(azure))


def _revoke_token_mid_scan(azure: AzureServer) -> None:
    def revoke(_: Recorded) -> None:
        azure.token = "revoked-" + azure.token  # az keeps handing out the refused token
    azure.faults.before(graph_query(JOBS, with_skip_token=True), revoke)


def _subscription_vanishes(azure: AzureServer) -> None:
    azure.faults.before(graph_query(JOBS, with_skip_token=True),
                        lambda _: azure.resource_graph.denied_subscriptions.add(SUB_B))


def _duplicates_across_pages(azure: AzureServer) -> None:
    azure.faults.transform(graph_query(JOBS), repeat_last_row())


def _no_duplicates(azure: AzureServer, out: Path) -> None:
    ids = [j["id"] for j in _snapshot_jobs(out)]
    assert len(ids) == len(set(ids)) == 2 * JOBS_EACH
    assert len(served_rows(azure, JOBS)) > len(ids)  # the server did repeat rows
    queries = json.loads((out / "findings.json").read_text())["scan"]["coverage"]["queries"]
    assert next(q for q in queries if q["name"] == "jobs")["duplicates_dropped"] > 0


def _one_fresh_token(azure: AzureServer, out: Path) -> None:
    assert azure.az is not None
    arm = [r for r in azure.az.resources_asked() if "management" in r]
    assert len(arm) >= 2  # a second token was asked for after the 401


def _no_registration(azure: AzureServer, out: Path) -> None:
    assert not [r for r in azure.requests if r.method != "GET" and "/register" in r.path]
    assert {r.method for r in azure.requests} <= {"GET", "POST"}


def _jobs_kept_after_truncation(azure: AzureServer, out: Path) -> None:
    assert 0 < len(_snapshot_jobs(out)) < 2 * JOBS_EACH


CASES = [
    # --- throttling -----------------------------------------------------------------------
    Case("429-storm-retry-after-seconds", _throttle_jobs(4, **{"Retry-After": "7"})),
    Case("429-storm-retry-after-http-date", _throttle_jobs(4, **{"Retry-After": http_date(5)})),
    Case("429-storm-retry-after-unreadable", _throttle_jobs(4, **{"Retry-After": "soon"})),
    Case("429-storm-quota-at-zero", _throttle_jobs(4, **{
        "x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:03"})),
    Case("429-beyond-the-retries", _throttle_jobs(None), gaps={("Resource Graph jobs", BOTH)},
         reason="RateLimiting (HTTP 429)"),
    Case("429-beyond-the-retries-with-retry-after", _throttle_jobs(None, **{"Retry-After": "1"}),
         gaps={("Resource Graph jobs", BOTH)}, reason="RateLimiting (HTTP 429)"),
    # --- server errors --------------------------------------------------------------------
    Case("500-twice", _reply(graph_query(JOBS), arm_error(500, "InternalServerError", "Oops."),
                             times=2)),
    Case("502-once", _reply(graph_query(JOBS, with_skip_token=True),
                            arm_error(502, "BadGateway", "Bad gateway."))),
    Case("503-always", _reply(graph_query(ENVIRONMENTS), arm_error(
        503, "ServiceUnavailable", "The service is unavailable."), times=None),
         gaps={("Resource Graph environments", BOTH)}, reason="ServiceUnavailable (HTTP 503)"),
    # --- no response ----------------------------------------------------------------------
    Case("connection-reset-once", _reset(graph_query(JOBS, with_skip_token=True))),
    Case("connection-reset-always", _reset(graph_query(ROLE_DEFINITIONS), times=None),
         gaps={("Resource Graph role-definitions", BOTH)}, reason="(no response)"),
    Case("slow-reply-once", _slow(graph_query(JOBS, with_skip_token=True), 3.0),
         settings={"read_timeout_seconds": 0.5}),
    Case("slow-reply-always", _slow(graph_query(ROLE_DEFINITIONS), 3.0, times=None),
         gaps={("Resource Graph role-definitions", BOTH)}, reason="(no response)",
         settings={"read_timeout_seconds": 0.5, "max_retries": 1}),
    # --- sign-in --------------------------------------------------------------------------
    Case("token-expires-mid-scan", _expire_token_mid_scan, check=_one_fresh_token),
    Case("token-revoked-mid-scan", _revoke_token_mid_scan,
         gaps={(source, BOTH) for source in _graph_sources()},
         reason="rejected the token", loose_sources=frozenset({LA, API})),
    # --- results --------------------------------------------------------------------------
    Case("result-truncated", lambda azure: azure.resource_graph.truncate_types.add(JOBS),
         gaps={("Resource Graph jobs", BOTH)}, reason="ResultTruncated",
         loose_sources=frozenset({API}), check=_jobs_kept_after_truncation),
    Case("skip-token-rejected-once", _reply(graph_query(JOBS, with_skip_token=True), arm_error(
        400, "BadRequest", "The skip token is invalid or expired."))),
    Case("skip-token-rejected-always", _reply(graph_query(JOBS, with_skip_token=True), arm_error(
        400, "BadRequest", "The skip token is invalid or expired."), times=None),
         gaps={("Resource Graph jobs", BOTH)}, reason="rows read before the failure are kept",
         loose_sources=frozenset({API})),
    Case("duplicate-rows-across-pages", _duplicates_across_pages, check=_no_duplicates),
    Case("subscription-disappears-between-pages", _subscription_vanishes,
         gaps={(source, f"subscription {SUB_B}") for source in _graph_sources()},
         reason="AuthorizationFailed (HTTP 403)"),
    # --- execution history ----------------------------------------------------------------
    Case("log-analytics-500-always", lambda azure: azure.log_analytics.script(
        WORKSPACE, lambda q: logs_error(500, "InternalServerError", "Something broke.")),
         gaps={(LA, f"Log Analytics workspace {WORKSPACE}")}, reason="(HTTP 500)"),
    Case("log-analytics-reset-once", _reset(any_request("POST", "/v1/workspaces/"))),
    Case("log-analytics-token-expires", lambda azure: azure.faults.before(
        any_request("POST", "/v1/workspaces/"), lambda _: rotate_token(azure)),
         check=_one_fresh_token),
    Case("executions-api-503-once", _reply(any_request("GET", "/executions"), arm_error(
        503, "ServiceUnavailable", "Try again."))),
    Case("executions-api-401-once", _reply(any_request("GET", "/executions"), arm_error(
        401, "ExpiredAuthenticationToken", "The access token expiry has passed.",
        **ARM_CHALLENGE))),
    Case("executions-api-provider-not-registered", _reply(
        any_request("GET", "/executions"), arm_error(
            409, "MissingSubscriptionRegistration",
            "The subscription is not registered to use namespace 'Microsoft.App'."),
        times=None),
         gaps={(API, f"job {job_row(SUB_B, f'job-{n}')['id']}") for n in range(JOBS_EACH)},
         reason="MissingSubscriptionRegistration (HTTP 409)", check=_no_registration),
    # --- the deadline ---------------------------------------------------------------------
    # Jobs pages take 1.2 s each; the deadline (3 s) passes while the third is awaited.
    Case("deadline-passes-mid-scan", _slow(graph_query(JOBS), 1.2, times=None),
         gaps={(source, BOTH) for source in _graph_sources()},
         reason="", settings={"deadline_seconds": 3.0},
         loose_sources=frozenset({LA, API, "Resource Graph jobs"})),
]


def _config(tmp_path: Path, settings: dict[str, Any]) -> Path:
    values = {"max_retries": 4, "max_retry_wait_seconds": 0.01, "read_timeout_seconds": 10.0,
              **settings}
    path = tmp_path / "auditor.toml"
    path.write_text("[azure]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    return path


def _snapshot_jobs(out: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        (out / "snapshot" / "resource-graph-jobs.json").read_text())["data"]
    return rows


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault(case: Case, azure: AzureServer, tmp_path: Path,
               capsys: pytest.CaptureFixture[str]) -> None:
    case.arrange(azure)
    out = tmp_path / "out"

    code = main(["scan", "--auth", "cli", "--subscription", SUB_A, "--subscription", SUB_B,
                 "--config", str(_config(tmp_path, case.settings)), "--as-of", AS_OF,
                 "--out", str(out)])

    err = capsys.readouterr().err
    scan = json.loads((out / "findings.json").read_text())["scan"]
    gaps = scan["coverage"]["gaps"]
    served = {row["id"] for row in served_rows(azure, JOBS)}
    kept = {row["id"] for row in _snapshot_jobs(out)}
    assert served <= kept, "a job row Azure sent is missing from the evidence"
    findings = json.loads((out / "findings.json").read_text())["findings"]
    assert {f["resource_id"] for f in findings} <= kept
    if case.gaps is None:
        assert code in (0, 1), err
        assert scan["complete"] is True and gaps == [], gaps
        assert len(kept) == 2 * JOBS_EACH
    else:
        assert code == EXIT_INCOMPLETE, err
        assert "INCOMPLETE" in err
        assert scan["complete"] is False
        assert "INCOMPLETE" in (out / "report.md").read_text().upper()
        strict = {(g["source"], g["scope"]) for g in gaps
                  if g["source"] not in case.loose_sources}
        assert strict == {g for g in case.gaps if g[0] not in case.loose_sources}, gaps
        assert all(case.reason in g["reason"] for g in gaps
                   if g["source"] not in case.loose_sources), gaps
        assert all(g["reason"] for g in gaps)
    if case.check is not None:
        case.check(azure, out)
