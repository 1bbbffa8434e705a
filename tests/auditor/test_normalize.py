"""Normalization over Microsoft's published payloads, in every export shape people produce."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from auditor.model import TriggerType
from auditor.normalize import (
    NORMALIZED_WHILE_READING,
    execution_from_row,
    job_from_row,
    memory_gib,
    normalize,
)
from auditor.snapshot import EXECUTIONS, read_snapshot, write_rows
from tests.factories import job_row

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "azure-payloads"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"Microsoft's payload examples are not at {SHARED}")


def body(name: str) -> Any:
    return json.loads((SHARED / name).read_text())["responses"]["200"]["body"]


def items_of(name: str) -> list[dict[str, Any]]:
    document = body(name)
    return document.get("value", [document])


def graph_row(item: dict[str, Any]) -> dict[str, Any]:
    """What Resource Graph returns for the same resource: lower-case type, extra columns."""
    parts = item["id"].split("/")
    return {**item, "type": item["type"].lower(), "subscriptionId": parts[2],
            "resourceGroup": parts[4].lower(), "tenantId": None, "kind": "", "managedBy": "",
            "sku": None, "plan": None, "tags": item.get("tags"), "zones": None,
            "extendedLocation": None, "identity": item.get("identity")}


def as_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns = sorted({k for r in rows for k in r})
    return {"totalRecords": len(rows), "count": len(rows), "resultTruncated": "false",
            "facets": [], "data": {"columns": [{"name": c, "type": "object"} for c in columns],
                                   "rows": [[r.get(c) for c in columns] for r in rows]}}


SHAPES = {
    "az-graph-query": lambda rows: {"count": len(rows), "data": [graph_row(r) for r in rows],
                                    "skip_token": None, "total_records": len(rows)},
    "graph-rest-object-array": lambda rows: {
        "totalRecords": len(rows), "count": len(rows), "resultTruncated": "false", "facets": [],
        "data": [graph_row(r) for r in rows]},
    "graph-rest-table": lambda rows: as_table([graph_row(r) for r in rows]),
    "arm-list": lambda rows: {"value": rows, "nextLink": None},
    "json-array": lambda rows: rows,
}

JOB_PAYLOADS = ["Jobs_ListBySubscription.json", "Jobs_ListByResourceGroup.json", "Job_Get.json",
                "Job_CreateorUpdate.json", "Job_CreateorUpdate_EventTrigger.json",
                "Job_Patch.json"]


def scan_folder(tmp_path: Path, document: Any) -> Any:
    (tmp_path / "export.json").write_text(json.dumps(document))
    return normalize(read_snapshot(tmp_path))


@needs_shared
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("payload", JOB_PAYLOADS)
def test_jobs_in_every_shape(tmp_path: Path, payload: str, shape: str) -> None:
    items = [i for i in items_of(payload) if "id" in i]
    estate = scan_folder(tmp_path, SHAPES[shape](items))
    assert sorted(j.id for j in estate.jobs) == sorted(i["id"] for i in items)
    for job in estate.jobs:
        source = next(i for i in items if i["id"] == job.id)
        config = source["properties"]["configuration"]
        assert job.replica_timeout == config["replicaTimeout"]
        assert job.replica_retry_limit == config.get("replicaRetryLimit")
        assert job.subscription_id == "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
        assert job.resource_group is not None and job.resource_group.lower() == "rg"
        assert job.trigger_type is not None
        assert job.containers and {c.image for c in job.containers} == {
            c["image"] for k in ("containers", "initContainers")
            for c in source["properties"]["template"].get(k, [])}


@needs_shared
def test_single_resource_shape(tmp_path: Path) -> None:
    estate = scan_folder(tmp_path, body("Job_Get.json"))
    (job,) = estate.jobs
    assert job.identity is not None and job.identity.is_managed
    assert job.identity.principal_ids == ("24adfa4f-dedf-8dc0-ca29-b6d1a69ab319",
                                          "74adfa4f-dedf-8dc0-ca29-b6d1a69ab312")
    assert job.trigger_type is TriggerType.MANUAL
    assert job.parallelism == 4 and job.replica_completion_count == 1
    assert [c.is_init for c in job.containers or ()] == [True, False]


@needs_shared
def test_scheduled_quirk_reads_as_schedule(tmp_path: Path) -> None:
    estate = scan_folder(tmp_path, body("Jobs_ListBySubscription.json"))
    by_name = {j.name: j for j in estate.jobs}
    job = by_name["testcontainerappsjob1"]
    assert job.trigger_type_raw == "Scheduled"
    assert job.trigger_type is TriggerType.SCHEDULE
    assert job.cron_expression == "* * * * 5"
    assert job.parallelism == 5


@needs_shared
def test_event_trigger(tmp_path: Path) -> None:
    estate = scan_folder(tmp_path, body("Job_CreateorUpdate_EventTrigger.json"))
    (job,) = estate.jobs
    assert job.trigger_type is TriggerType.EVENT
    assert job.event_scale is not None
    assert (job.event_scale.min_executions, job.event_scale.max_executions) == (1, 5)
    (rule,) = job.event_scale.rules
    assert rule.type == "azure-servicebus" and rule.identity and rule.metadata["topicName"]


@needs_shared
@pytest.mark.parametrize("payload", ["Job_Executions_Get.json", "Job_Execution_Get.json"])
def test_executions_without_id_or_type(tmp_path: Path, payload: str) -> None:
    """The REST examples' executions carry neither id nor type: still recognised."""
    items = items_of(payload)
    estate = scan_folder(tmp_path, body(payload))
    assert [e.name for e in estate.executions] == [i["name"] for i in items]
    execution = estate.executions[0]
    assert execution.status == "Running"
    assert execution.start_time is not None and execution.start_time.tzinfo is not None
    assert execution.end_time is not None and execution.end_time > execution.start_time


@needs_shared
@pytest.mark.parametrize("shape", SHAPES)
def test_environment_in_every_shape(tmp_path: Path, shape: str) -> None:
    item = body("ManagedEnvironments_Get.json")
    estate = scan_folder(tmp_path, SHAPES[shape]([item]))
    (environment,) = estate.environments.values()
    assert environment.name == "jlaw-demo1"
    assert environment.infrastructure_subnet_id is not None
    assert environment.infrastructure_subnet_id.endswith("/subnets/subnetName1")
    assert environment.logs_destination is None


def test_execution_links_to_its_job() -> None:
    job_id = job_row()["id"]
    execution = execution_from_row({
        "id": f"{job_id}/executions/nightly-export-8f2k1", "name": "nightly-export-8f2k1",
        "type": "Microsoft.App/jobs/executions",
        "properties": {"status": "Succeeded", "startTime": "2026-11-01T02:00:00Z",
                       "endTime": "2026-11-01T02:10:00Z"}})
    assert execution is not None and execution.job_id == job_id


@pytest.mark.parametrize("row", [
    pytest.param({"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.App/jobs/bare",
                  "type": "microsoft.app/jobs"}, id="no-properties"),
    pytest.param({"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.App/jobs/odd",
                  "type": "microsoft.app/jobs", "tags": ["not", "a", "map"], "identity": 7,
                  "properties": {"configuration": "text", "template": None}}, id="wrong-types"),
    pytest.param({"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.App/jobs/nulls",
                  "type": "microsoft.app/jobs", "name": None, "tags": None, "identity": None,
                  "properties": {"configuration": {"replicaTimeout": None, "secrets": None,
                                                   "triggerType": None},
                                 "template": {"containers": None}}}, id="nulls"),
])
def test_odd_rows_still_become_jobs(row: dict[str, Any]) -> None:
    job = job_from_row(row)
    assert job is not None
    assert job.name == row["id"].rsplit("/", 1)[-1]
    assert job.subscription_id == "s" and job.resource_group == "g"
    if not isinstance(row.get("properties", {}).get("configuration"), dict):
        assert job.secrets is None and not job.has_configuration
    if not isinstance(row.get("properties", {}).get("template"), dict):
        assert job.containers is None


def test_duplicate_rows_across_files_count_once(tmp_path: Path) -> None:
    row = job_row()
    (tmp_path / "a.json").write_text(json.dumps([row]))
    (tmp_path / "b.json").write_text(json.dumps({"value": [row], "nextLink": None}))
    assert len(normalize(read_snapshot(tmp_path)).jobs) == 1


@pytest.mark.parametrize(("text", "gib"), [
    ("1Gi", 1.0), ("512Mi", 0.5), ("0.5Gi", 0.5), ("2G", 2e9 / 2**30), ("250Mb", 250e6 / 2**30),
    ("1024Ki", 1024 / 2**20), ("1Ti", 1024.0), ("nope", None), ("", None),
])
def test_memory_gib(text: str, gib: float | None) -> None:
    assert memory_gib(text) == (pytest.approx(gib) if gib is not None else None)


def test_executions_normalized_while_reading_equal_those_normalized_after(
        tmp_path: Path) -> None:
    job_id = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.App/jobs/nightly-export"
    rows = [{"id": f"{job_id}/executions/run-{i}", "name": f"run-{i}",
             "type": "Microsoft.App/jobs/executions",
             "properties": {"status": ["Succeeded", "Failed"][i % 2],
                            "startTime": f"2026-03-0{1 + i}T09:00:00Z",
                            "endTime": f"2026-03-0{1 + i}T09:05:00Z",
                            "reason": "DeadlineExceeded" if i == 3 else None}}
            for i in range(5)]
    write_rows(tmp_path, "executions", [*rows, rows[0]])  # a repeat is dropped either way
    write_rows(tmp_path, "jobs", [job_row("nightly-export")])
    after = normalize(read_snapshot(tmp_path))
    read = read_snapshot(tmp_path, convert=NORMALIZED_WHILE_READING)
    assert read.items[EXECUTIONS] == [] and len(read.records[EXECUTIONS]) == 6
    assert normalize(read) == after
    assert [e.name for e in after.executions] == [f"run-{i}" for i in range(5)]
    assert len({id(e.job_id) for e in after.executions}) == 1, "one string for the job's id"
