"""What every ARM client of the scan shares: no request that could change anything.

azure-mgmt clients put `ARMAutoResourceProviderRegistrationPolicy` into their pipeline with no
switch to leave it out: on a `409 MissingSubscriptionRegistration` it POSTs
`/subscriptions/{id}/providers/{rp}/register` and polls until the provider is registered. That is
a write to the customer's subscription, which an audit tool must never make (and a Reader cannot):
the policy is turned into a pass-through, so the 409 reaches the caller and becomes a gap.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.mgmt.core.policies import ARMAutoResourceProviderRegistrationPolicy

log = logging.getLogger(__name__)

Client = TypeVar("Client")


class NoAutoRegistration(ARMAutoResourceProviderRegistrationPolicy):
    """The registration policy, minus the registration: every request passes straight through."""

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        return self.next.send(request)


def disable_auto_registration(client: Client) -> Client:
    """Make every automatic resource-provider registration policy in `client` a pass-through.

    The SDK keeps its pipeline in private attributes (`client._client._pipeline._impl_policies`);
    tests assert both that the policy is found here and that a 409 leads to no registration call.
    """
    for policy in registration_policies(client):
        policy.__class__ = NoAutoRegistration
    return client


def registration_policies(client: Any) -> list[ARMAutoResourceProviderRegistrationPolicy]:
    """The registration policies in the client's pipeline (pass-through ones included)."""
    pipeline = getattr(getattr(client, "_client", None), "_pipeline", None)
    policies = getattr(pipeline, "_impl_policies", None)
    if policies is None:
        log.warning("cannot inspect the SDK pipeline of %s; automatic resource-provider "
                    "registration may be active", type(client).__name__)
        return []
    return [p for p in policies if isinstance(p, ARMAutoResourceProviderRegistrationPolicy)]
