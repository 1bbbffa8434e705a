"""Secret checks: secret values belong in Key Vault, referenced by the job's identity."""

from __future__ import annotations

from auditor.check import Context, Outcome, check, failed, not_applicable, passed, unknown
from auditor.model import Job
from auditor.settings import Severity


@check(
    id="CAJ-003",
    title="Every job secret is a Key Vault reference",
    severity=Severity.HIGH,
    category="Identity and secrets",
    rationale=(
        "Secrets stored in the job itself cannot be rotated centrally, are readable by anyone "
        "with listSecrets on the job, and leave no access trail; Key Vault references can."
    ),
    remediation=(
        "Move each value to Key Vault and reference it: `az containerapp job secret set -n JOB "
        "-g RG --secrets NAME=keyvaultref:https://VAULT.vault.azure.net/secrets/NAME,"
        "identityref:IDENTITY_ID`."
    ),
    references=(
        "https://learn.microsoft.com/azure/container-apps/manage-secrets",
    ),
    controls={"MCSB": ("IM-8", "DP-6"), "CIS-v8": ("3.11",), "NIST-800-53": ("SC-28", "IA-5")},
)
def key_vault_secrets(job: Job, context: Context) -> Outcome:
    if job.secrets is None:
        return unknown("The job's configuration is not in the data.")
    if not job.secrets:
        return not_applicable("The job defines no secrets.")
    stored = [s.name or "(unnamed)" for s in job.secrets if not s.key_vault_url]
    if stored:
        return failed(
            f"{len(stored)} of {len(job.secrets)} secrets are stored in the job, not in Key Vault.",
            *(f"secret '{name}' has no keyVaultUrl" for name in stored),
            subject=",".join(sorted(stored)),
        )
    return passed(
        f"All {len(job.secrets)} secrets are Key Vault references.",
        *(f"secret '{s.name}' -> {s.key_vault_url}" for s in job.secrets),
    )
