import pytest

from auditor.check import Status
from auditor.model import Estate, RoleAssignment, RoleDefinition
from checks.identity import (
    managed_identity,
    privileged_roles,
    registry_identity,
    scale_rule_identity,
)
from tests.factories import DELETE, SUB, UAMI, make_context, make_job


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({}, Status.PASS, id="pass-user-assigned"),
    pytest.param({"identity": {"type": "SystemAssigned", "principalId": "p1", "tenantId": "t"}},
                 Status.PASS, id="pass-system-assigned"),
    pytest.param({"identity": {"type": "SystemAssigned,UserAssigned", "principalId": "p1",
                               "userAssignedIdentities": {"/x/id": {"principalId": "p2"}}}},
                 Status.PASS, id="pass-both"),
    pytest.param({"identity": {"type": "None"}}, Status.FAIL, id="fail-type-none-string"),
    pytest.param({"identity": {"type": None}}, Status.FAIL, id="fail-type-null"),
    pytest.param({"identity": DELETE}, Status.FAIL, id="fail-no-identity-block"),
    pytest.param({"identity": {"type": "UserAssigned", "userAssignedIdentities": {}}},
                 Status.FAIL, id="fail-user-assigned-without-identities"),
    pytest.param({"identity": "SystemAssigned"}, Status.FAIL, id="fail-wrong-type"),
    pytest.param({"identity": DELETE, "properties": DELETE}, Status.UNKNOWN,
                 id="unknown-trimmed-row"),
])
def test_managed_identity(changes: dict, expected: Status) -> None:
    outcome = managed_identity(make_job(**changes), make_context())
    assert outcome.status is expected
    assert outcome.evidence or expected is Status.UNKNOWN, "every verdict shows what it read"


# --- CAJ-002 -------------------------------------------------------------------------------

ACR_IDENTITY = {"server": "contosoacr.azurecr.io", "identity": UAMI}
ACR_PASSWORD = {"server": "legacyacr.azurecr.io", "username": "legacyacr",
                "passwordSecretRef": "acr-password"}


REGISTRIES = "properties.configuration.registries"


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({REGISTRIES: [ACR_IDENTITY]}, Status.PASS, id="pass-identity"),
    pytest.param({REGISTRIES: [{"server": "contosoacr.azurecr.io", "identity": "system"}]},
                 Status.PASS, id="pass-system-identity"),
    pytest.param({REGISTRIES: [ACR_IDENTITY, ACR_PASSWORD]}, Status.FAIL,
                 id="fail-one-with-password"),
    pytest.param({REGISTRIES: [ACR_PASSWORD]}, Status.FAIL, id="fail-password"),
    pytest.param({REGISTRIES: []}, Status.NOT_APPLICABLE, id="na-no-registries"),
    pytest.param({REGISTRIES: DELETE}, Status.NOT_APPLICABLE, id="na-registries-absent"),
    pytest.param({"properties.configuration": DELETE}, Status.UNKNOWN,
                 id="unknown-no-configuration"),
])
def test_registry_identity(changes: dict, expected: Status) -> None:
    outcome = registry_identity(make_job(**changes), make_context())
    assert outcome.status is expected
    if expected is Status.FAIL:
        assert outcome.subject == "legacyacr.azurecr.io"
        assert any("acr-password" in e for e in outcome.evidence)



# --- CAJ-005 -------------------------------------------------------------------------------

PRINCIPAL = "5b1f0c7e-9a1d-4e55-8d0b-3c2a1f6e9d40"  # the factory job's user-assigned identity
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
CUSTOM = "11111111-2222-3333-4444-555555555555"
SUB_SCOPE = f"/subscriptions/{SUB}"
RG_SCOPE = f"/subscriptions/{SUB}/resourceGroups/rg-batch"
MG_SCOPE = "/providers/Microsoft.Management/managementGroups/contoso"


def assignment(role: str, scope: str, principal: str = PRINCIPAL) -> RoleAssignment:
    return RoleAssignment(
        id=f"{scope}/providers/Microsoft.Authorization/roleAssignments/{role[:8]}{scope[-4:]}",
        principal_id=principal, principal_type="ServicePrincipal",
        role_definition_id=f"/subscriptions/{SUB}/providers/Microsoft.Authorization/"
                           f"roleDefinitions/{role}",
        scope=scope)


CUSTOM_STAR = RoleDefinition(id=f"/providers/Microsoft.Authorization/roleDefinitions/{CUSTOM}",
                             guid=CUSTOM, role_name="Ops Everything", role_type="CustomRole",
                             actions=("*",))
READER_DEFINITION = RoleDefinition(
    id=f"/providers/Microsoft.Authorization/roleDefinitions/{READER}", guid=READER,
    role_name="Reader", role_type="BuiltInRole", actions=("*/read",))
CUSTOM_READ_ALL = RoleDefinition(id=f"/providers/Microsoft.Authorization/roleDefinitions/{CUSTOM}",
                                 guid=CUSTOM, role_name="Read everything", role_type="CustomRole",
                                 actions=("*/read",))
CUSTOM_NARROW = RoleDefinition(id=CUSTOM_STAR.id, guid=CUSTOM, role_name="Queue Reader",
                               role_type="CustomRole",
                               actions=("Microsoft.ServiceBus/namespaces/queues/read",))


NO_IDENTITY = {"identity": DELETE}


@pytest.mark.parametrize(("job_changes", "assignments", "definitions", "expected"), [
    pytest.param({}, [assignment(READER, SUB_SCOPE)], [], Status.PASS, id="pass-reader"),
    pytest.param({}, [assignment(READER, SUB_SCOPE)], [READER_DEFINITION], Status.PASS,
                 id="pass-reader-definition-with-star-read"),
    pytest.param({}, [assignment(CUSTOM, SUB_SCOPE)], [CUSTOM_READ_ALL], Status.PASS,
                 id="pass-custom-read-everything"),
    pytest.param({}, [assignment(OWNER, RG_SCOPE)], [], Status.PASS,
                 id="pass-owner-only-on-resource-group"),
    pytest.param({}, [assignment(OWNER, SUB_SCOPE)], [], Status.FAIL,
                 id="fail-owner-on-subscription-without-definitions"),
    pytest.param({}, [assignment(OWNER, MG_SCOPE)], [], Status.FAIL, id="fail-owner-on-mg"),
    pytest.param({}, [assignment(OWNER, "/")], [], Status.FAIL, id="fail-owner-at-root"),
    pytest.param({}, [assignment(CUSTOM, SUB_SCOPE)], [CUSTOM_STAR], Status.FAIL,
                 id="fail-custom-star-role"),
    pytest.param({}, [assignment(CUSTOM, SUB_SCOPE)], [CUSTOM_NARROW], Status.PASS,
                 id="pass-custom-narrow-role"),
    pytest.param({}, [assignment(OWNER, SUB_SCOPE, principal="someone-else")], [],
                 Status.UNKNOWN, id="unknown-no-data-for-this-principal"),
    pytest.param({}, [], [], Status.UNKNOWN, id="unknown-no-role-data"),
    pytest.param(NO_IDENTITY, [assignment(OWNER, SUB_SCOPE)], [], Status.NOT_APPLICABLE,
                 id="na-no-identity"),
])
def test_privileged_roles(job_changes: dict, assignments: list[RoleAssignment],
                          definitions: list[RoleDefinition], expected: Status) -> None:
    estate = Estate(role_assignments=tuple(assignments),
                    role_definitions={d.guid: d for d in definitions})
    outcome = privileged_roles(make_job(**job_changes), make_context(estate))
    assert outcome.status is expected


def test_privileged_role_evidence_names_role_and_scope() -> None:
    estate = Estate(role_assignments=(assignment(OWNER, SUB_SCOPE),))
    outcome = privileged_roles(make_job(), make_context(estate))
    assert outcome.evidence == (f"Owner at {SUB_SCOPE} (principal {PRINCIPAL})",)


# --- CAJ-006 -------------------------------------------------------------------------------
EVENT = {"properties.configuration.triggerType": "Event",
         "properties.configuration.scheduleTriggerConfig": DELETE}


def event_job(rules: object) -> dict:
    return {**EVENT, "properties.configuration.eventTriggerConfig": {
        "parallelism": 1, "replicaCompletionCount": 1,
        "scale": {"minExecutions": 0, "maxExecutions": 10, "rules": rules}}}


QUEUE_IDENTITY = {"name": "orders", "type": "azure-servicebus",
                  "metadata": {"queueName": "orders"}, "identity": UAMI}
QUEUE_SECRET = {"name": "invoices", "type": "azure-queue", "metadata": {"queueName": "inv"},
                "auth": [{"secretRef": "queue-connection", "triggerParameter": "connection"}]}


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param(event_job([QUEUE_IDENTITY]), Status.PASS, id="pass-identity"),
    pytest.param(event_job([QUEUE_IDENTITY, QUEUE_SECRET]), Status.FAIL,
                 id="fail-connection-string-secret"),
    pytest.param(event_job([]), Status.NOT_APPLICABLE, id="na-no-rules"),
    pytest.param({}, Status.NOT_APPLICABLE, id="na-schedule-trigger"),
    pytest.param({"properties.configuration": DELETE}, Status.UNKNOWN,
                 id="unknown-no-configuration"),
])
def test_scale_rule_identity(changes: dict, expected: Status) -> None:
    outcome = scale_rule_identity(make_job(**changes), make_context())
    assert outcome.status is expected
