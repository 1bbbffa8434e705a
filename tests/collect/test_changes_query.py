"""The live scan reads the jobs' change records (Resource Graph `resourcechanges`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditor.collect.live import CHANGES, QUERIES
from auditor.coverage import Coverage
from auditor.normalize import normalize
from auditor.snapshot import CHANGES as CHANGE_TYPE
from auditor.snapshot import read_snapshot
from tests.azure_server import AzureServer, change_row, job_row, parse_query, subscription_id
from tests.collect.helpers import SUB_A, SUB_B, written

Run = Callable[..., Coverage]


def _job_id(subscription: str, name: str) -> str:
    return (f"/subscriptions/{subscription}/resourceGroups/rg-jobs/providers/"
            f"Microsoft.App/jobs/{name}")


def _ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _bodies(azure: AzureServer) -> list[dict[str, Any]]:
    return [b for b in azure.graph_bodies() if b["query"] == CHANGES.text]


def test_the_query_keeps_whole_rows_of_job_changes_for_14_days() -> None:
    assert CHANGES in QUERIES and CHANGES.name == "changes"
    text = CHANGES.text
    assert text.startswith("resourcechanges | where type =~ 'microsoft.resources/changes'")
    assert "properties.targetResourceType =~ 'microsoft.app/jobs'" in text
    assert "todatetime(properties.changeAttributes.timestamp)" in text
    assert "ago(14d)" in text
    assert text.endswith("| order by id asc")
    assert "project" not in text and "limit" not in text and "take" not in text
    parsed = parse_query(text)  # the stand-in serves exactly this subset
    assert parsed.table == "resourcechanges" and parsed.type_filter == CHANGE_TYPE


def test_change_rows_land_in_the_snapshot_as_azure_returned_them(
        azure: AzureServer, run: Run, snapshot_dir: Path) -> None:
    graph = azure.resource_graph
    graph.add_subscription(SUB_A)
    graph.add("resources", job_row(SUB_A, "nightly"))
    recent = [change_row(_job_id(SUB_A, "nightly"), _ago(2), changes={
                  "properties.configuration.replicaTimeout": {
                      "propertyChangeType": "Update", "changeCategory": "User",
                      "previousValue": "1800", "newValue": "3600"}}),
              change_row(_job_id(SUB_A, "gone"), _ago(1), "Delete")]
    too_old = change_row(_job_id(SUB_A, "nightly"), _ago(20))
    graph.add("resourcechanges", *recent, too_old)

    coverage = run(subscriptions=[SUB_A])

    rows = written(snapshot_dir, "resource-graph-changes")
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in recent)
    by_id = {r["id"]: r for r in rows}
    for row in recent:  # Azure's full row, plus the column the query's `extend` adds
        assert by_id[row["id"]] == {**row, "changeTime": row["properties"]["changeAttributes"][
            "timestamp"]}
    assert [b["subscriptions"] for b in _bodies(azure)] == [[SUB_A]]
    entry = next(q for q in coverage.queries if q["name"] == "changes")
    assert (entry["rows"], entry["requests"], entry["failed_scopes"]) == (2, 1, [])
    assert any(r.source == "Resource Graph changes" and r.rows == 2 for r in coverage.reads)
    assert coverage.complete

    estate = normalize(read_snapshot(snapshot_dir))
    assert [c.change_type for c in estate.changes] == ["Update", "Delete"]
    assert estate.changes[0].property_changes[0].after == "3600"


def test_the_changes_query_is_sent_once_per_batch(
        azure: AzureServer, run: Run, snapshot_dir: Path) -> None:
    subscriptions = [subscription_id(n) for n in range(1, 251)]
    for sub in subscriptions:
        azure.resource_graph.add_subscription(sub)
        azure.resource_graph.add("resourcechanges", change_row(_job_id(sub, "job"), _ago(3)))

    run(subscriptions=subscriptions, subscriptions_per_request=100)

    bodies = _bodies(azure)
    assert [len(b["subscriptions"]) for b in bodies] == [100, 100, 50]
    assert [s for b in bodies for s in b["subscriptions"]] == subscriptions
    assert len(written(snapshot_dir, "resource-graph-changes")) == 250


def test_changes_are_paged_like_every_other_query(
        azure: AzureServer, run: Run, snapshot_dir: Path) -> None:
    azure.resource_graph.add_subscription(SUB_A)
    azure.resource_graph.add("resourcechanges", *(
        change_row(_job_id(SUB_A, f"job-{n:02}"), _ago(1 + n / 10)) for n in range(25)))
    azure.resource_graph.max_page_rows = 10

    run(subscriptions=[SUB_A])

    assert len(_bodies(azure)) == 3
    assert len({r["id"] for r in written(snapshot_dir, "resource-graph-changes")}) == 25


def test_a_changes_query_that_cannot_be_read_in_full_is_a_gap(
        azure: AzureServer, run: Run, snapshot_dir: Path) -> None:
    for sub in (SUB_A, SUB_B):
        azure.resource_graph.add_subscription(sub)
        azure.resource_graph.add("resourcechanges", change_row(_job_id(sub, "job"), _ago(1)),
                                 change_row(_job_id(sub, "other"), _ago(2)))
    azure.resource_graph.truncate_types = {CHANGE_TYPE}

    coverage = run(subscriptions=[SUB_A, SUB_B])

    gaps = [g for g in coverage.gaps if g.source == "Resource Graph changes"]
    assert len(gaps) == 1 and "ResultTruncated" in gaps[0].reason
    assert not coverage.complete
    assert written(snapshot_dir, "resource-graph-changes")  # the rows read are kept
