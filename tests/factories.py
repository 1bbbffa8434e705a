"""Build realistic rows (the shapes of ../shared/azure-payloads) and the records made from them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from auditor.check import Context
from auditor.model import Estate, Job
from auditor.normalize import job_from_row
from auditor.settings import load_settings

SUB = "6f1e3c2a-0b7d-4c55-9a3e-2d8f0c1b7a10"
RG = "rg-batch"
GROUP_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}"
ENV_ID = f"{GROUP_ID}/providers/Microsoft.App/managedEnvironments/env-prod"
UAMI = f"{GROUP_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-batch"
AS_OF = datetime(2026, 11, 20, tzinfo=UTC)


def job_row(name: str = "nightly-export", **changes: Any) -> dict[str, Any]:
    """A compliant job as `az containerapp job show` returns it; `changes` patch dotted paths.

    `job_row(**{"properties.configuration.replicaTimeout": 99999})` sets one field;
    a value of `DELETE` removes it.
    """
    row: dict[str, Any] = {
        "id": f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.App/jobs/{name}",
        "name": name,
        "type": "Microsoft.App/jobs",
        "location": "West Europe",
        "tags": {"owner": "team-data@contoso.com", "cost-center": "CC-1042",
                 "environment": "prod"},
        "identity": {
            "type": "UserAssigned",
            "userAssignedIdentities": {UAMI: {
                "principalId": "5b1f0c7e-9a1d-4e55-8d0b-3c2a1f6e9d40",
                "clientId": "0c9e2d4b-1f3a-4b6c-9e8d-7a5b3c1d2e0f"}},
        },
        "properties": {
            "provisioningState": "Succeeded",
            "environmentId": ENV_ID,
            "configuration": {
                "replicaTimeout": 1800,
                "replicaRetryLimit": 1,
                "triggerType": "Schedule",
                "scheduleTriggerConfig": {"cronExpression": "0 2 * * *", "parallelism": 1,
                                          "replicaCompletionCount": 1},
                "secrets": [{"name": "db-password",
                             "keyVaultUrl": "https://kv-contoso.vault.azure.net/secrets/db",
                             "identity": UAMI}],
                "registries": [{"server": "contosoacr.azurecr.io", "identity": UAMI}],
            },
            "template": {
                "containers": [{
                    "image": "contosoacr.azurecr.io/etl/export:1.4.2",
                    "name": "export",
                    "resources": {"cpu": 0.5, "memory": "1Gi"},
                    "env": [{"name": "LOG_LEVEL", "value": "info"},
                            {"name": "DB_PASSWORD", "secretRef": "db-password"}],
                }],
            },
        },
    }
    for path, value in changes.items():
        _patch(row, path.split("."), value)
    return row


DELETE = object()


def _patch(node: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        node = node.setdefault(key, {})
    if value is DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = copy.deepcopy(value)


def make_job(**changes: Any) -> Job:
    job = job_from_row(job_row(**changes), "test.json")
    assert job is not None
    return job


def make_context(estate: Estate | None = None, **policy: Any) -> Context:
    settings = load_settings(overrides={"policy": policy} if policy else None)
    return Context(policy=settings.policy, estate=estate or Estate(), as_of=AS_OF)
