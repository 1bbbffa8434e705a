"""Change records of jobs (Resource Graph `resourcechanges`): read in full, and never a secret.

Rows are built in Azure's published shape (tests.azure_server.change_row; sources cited in
auditor/changes.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from auditor.changes import CHANGED_HIDDEN, TRUNCATED, change_from_row, hidden, property_change
from auditor.model import Change
from auditor.normalize import normalize
from auditor.snapshot import CHANGES, KNOWN_TYPES, read_snapshot
from tests.azure_server import change_row

SUB = "3f7c2a9e-5b1d-4e8a-9c6f-0d2b7e4a1c35"
JOB = f"/subscriptions/{SUB}/resourceGroups/RG-Finance/providers/Microsoft.App/jobs/ledger"
OTHER_JOB = f"/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.App/jobs/other"

# Planted secrets: none of them may show, not even 5 characters in a row.
ACCOUNT_KEY = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS1ub3QtcmVhbC0xMjM0NTY3ODkw"
CONNECTION = (f"DefaultEndpointsProtocol=https;AccountName=contosodata;AccountKey={ACCOUNT_KEY};"
              "EndpointSuffix=core.windows.net")
PASSWORD = "Zq8rT3vLm9Xw2Kp"
SAS_SIG = "dGVzdC1zYXMtc2lnbmF0dXJlLW5vdC1yZWFs%3D"
SAS_URL = f"https://contosodata.blob.core.windows.net/raw?sv=2022-11-02&sp=rl&sig={SAS_SIG}"
JWT = ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0LXVzZXItMTIzNCJ9."
       "c2lnbmF0dXJlLWZvci10ZXN0cy1vbmx5")
PLANTED = (ACCOUNT_KEY, PASSWORD, SAS_SIG, JWT, "hunter2-but-longer")


def _leaks(text: str) -> list[str]:
    return [secret[i:i + 5] for secret in PLANTED for i in range(len(secret) - 4)
            if secret[i:i + 5] in text]


def _prop(before: Any, after: Any, kind: str = "Update", **extra: Any) -> dict[str, Any]:
    return {"propertyChangeType": kind, "changeCategory": "User", "previousValue": before,
            "newValue": after, **extra}


def _change(row: dict[str, Any]) -> Change:
    change = change_from_row(row, "changes.json")
    assert change is not None
    return change


# --- every field -----------------------------------------------------------------------------

def test_reads_every_field_of_a_change_row() -> None:
    row = change_row(JOB, "2026-11-06T09:12:44.5170000Z", changes={
        "properties.configuration.replicaTimeout": _prop("7200", "21600"),
        "tags.cost-center": _prop("CC-1", None, "Remove"),
        "tags.owner": _prop("null", "team-finance", "Insert"),
    }, changed_by="a.novak@contoso.com", client_type="ARM Template")
    change = _change(row)

    assert change.id == row["id"]
    assert change.id.endswith("/providers/Microsoft.Resources/changes/" + row["name"])
    assert change.resource_id == JOB
    assert change.resource_name == "ledger"
    assert change.subscription_id == SUB
    assert change.resource_group == "RG-Finance"  # as in the target id (the column is lowered)
    assert change.change_type == "Update"
    assert change.timestamp == datetime(2026, 11, 6, 9, 12, 44, 517000, tzinfo=UTC)
    assert change.changed_by == "a.novak@contoso.com"
    assert change.changed_by_type == "User"
    assert change.client_type == "ARM Template"
    assert change.operation == "Microsoft.App/jobs/write"
    assert change.correlation_id == row["properties"]["changeAttributes"]["correlationId"]
    assert change.changes_count == 3
    assert change.source == "changes.json"
    by_path = {p.path: p for p in change.property_changes}
    assert list(by_path) == sorted(by_path)
    timeout = by_path["properties.configuration.replicaTimeout"]
    assert (timeout.before, timeout.after, timeout.property_change_type,
            timeout.change_category, timeout.masked) == ("7200", "21600", "Update", "User", False)
    assert (by_path["tags.cost-center"].before, by_path["tags.cost-center"].after) == ("CC-1", None)
    # The spec's example writes the string "null" for a property that did not exist.
    assert (by_path["tags.owner"].before, by_path["tags.owner"].after) == (None, "team-finance")


def test_create_delete_and_system_changes_carry_no_property_changes() -> None:
    created = _change(change_row(JOB, "2026-11-12T10:05:41.336Z", "Create"))
    deleted = _change(change_row(JOB, "2026-11-12T16:47:21Z", "Delete"))
    system = _change(change_row(JOB, "2025-05-29T14:17:41.173Z", changes={
        "properties.provisioningState": {"previousValue": "InProgress", "newValue": "Succeeded",
                                         "changeCategory": "System",
                                         "propertyChangeType": "Update"}},
        changed_by="System", changed_by_type="System", client_type="Unspecified"))

    assert (created.change_type, created.property_changes, created.changes_count) == (
        "Create", (), 0)
    assert (deleted.change_type, deleted.operation) == ("Delete", "Microsoft.App/jobs/delete")
    assert (system.changed_by, system.changed_by_type, system.client_type) == (
        "System", "System", "Unspecified")
    assert system.property_changes[0].change_category == "System"


def test_rows_of_other_resource_types_or_without_a_target_are_left_out() -> None:
    other = change_row(JOB, "2026-11-06T09:12:44Z")
    other["properties"]["targetResourceType"] = "microsoft.app/managedenvironments"
    other["properties"]["targetResourceId"] = JOB.replace("jobs/ledger", "managedEnvironments/e")
    untargeted = change_row(JOB, "2026-11-06T09:12:44Z")
    del untargeted["properties"]["targetResourceId"]
    untyped = change_row(JOB, "2026-11-06T09:12:44Z")
    del untyped["properties"]["targetResourceType"]  # the id still says it is a job

    assert change_from_row(other) is None
    assert change_from_row(untargeted) is None
    assert change_from_row({"type": CHANGES}) is None
    assert _change(untyped).resource_id == JOB


def test_a_malformed_row_reads_as_unknowns_not_errors() -> None:
    row = change_row(JOB, "yesterday")
    row["properties"]["changeAttributes"].update(changesCount="many", changedBy=42)
    row["properties"]["changes"] = {"a.b": "not an object"}
    change = _change(row)
    assert change.timestamp is None and change.changes_count is None
    assert change.changed_by == "42"
    assert change.property_changes[0].before is None


# --- the snapshot and normalize ----------------------------------------------------------------

def test_exported_changes_are_recognised_in_every_export_shape(tmp_path: Path) -> None:
    first = change_row(JOB, "2026-11-08T22:41:07.88Z")
    second = change_row(OTHER_JOB, "2026-11-06T09:12:44Z", "Create")
    latest = change_row(JOB, "2026-11-19T16:30:05Z")
    (tmp_path / "graph.json").write_text(json.dumps(
        {"count": 2, "data": [first, second], "skip_token": None, "total_records": 2}))
    arm = {**latest, "type": "Microsoft.Resources/changes"}  # the ARM changes API spells it so
    (tmp_path / "arm.json").write_text(json.dumps({"value": [arm, first], "nextLink": None}))

    raw = read_snapshot(tmp_path)
    estate = normalize(raw)

    assert CHANGES in KNOWN_TYPES
    assert len(raw.items[CHANGES]) == 4 and not raw.other_types
    assert [c.id for c in estate.changes] == [second["id"], first["id"], latest["id"]]


def test_an_estate_without_change_rows_has_no_changes(tmp_path: Path) -> None:
    (tmp_path / "jobs.json").write_text(json.dumps({"value": []}))
    assert normalize(read_snapshot(tmp_path)).changes == ()


# --- masking -------------------------------------------------------------------------------------

C = "properties.template.containers[0]"
SCALE = "properties.configuration.eventTriggerConfig.scale"


@pytest.mark.parametrize(("path", "value"), [
    (f"{C}.env[0].value", CONNECTION),
    (f"{C}.env[0].value", "harmless-looking"),  # an env value is hidden whatever it is
    ("properties.template.initContainers[0].env[2].value", PASSWORD),
    ("properties.configuration.secrets[0].value", PASSWORD),
    (f"{C}.args[1]", f"--container-url '{SAS_URL}'"),
    (f"{C}.args", json.dumps(["--token", JWT])),
    (f"{C}.command[0]", f"sh -c 'curl -H \"Authorization: Bearer {JWT}\"'"),
    (f"{SCALE}.rules[0].metadata.connection", CONNECTION),
    (f"{SCALE}.rules[0].metadata.queueName", "orders"),
    (f"{C}.probes[0].httpGet.httpHeaders[0].value", "Basic aHVudGVyMi1idXQtbG9uZ2Vy"),
])
def test_values_under_sensitive_paths_are_masked(path: str, value: str) -> None:
    change = property_change(path, _prop("previous-" + value, value))
    assert change.masked
    assert change.before is not None and change.after is not None
    assert "****" in change.before
    assert change.after == CHANGED_HIDDEN or "****" in change.after
    assert not _leaks(f"{change.before} {change.after}")
    if len(value) >= 8:
        assert value not in f"{change.before} {change.after}"


@pytest.mark.parametrize("path", [f"{C}.env[0].name", f"{C}.env[3].secretRef",
                                  "properties.configuration.secrets[1].name",
                                  "properties.configuration.secrets[0].keyVaultUrl"])
def test_names_and_references_under_sensitive_paths_are_shown(path: str) -> None:
    change = property_change(path, _prop(None, "DB_PASSWORD-ref", "Insert"))
    assert (change.before, change.after, change.masked) == (None, "DB_PASSWORD-ref", False)


def test_a_whole_array_or_object_is_shown_with_its_secret_leaves_masked() -> None:
    env = [{"name": "STORAGE", "value": CONNECTION}, {"name": "DB", "secretRef": "db-password"}]
    template = {"containers": [{"image": "contoso.azurecr.io/app:1.0", "env": env,
                                "args": ["--password", PASSWORD]}]}
    as_string = property_change(f"{C}.env", _prop("[]", json.dumps(env)))
    as_object = property_change("properties.template", _prop(None, template, "Insert"))

    for change in (as_string, as_object):
        assert change.masked and change.after is not None
        assert not _leaks(change.after)
        assert '"STORAGE"' in change.after and '"db-password"' in change.after
    assert as_string.before == "[]"
    assert "contoso.azurecr.io/app:1.0" in (as_object.after or "")


@pytest.mark.parametrize(("path", "value"), [
    ("tags.note", CONNECTION),
    ("tags.deploy-url", SAS_URL),
    ("tags.api-token", "hunter2-but-longer"),  # a credential-like name and a non-trivial value
    ("properties.configuration.registries[0].server", f"https://ci:{PASSWORD}@registry.example"),
    ("properties.template.containers[0].image", JWT),
])
def test_credential_like_values_elsewhere_are_masked(path: str, value: str) -> None:
    change = property_change(path, _prop("x", value))
    assert change.masked and change.after is not None and "****" in change.after
    assert not _leaks(f"{change.path} {change.before} {change.after}")


def test_a_credential_in_a_path_segment_is_masked() -> None:
    change = property_change(f"tags.{JWT}", _prop(None, "yes", "Insert"))
    assert change.masked and not _leaks(change.path)
    assert change.path.startswith("tags")


def test_ordinary_values_are_shown_as_they_are() -> None:
    for path, before, after in [
        (f"{C}.image", "mcr.microsoft.com/azure-cli:2.67.0", "mcr.microsoft.com/azure-cli:latest"),
        ("properties.configuration.replicaTimeout", "7200", "21600"),
        ("properties.configuration.secrets[0].keyVaultUrl",
         "https://kv-a.vault.azure.net/secrets/db/5f0c2d8e41a94b7c9e3a6f1b2d4c8e07",
         "https://kv-a.vault.azure.net/secrets/db"),
        ("tags.owner", "team-a@contoso.com", '=HYPERLINK("http://example.invalid","x")'),
        (f"{SCALE}.maxExecutions", "20", "100"),
        (f"{SCALE}.rules[0].auth[0].secretRef", "queue-connection", "queue-connection-2"),
    ]:
        change = property_change(path, _prop(before, after))
        assert (change.path, change.before, change.after, change.masked) == (
            path, before, after, False)


def test_truncated_values_say_so() -> None:
    change = property_change("tags.note", _prop("a", "b" * 10, isTruncated="true"))
    assert change.after == "b" * 10 + TRUNCATED


def test_actor_fields_that_look_like_credentials_are_masked() -> None:
    change = _change(change_row(JOB, "2026-11-06T09:12:44Z", changed_by=JWT,
                                client_type=f"AccountKey={ACCOUNT_KEY}"))
    assert change.changed_by and "****" in change.changed_by
    assert not _leaks(f"{change.changed_by} {change.client_type}")


def test_no_planted_secret_survives_anywhere_in_a_change() -> None:
    row = change_row(JOB, "2026-11-06T09:12:44Z", changes={
        f"{C}.env[0].value": _prop(None, CONNECTION, "Insert"),
        f"{C}.env": _prop("[]", json.dumps([{"name": "P", "value": PASSWORD}])),
        f"{C}.args[0]": _prop(SAS_URL, SAS_URL + "&x=1"),
        "tags.token": _prop(None, JWT, "Insert"),
        f"{SCALE}.rules[0].metadata.password": _prop(PASSWORD, "hunter2-but-longer"),
    })
    assert not _leaks(repr(_change(row)))


@pytest.mark.parametrize(("names", "expected"), [
    (["properties", "template", "containers", "env", "value"], True),
    (["properties", "template", "containers", "env", "name"], False),
    (["properties", "template", "containers", "env", "secretref"], False),
    (["properties", "template", "containers", "env"], True),
    (["properties", "configuration", "secrets", "keyvaulturl"], False),
    (["properties", "configuration", "secrets"], True),
    (["properties", "template", "containers", "args"], True),
    (["properties", "template", "containers", "command"], True),
    (["properties", "configuration", "eventtriggerconfig", "scale", "rules", "metadata", "name"],
     True),
    (["properties", "template", "containers", "image"], False),
])
def test_which_paths_are_hidden(names: list[str], expected: bool) -> None:
    assert hidden(names) is expected
