"""The tool itself asks for nothing but reads: proven on the wire during a full live scan.

Reader (and Log Analytics Reader) is all the scanning identity needs. The loopback Azure records
every request; the only ones allowed are the read-only query POSTs (Resource Graph, Log
Analytics) and GETs of the executions list. azure-mgmt's automatic resource-provider
registration (a POST .../register on a 409) is switched off in every ARM client.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.identity import AzureCliCredential
from azure.mgmt.core.policies import ARMAutoResourceProviderRegistrationPolicy

from auditor.cli import main
from auditor.collect.clouds import resolve
from auditor.collect.executions_api import ExecutionsApi
from auditor.collect.pipeline import NoAutoRegistration, registration_policies
from auditor.collect.resource_graph import Throttle, open_client
from tests.azure_server import (
    AzureServer,
    any_request,
    arm_error,
    environment_row,
    execution_log_row,
    execution_row,
    job_row,
    role_assignment_row,
    role_definition_row,
    serve,
    subscription_id,
)
from tests.collect.helpers import FakeTime, azure_settings

SUB_A, SUB_B = subscription_id(0x1EA), subscription_id(0x1EB)
WORKSPACE = "f0e1d2c3-0000-4000-8000-0000000001ea"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"

ALLOWED = [
    ("POST", re.compile(r"/providers/Microsoft\.ResourceGraph/resources", re.I)),
    ("POST", re.compile(r"/v1/workspaces/[^/]+/query", re.I)),
    ("GET", re.compile(r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.App/"
                       r"jobs/[^/]+/executions", re.I)),
]


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AzureServer]:
    with serve(monkeypatch, tmp_path) as server:
        yield server


def _estate(azure: AzureServer) -> None:
    graph = azure.resource_graph
    graph.max_page_rows = 2  # every query pages
    for sub in (SUB_A, SUB_B):
        graph.add_subscription(sub)
        graph.add("resources", *(job_row(sub, f"job-{n}") for n in range(3)))
    env_b = environment_row(SUB_B)
    env_b["properties"]["appLogsConfiguration"] = {"destination": "azure-monitor"}
    graph.add("resources", environment_row(SUB_A, workspace=WORKSPACE), env_b)
    graph.add("authorizationresources", role_definition_row(READER, "Reader"),
              role_assignment_row(SUB_A, "5f1c7a0e-0000-4000-8000-00000000a1ea", READER))
    azure.log_analytics.answer(WORKSPACE, [execution_log_row(
        "job-0", "job-0-x1", "2025-05-20T02:00:00Z", "2025-05-20T02:05:00Z")])
    for n in range(3):
        azure.executions.add(job_row(SUB_B, f"job-{n}")["id"], execution_row(
            f"job-{n}-y1", "Succeeded", "2025-05-21T02:00:00+00:00", "2025-05-21T02:01:00+00:00"))


def test_a_full_live_scan_sends_only_reads(azure: AzureServer, tmp_path: Path) -> None:
    _estate(azure)

    code = main(["scan", "--auth", "cli", "--subscription", SUB_A, "--subscription", SUB_B,
                 "--as-of", "2025-06-01T00:00:00Z", "--out", str(tmp_path / "out")])

    assert code in (0, 1)
    assert azure.requests
    outside = [(r.method, r.path) for r in azure.requests
               if not any(r.method == m and p.fullmatch(r.path) for m, p in ALLOWED)]
    assert outside == []
    seen = {(r.method, next(i for i, (m, p) in enumerate(ALLOWED)
                            if r.method == m and p.fullmatch(r.path))) for r in azure.requests}
    assert len(seen) == 3  # every kind of read was exercised
    graph_bodies = azure.graph_bodies()
    assert all(set(b) <= {"query", "subscriptions", "managementGroups", "options"}
               for b in graph_bodies)


def test_no_arm_client_can_register_a_resource_provider(
        azure: AzureServer, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = azure_settings(subscriptions=[SUB_A])
    endpoints = resolve(settings)
    time = FakeTime(requests_seen=lambda: 0)
    throttle = Throttle(time.sleep, time.clock, 1.0)
    credential = AzureCliCredential()

    graph = open_client(credential, endpoints, settings, throttle)
    found = registration_policies(graph)
    assert found and all(type(p) is NoAutoRegistration for p in found)
    with ExecutionsApi(credential, endpoints, settings, throttle) as api:
        client = api._client(SUB_A)
        found = registration_policies(client)
        assert found and all(type(p) is NoAutoRegistration for p in found)
    assert not any(type(p) is ARMAutoResourceProviderRegistrationPolicy for p in found)


def test_an_unregistered_provider_is_a_gap_not_a_registration(
        azure: AzureServer, tmp_path: Path) -> None:
    _estate(azure)
    azure.faults.reply(any_request("GET", "/executions"), arm_error(
        409, "MissingSubscriptionRegistration",
        "The subscription is not registered to use namespace 'Microsoft.App'."), times=None)

    code = main(["scan", "--auth", "cli", "--subscription", SUB_A, "--subscription", SUB_B,
                 "--as-of", "2025-06-01T00:00:00Z", "--out", str(tmp_path / "out")])

    assert code == 3
    assert not [r for r in azure.requests if "register" in r.path.lower()]
    assert {r.method for r in azure.requests} <= {"GET", "POST"}
