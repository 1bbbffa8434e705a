"""Identity checks: jobs should reach Azure resources as themselves, not with stored secrets."""

from __future__ import annotations

from auditor.check import Context, Outcome, check, failed, passed
from auditor.model import Job
from auditor.settings import Severity


@check(
    id="CAJ-001",
    title="Job has a managed identity",
    severity=Severity.HIGH,
    category="Identity and secrets",
    rationale=(
        "A job without a managed identity must authenticate to registries, Key Vault and data "
        "stores with stored credentials, which leak, expire and are rarely rotated."
    ),
    remediation=(
        "Assign a system- or user-assigned identity: "
        "`az containerapp job identity assign -n JOB -g RG --system-assigned`."
    ),
    references=(
        "https://learn.microsoft.com/azure/container-apps/managed-identity",
    ),
    controls={"MCSB": ("IM-3",), "CIS-v8": ("5.2",), "NIST-800-53": ("IA-2", "IA-5")},
)
def managed_identity(job: Job, context: Context) -> Outcome:
    identity = job.identity
    if identity is None or not identity.is_managed:
        kind = identity.type if identity and identity.type else "None"
        return failed("The job has no managed identity.", f"identity.type = {kind}")
    evidence = [f"identity.type = {identity.type}"]
    evidence += [f"user-assigned: {u.resource_id}" for u in identity.user_assigned]
    return passed("The job has a managed identity.", *evidence)
