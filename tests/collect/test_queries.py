"""What collect() asks Resource Graph and how it pages, batches and scopes the answers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auditor.collect.live import QUERIES
from auditor.collect.resource_graph import RESOURCE_QUERIES, SUBSCRIPTIONS
from auditor.coverage import Coverage
from auditor.errors import CollectionError
from auditor.snapshot import JOBS, ROLE_DEFINITIONS, read_snapshot
from tests.azure_server import (
    AzureServer,
    environment_row,
    job_row,
    role_assignment_row,
    role_definition_row,
    subscription_id,
    system_identity,
)
from tests.collect.helpers import SUB_A, SUB_B, SUB_C, collection_record, written

Run = Callable[..., Coverage]
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


def _query_entry(coverage: Coverage, name: str) -> dict[str, Any]:
    return next(q for q in coverage.queries if q["name"] == name)


def _bodies_for(azure: AzureServer, text: str) -> list[dict[str, Any]]:
    return [b for b in azure.graph_bodies() if b["query"] == text]


def test_sends_only_resource_graph_posts_with_the_configured_contract(
        azure: AzureServer, run: Run) -> None:
    azure.resource_graph.add_subscription(SUB_A)
    run(subscriptions=[SUB_A], page_size=250)

    assert {(r.method, r.path) for r in azure.requests} == {
        ("POST", "/providers/Microsoft.ResourceGraph/resources")}
    assert {r.params["api-version"] for r in azure.requests} == {"2024-04-01"}
    for body in azure.graph_bodies():
        assert body["options"]["$top"] == 250
        assert body["options"]["resultFormat"] == "objectArray"
        assert "$skipToken" not in body["options"]
        assert body["subscriptions"] == [SUB_A]
    assert [b["query"] for b in azure.graph_bodies()] == [
        SUBSCRIPTIONS.text, *(q.text for q in QUERIES)]


def test_queries_filter_by_type_keep_whole_rows_and_page_in_id_order() -> None:
    for query in QUERIES:
        assert query.text.endswith("| order by id asc")
        assert "project" not in query.text and "join" not in query.text
        assert "limit" not in query.text and "take" not in query.text
    texts = {q.name: q.text for q in RESOURCE_QUERIES}
    assert texts["jobs"].startswith("resources | where type =~ 'microsoft.app/jobs'")
    assert texts["role-assignments"].startswith(
        "authorizationresources | where type =~ 'microsoft.authorization/roleassignments'")
    assert "properties.principalType =~ 'ServicePrincipal'" in texts["role-assignments"]
    assert "project id," in SUBSCRIPTIONS.text  # a projection must keep id, or paging stops


def test_rows_are_written_exactly_as_azure_returned_them(
        azure: AzureServer, run: Run, snapshot_dir: Path) -> None:
    graph = azure.resource_graph
    graph.add_subscription(SUB_A)
    jobs = [job_row(SUB_A, "nightly", identity=system_identity("5f1c0000-0000-4000-8000-1")),
            job_row(SUB_A, "hourly")]
    graph.add("resources", *jobs, environment_row(SUB_A))
    graph.add("authorizationresources", role_definition_row(READER, "Reader"),
              role_assignment_row(SUB_A, "5f1c0000-0000-4000-8000-1", READER),
              role_assignment_row(SUB_A, "0c0c0000-0000-4000-8000-2", READER,
                                  principal_type="User"))
    run(subscriptions=[SUB_A])

    assert written(snapshot_dir, "resource-graph-jobs") == sorted(jobs, key=lambda r: r["id"])
    assert written(snapshot_dir, "resource-graph-environments") == [environment_row(SUB_A)]
    assignments = written(snapshot_dir, "resource-graph-role-assignments")
    assert [a["properties"]["principalType"] for a in assignments] == ["ServicePrincipal"]
    assert written(snapshot_dir, "resource-graph-role-definitions") == [
        role_definition_row(READER, "Reader")]
    snapshot = read_snapshot(snapshot_dir)
    assert len(snapshot.items[JOBS]) == 2
    assert snapshot.coverage.complete


def test_follows_skip_tokens_through_short_pages_without_losing_or_repeating_rows(
        azure: AzureServer, run: Run, snapshot_dir: Path) -> None:
    graph = azure.resource_graph
    graph.add_subscription(SUB_A)
    jobs = [job_row(SUB_A, f"job-{n:03}") for n in range(230)]
    graph.add("resources", *jobs)
    graph.max_page_rows = 7  # Azure may return fewer rows than $top and still give a token

    coverage = run(subscriptions=[SUB_A], page_size=50)

    ids = [row["id"] for row in written(snapshot_dir, "resource-graph-jobs")]
    assert len(ids) == len(set(ids)) == 230
    assert set(ids) == {job["id"] for job in jobs}
    requests = _bodies_for(azure, RESOURCE_QUERIES[0].text)
    assert len(requests) == 33  # ceil(230 / 7)
    assert "$skipToken" not in requests[0]["options"]
    assert all(r["options"].get("$skipToken") for r in requests[1:])
    assert len({r["options"].get("$skipToken") for r in requests}) == 33
    entry = _query_entry(coverage, "jobs")
    assert (entry["pages"], entry["rows"], entry["duplicates_dropped"]) == (33, 230, 0)
    assert coverage.complete


@pytest.mark.parametrize(("per_request", "sizes"), [(100, [100, 100, 50]), (40, [40] * 6 + [10])])
def test_batches_subscriptions_per_request(
        azure: AzureServer, run: Run, snapshot_dir: Path, per_request: int,
        sizes: list[int]) -> None:
    subscriptions = [subscription_id(n) for n in range(1, 251)]
    for sub in subscriptions:
        azure.resource_graph.add_subscription(sub)
        azure.resource_graph.add("resources", job_row(sub, "job"))

    coverage = run(subscriptions=subscriptions, subscriptions_per_request=per_request)

    for query in (SUBSCRIPTIONS, *QUERIES):
        bodies = _bodies_for(azure, query.text)
        assert [len(b["subscriptions"]) for b in bodies] == sizes
        assert [s for b in bodies for s in b["subscriptions"]] == subscriptions
    assert max(len(b["subscriptions"]) for b in azure.graph_bodies()) <= 100
    jobs = written(snapshot_dir, "resource-graph-jobs")
    assert Counter(j["subscriptionId"] for j in jobs) == Counter(subscriptions)
    assert _query_entry(coverage, "jobs")["batches"] == len(sizes)
    assert _query_entry(coverage, "jobs")["subscriptions"] == 250


def test_without_a_scope_enumerates_the_tenant_then_queries_what_it_found(
        azure: AzureServer, run: Run, snapshot_dir: Path) -> None:
    graph = azure.resource_graph
    for sub in (SUB_A, SUB_B, SUB_C):
        graph.add_subscription(sub)
        graph.add("resources", job_row(sub, "job"))

    run()

    first, *rest = azure.graph_bodies()
    assert first["query"] == SUBSCRIPTIONS.text
    assert not first.get("subscriptions") and not first.get("managementGroups")
    assert rest and all(sorted(b["subscriptions"]) == sorted([SUB_A, SUB_B, SUB_C])
                        for b in rest)
    assert len(written(snapshot_dir, "resource-graph-jobs")) == 3
    subscriptions = written(snapshot_dir, "resource-graph-subscriptions")
    assert {s["subscriptionId"] for s in subscriptions} == {SUB_A, SUB_B, SUB_C}
    assert all(s["type"] == "microsoft.resources/subscriptions" for s in subscriptions)
    scope = collection_record(snapshot_dir)["scope"]
    assert scope["tenant"] is True
    assert sorted(scope["subscriptions_found"]) == sorted([SUB_A, SUB_B, SUB_C])


def test_a_tenant_with_no_readable_subscription_is_a_collection_error(
        azure: AzureServer, run: Run) -> None:
    with pytest.raises(CollectionError, match="no subscription"):
        run()


def test_management_group_scope_sends_management_groups(
        azure: AzureServer, run: Run, snapshot_dir: Path) -> None:
    graph = azure.resource_graph
    graph.management_groups = {"mg-prod": [SUB_A, SUB_B], "mg-dev": [SUB_C]}
    for sub in (SUB_A, SUB_B, SUB_C):
        graph.add_subscription(sub)
        graph.add("resources", job_row(sub, "job"))

    coverage = run(management_groups=["mg-prod"])

    bodies = azure.graph_bodies()
    assert len(bodies) == 1 + len(QUERIES)
    assert all(b["managementGroups"] == ["mg-prod"] and not b.get("subscriptions")
               for b in bodies)
    assert {j["subscriptionId"] for j in written(snapshot_dir, "resource-graph-jobs")} == {
        SUB_A, SUB_B}
    record = collection_record(snapshot_dir)
    assert record["scope"]["management_groups"] == ["mg-prod"]
    assert sorted(record["scope"]["subscriptions_found"]) == sorted([SUB_A, SUB_B])
    assert _query_entry(coverage, "jobs")["management_groups"] == 1
    assert coverage.complete


def test_tenant_level_rows_repeated_by_every_batch_are_kept_once(
        azure: AzureServer, run: Run, snapshot_dir: Path) -> None:
    subscriptions = [subscription_id(n) for n in range(1, 6)]
    for sub in subscriptions:
        azure.resource_graph.add_subscription(sub)
    azure.resource_graph.add("authorizationresources", role_definition_row(READER, "Reader"))

    coverage = run(subscriptions=subscriptions, subscriptions_per_request=2)

    assert written(snapshot_dir, "resource-graph-role-definitions") == [
        role_definition_row(READER, "Reader")]
    assert _query_entry(coverage, "role-definitions")["duplicates_dropped"] == 2
    assert len(read_snapshot(snapshot_dir).items[ROLE_DEFINITIONS]) == 1


def test_collection_record_names_the_scope_and_endpoint(
        azure: AzureServer, run: Run, snapshot_dir: Path) -> None:
    azure.resource_graph.add_subscription(SUB_A)
    coverage = run(subscriptions=[SUB_A])

    record = collection_record(snapshot_dir)
    assert record["format"] == 1
    assert record["cloud"] == "AzureCloud"
    assert record["arm_endpoint"] == azure.url
    assert record["arm_endpoint_source"] == "environment AUDITOR_ARM_ENDPOINT"
    assert record["started"] <= record["finished"]
    assert record["scope"]["subscriptions"] == [SUB_A]
    assert record["scope"]["subscriptions_found"] == [SUB_A]
    assert record["scope"]["subscriptions_not_read"] == []
    assert record["coverage"] == coverage.to_dict()
    assert [q["name"] for q in record["coverage"]["queries"]] == [
        "subscriptions", "jobs", "environments", "role-assignments", "role-definitions",
        "changes"]
