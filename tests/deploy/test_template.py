"""deploy/main.json: valid, deployable with the example parameters, least-privileged, and the job
it defines passes auditor's own checks.

The schema check uses tests/deploy/deployment-template.schema.json (see its description for what
it covers). The other tests expand the template offline with tests/deploy/arm.py, the way ARM
would at deployment time, turn the resources into the rows Resource Graph returns for them once
deployed, and scan those rows with the real scan pipeline.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from auditor.check import Status
from auditor.scan import ScanRequest, run_scan
from auditor.settings import load_settings
from auditor.upload import parse_upload_url
from checks.identity import PRIVILEGED_BUILT_IN_ROLES
from tests.deploy.arm import ArmError, Deployed, Target, expand

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SCHEMA = json.loads((Path(__file__).with_name("deployment-template.schema.json")).read_text())
TEMPLATE = json.loads((DEPLOY / "main.json").read_text())
EXAMPLE = {k: v["value"] for k, v in
           json.loads((DEPLOY / "main.parameters.json").read_text())["parameters"].items()}

SUBSCRIPTION = "3f7c2a9e-5b1d-4c8e-9a2f-0d6b7e8c1a23"
TARGET = Target(SUBSCRIPTION, "rg-auditor", "westeurope")
# What Azure assigns when the resources are created (example values).
PRINCIPAL = "6a1d9c2e-0b7f-4e3a-8c5d-2f9e1b4a7c60"
CLIENT = "0e4b8f21-7c3d-4a96-b5e2-9d1f6a3c8b47"
WORKSPACE_CUSTOMER = "b3c1e5f7-2a4d-4e6b-8c9a-1d3f5b7e9a02"
AS_OF = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
LOG_ANALYTICS_READER = "73c42c96-874c-492b-b04d-ab87d138a893"
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"


def _runtime(resource: Deployed) -> dict[str, Any]:
    kind = resource.type.lower()
    if kind == "microsoft.managedidentity/userassignedidentities":
        return {"principalId": PRINCIPAL, "clientId": CLIENT,
                "tenantId": TARGET.tenant_id}
    if kind == "microsoft.operationalinsights/workspaces":
        return {"customerId": WORKSPACE_CUSTOMER, "keys": {"primarySharedKey": "example-key"}}
    if kind == "microsoft.storage/storageaccounts":
        return {"primaryEndpoints": {"blob": f"https://{resource.name}.blob.core.windows.net/"}}
    raise ArmError(f"no runtime values for {resource.type}")


def deploy(**overrides: Any) -> list[Deployed]:
    """Every resource the deployment creates, nested deployments' resources included."""
    flat: list[Deployed] = []

    def walk(resources: list[Deployed]) -> None:
        for resource in resources:
            flat.append(resource)
            walk(resource.nested)

    walk(expand(TEMPLATE, {**EXAMPLE, **overrides}, TARGET, _runtime))
    return flat


def _of_type(resources: list[Deployed], kind: str) -> list[Deployed]:
    return [r for r in resources if r.type.lower() == kind.lower()]


# --- the file ----------------------------------------------------------------------------------

def test_main_json_is_valid_against_the_schema() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(TEMPLATE)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("mutate", [
    lambda t: _job(t)["properties"]["configuration"].update(replicaTimout=7200),
    lambda t: _job(t)["properties"]["configuration"].update(triggerType="Cron"),
    lambda t: _job(t)["properties"]["template"]["containers"][0].pop("resources"),
    lambda t: t["parameters"]["cpu"].update(type="float"),
    lambda t: t.update(languageVersion="2.0"),
    lambda t: _nested(t)["properties"].update(mode="Replace"),
    lambda t: _nested(t)["properties"]["template"]["resources"][0]["properties"].update(
        principalType="Robot"),
], ids=["misspelt property", "bad enum", "missing resources", "bad parameter type",
        "unknown top-level key", "nested deployment mode", "inside a nested template"])
def test_the_schema_rejects_broken_templates(mutate: Any) -> None:
    broken = copy.deepcopy(TEMPLATE)
    mutate(broken)
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(broken))


def _job(template: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in template["resources"] if r["type"] == "Microsoft.App/jobs")


def _nested(template: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in template["resources"] if r["type"] == "Microsoft.Resources/deployments")


def test_parameters_file_matches_the_template() -> None:
    parameters = json.loads((DEPLOY / "main.parameters.json").read_text())
    assert parameters["$schema"].endswith("/2019-04-01/deploymentParameters.json#")
    assert set(parameters["parameters"]) <= set(TEMPLATE["parameters"])
    required = {n for n, p in TEMPLATE["parameters"].items() if "defaultValue" not in p}
    assert required <= set(parameters["parameters"])


# --- deployment -------------------------------------------------------------------------------

def test_example_parameters_deploy_the_expected_resources() -> None:
    resources = deploy()
    kinds = sorted(r.type for r in resources)
    assert kinds == sorted([
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "Microsoft.OperationalInsights/workspaces",
        "Microsoft.App/managedEnvironments", "Microsoft.Storage/storageAccounts",
        "Microsoft.Storage/storageAccounts/blobServices",
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        "Microsoft.App/jobs", *["Microsoft.Resources/deployments"] * 3,
        *["Microsoft.Authorization/roleAssignments"] * 5])
    tagged = [r for r in resources if "tags" in r.body]
    assert len(tagged) == 5  # everything with a location (role assignments and children have none)
    assert all(r.body["tags"] == EXAMPLE["tags"] for r in tagged)


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"tags": None}, "tags: None is not of type object"),
    ({"replicaTimeout": 14401}, "replicaTimeout: 14401 is above 14400"),
    ({"replicaRetryLimit": 4}, "replicaRetryLimit: 4 is above 3"),
    ({"cpu": "4.0"}, "cpu: '4.0' is not one of"),
    ({"imageDigest": "latest"}, "imageDigest: shorter than 71"),
    ({"image": "x"}, "unknown parameter(s): image"),
])
def test_parameters_outside_policy_do_not_deploy(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ArmError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        deploy(**overrides)


def test_required_parameters_have_no_default() -> None:
    values = {k: v for k, v in EXAMPLE.items() if k != "imageDigest"}
    with pytest.raises(ArmError, match="imageDigest has no value and no default"):
        expand(TEMPLATE, values, TARGET, _runtime)


def test_roles_are_least_privilege() -> None:
    subscriptions = ["3f7c2a9e-5b1d-4c8e-9a2f-0d6b7e8c1a23", "8a4e1f6b-2c3d-4e5f-a6b7-c8d9e0f1a2b3"]
    resources = deploy(auditedSubscriptionIds=subscriptions)
    assignments = _of_type(resources, "Microsoft.Authorization/roleAssignments")
    granted = sorted((_role_guid(a), _scope(a)) for a in assignments)
    workspace = EXAMPLE["historyWorkspaceIds"][0]
    own = f"{TARGET.id}/providers/Microsoft.OperationalInsights/workspaces/caj-prod-auditor-logs"
    container = (f"{TARGET.id}/providers/Microsoft.Storage/storageAccounts/"
                 f"{_storage(resources).name}/blobServices/default/containers/audit-reports")
    registry = f"{TARGET.id}/providers/Microsoft.ContainerRegistry/registries/contosoaudit"
    assert granted == sorted([
        (READER, f"/subscriptions/{subscriptions[0]}"),
        (READER, f"/subscriptions/{subscriptions[1]}"),
        (LOG_ANALYTICS_READER, own),
        (LOG_ANALYTICS_READER, workspace),
        (BLOB_DATA_CONTRIBUTOR, container),
        (ACR_PULL, registry),
    ])
    for assignment in assignments:
        properties = assignment.body["properties"]
        assert properties["principalId"] == PRINCIPAL
        assert properties["principalType"] == "ServicePrincipal"
        assert _role_guid(assignment) not in PRIVILEGED_BUILT_IN_ROLES
        subscription = _scope(assignment).split("/")[2]
        assert properties["roleDefinitionId"] == (
            f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/"
            f"{_role_guid(assignment)}")
    names = [a.id for a in assignments]
    assert len(set(names)) == len(names)


def _role_guid(assignment: Deployed) -> str:
    return str(assignment.body["properties"]["roleDefinitionId"]).rsplit("/", 1)[-1]


def _scope(assignment: Deployed) -> str:
    return assignment.scope or assignment.target.id


def _storage(resources: list[Deployed]) -> Deployed:
    return _of_type(resources, "Microsoft.Storage/storageAccounts")[0]


def test_job_runs_the_pinned_image_and_uploads_to_its_container() -> None:
    resources = deploy()
    job = _of_type(resources, "Microsoft.App/jobs")[0]
    container = job.body["properties"]["template"]["containers"][0]
    assert container["image"] == f"contosoaudit.azurecr.io/auditor@{EXAMPLE['imageDigest']}"
    assert job.body["properties"]["configuration"]["registries"] == [
        {"server": "contosoaudit.azurecr.io",
         "identity": _of_type(resources, "Microsoft.ManagedIdentity/userAssignedIdentities")[0].id}]
    assert "secrets" not in job.body["properties"]["configuration"]
    assert container["env"] == [{"name": "AZURE_CLIENT_ID", "value": CLIENT}]
    args = container["args"]
    assert args[:3] == ["scan", "--auth", "managed-identity"]
    target = parse_upload_url(args[args.index("--upload") + 1])
    assert (target.account, target.container, target.prefix) == (
        _storage(resources).name, "audit-reports", "nightly")
    storage = _storage(resources).body["properties"]
    assert storage["allowSharedKeyAccess"] is False and storage["allowBlobPublicAccess"] is False
    dependencies = {d.split("/")[-1] if "/" in d else d for d in job.depends_on}
    assert "subscriptionReader" in dependencies  # the roles exist before the job can run


def test_storage_account_default_name_is_valid() -> None:
    (storage,) = _default_storage()
    name = storage.name
    assert 3 <= len(name) <= 24 and name.isalnum() and name.islower()


def _default_storage() -> list[Deployed]:
    values = {k: v for k, v in EXAMPLE.items() if k != "reportsStorageAccountName"}
    return [r for r in expand(TEMPLATE, values, TARGET, _runtime)
            if r.type == "Microsoft.Storage/storageAccounts"]


# --- auditor's own checks on the job it defines --------------------------------------------------

def _rows(resources: list[Deployed]) -> dict[str, list[dict[str, Any]]]:
    """The deployed resources as Resource Graph returns them (read-only fields filled in)."""
    identities = {r.id: r for r in _of_type(resources, "Microsoft.ManagedIdentity/"
                                                       "userAssignedIdentities")}
    rows: dict[str, list[dict[str, Any]]] = {"jobs": [], "environments": [], "roles": []}
    for resource in resources:
        kind = resource.type.lower()
        base = {"id": resource.id, "name": resource.name, "type": kind,
                "subscriptionId": resource.target.subscription_id,
                "resourceGroup": resource.target.resource_group,
                "location": resource.body.get("location"), "tags": resource.body.get("tags")}
        properties = copy.deepcopy(resource.body.get("properties", {}))
        if kind == "microsoft.app/jobs":
            identity = copy.deepcopy(resource.body["identity"])
            identity["userAssignedIdentities"] = {
                key: {"principalId": PRINCIPAL, "clientId": CLIENT}
                for key in identity["userAssignedIdentities"] if key in identities}
            rows["jobs"].append({**base, "identity": identity, "properties": {
                **properties, "provisioningState": "Succeeded", "runningState": "Ready"}})
        elif kind == "microsoft.app/managedenvironments":
            properties["appLogsConfiguration"]["logAnalyticsConfiguration"].pop("sharedKey")
            rows["environments"].append({**base, "properties": {
                **properties, "provisioningState": "Succeeded"}})
        elif kind == "microsoft.authorization/roleassignments":
            rows["roles"].append({"id": resource.id, "name": resource.name, "type": kind,
                                  "properties": {**properties, "scope": _scope(resource)}})
    return rows


def _scan(tmp_path: Path, resources: list[Deployed], **policy: Any) -> dict[str, Status]:
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    for name, rows in _rows(resources).items():
        (snapshot / f"{name}.json").write_text(json.dumps(rows, indent=1))
    settings = load_settings(overrides={"policy": policy} if policy else None)
    report = run_scan(ScanRequest(source="snapshot", out=tmp_path / "out", settings=settings,
                                  snapshot=snapshot, as_of=AS_OF))
    assert report.complete
    assert [j.name for j in report.estate.jobs] == [EXAMPLE["jobName"]]
    return {r.check.id: r.status for r in report.results}


# Only what cannot exist before the first run is unknown: the execution history.
NO_HISTORY_YET = {"CAJ-017"}


@pytest.mark.parametrize("overrides", [
    {},
    {"cpu": "0.5"},
    {"cpu": "2.0", "replicaTimeout": 14400, "replicaRetryLimit": 3},
    {"replicaTimeout": 300, "replicaRetryLimit": 1, "cronExpression": "0 */6 * * *"},
], ids=["defaults", "small", "largest allowed", "every six hours"])
def test_own_checks_pass_on_the_job_the_template_defines(
        tmp_path: Path, overrides: dict[str, Any]) -> None:
    statuses = _scan(tmp_path, deploy(**overrides),
                     job_name_pattern="^caj-(dev|test|prod)-[a-z0-9-]+$",
                     require_internal_environment=True)
    problems = {c: s.value for c, s in statuses.items()
                if s not in (Status.PASS, Status.NOT_APPLICABLE)
                and not (s is Status.UNKNOWN and c in NO_HISTORY_YET)}
    assert not problems, problems
    for must_pass in ("CAJ-001", "CAJ-002", "CAJ-004", "CAJ-005", "CAJ-010", "CAJ-011",
                      "CAJ-012", "CAJ-014", "CAJ-015", "CAJ-020", "CAJ-021", "CAJ-030",
                      "CAJ-040", "CAJ-041", "CAJ-042"):
        assert statuses[must_pass] is Status.PASS, must_pass
    assert statuses["CAJ-003"] is Status.NOT_APPLICABLE  # no secrets at all


def test_the_checks_see_what_the_parameters_change(tmp_path: Path) -> None:
    """The scan reads the evaluated template: an hourly schedule with the 2-hour default timeout
    overlaps (CAJ-012), and missing required tags fail CAJ-030."""
    statuses = _scan(tmp_path, deploy(cronExpression="0 * * * *", tags={"owner": "platform"}))
    assert statuses["CAJ-012"] is Status.FAIL
    assert statuses["CAJ-030"] is Status.FAIL
