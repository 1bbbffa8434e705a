import pytest

from auditor.check import Status
from checks.identity import managed_identity
from tests.factories import DELETE, make_context, make_job


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
])
def test_managed_identity(changes: dict, expected: Status) -> None:
    outcome = managed_identity(make_job(**changes), make_context())
    assert outcome.status is expected
    assert outcome.evidence, "every outcome shows what it read"
