import pytest

from auditor.check import Status
from auditor.model import Estate
from auditor.normalize import environment_from_row
from checks.environment import environment_logs, network_isolation
from tests.factories import ENV_ID, make_context, make_job

SUBNET = "/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/" \
         "subnets/aca"


def estate_with(**properties: object) -> Estate:
    environment = environment_from_row({
        "id": ENV_ID, "name": "env-prod", "type": "Microsoft.App/managedEnvironments",
        "location": "West Europe", "properties": properties})
    assert environment is not None
    return Estate(environments={ENV_ID.lower(): environment})


LOGS = {"destination": "log-analytics",
        "logAnalyticsConfiguration": {"customerId": "8f1e2d3c-0000-4000-8000-000000000001"}}


@pytest.mark.parametrize(("estate", "expected"), [
    pytest.param(estate_with(appLogsConfiguration=LOGS), Status.PASS, id="pass-log-analytics"),
    pytest.param(estate_with(appLogsConfiguration={"destination": "azure-monitor"}),
                 Status.PASS, id="pass-azure-monitor"),
    pytest.param(estate_with(appLogsConfiguration={"destination": None}), Status.FAIL,
                 id="fail-destination-none"),
    pytest.param(estate_with(), Status.FAIL, id="fail-no-logs-configuration"),
    pytest.param(Estate(), Status.UNKNOWN, id="unknown-environment-not-in-data"),
])
def test_environment_logs(estate: Estate, expected: Status) -> None:
    assert environment_logs(make_job(), make_context(estate)).status is expected


@pytest.mark.parametrize(("estate", "internal_required", "expected"), [
    pytest.param(estate_with(vnetConfiguration={"infrastructureSubnetId": SUBNET}), False,
                 Status.PASS, id="pass-vnet"),
    pytest.param(estate_with(vnetConfiguration={"infrastructureSubnetId": SUBNET,
                                                "internal": True}), True,
                 Status.PASS, id="pass-internal-required-and-internal"),
    pytest.param(estate_with(vnetConfiguration={"infrastructureSubnetId": SUBNET},
                             publicNetworkAccess="Disabled"), True,
                 Status.PASS, id="pass-public-access-disabled"),
    pytest.param(estate_with(vnetConfiguration={"infrastructureSubnetId": SUBNET},
                             publicNetworkAccess="Enabled"), True,
                 Status.FAIL, id="fail-public-when-internal-required"),
    pytest.param(estate_with(), False, Status.FAIL, id="fail-no-vnet"),
    pytest.param(Estate(), False, Status.UNKNOWN, id="unknown-environment-not-in-data"),
])
def test_network_isolation(estate: Estate, internal_required: bool, expected: Status) -> None:
    context = make_context(estate, require_internal_environment=internal_required)
    assert network_isolation(make_job(), context).status is expected
