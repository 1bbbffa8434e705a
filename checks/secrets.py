"""Secret checks: secret values belong in Key Vault, referenced by the job's identity."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.check import Context, Outcome, check, failed, not_applicable, passed, unknown
from auditor.model import Job
from auditor.secret_scan import credential_reason, mask
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
    controls={"MCSB": ("IM-8", "DP-6"), "CIS-v8": ("3.11",), "NIST-800-53": ("SC-28", "IA-5"),
              "ISO-27001-2022": ("A.8.24", "A.5.17"), "SOC2": ("CC6.1",)},
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


@check(
    id="CAJ-004",
    title="No credential-like literal in the job definition",
    severity=Severity.CRITICAL,
    category="Identity and secrets",
    rationale=(
        "Environment values, commands, arguments and scale-rule metadata are returned in clear "
        "text to anyone with read access to the job, copied into exports and logs, and kept in "
        "revision history: a credential there is already disclosed."
    ),
    remediation=(
        "Rotate the credential now, store it in Key Vault and reference it as a secret: "
        "`az containerapp job secret set ... NAME=keyvaultref:URL,identityref:ID`, then "
        "`--set-env-vars VAR=secretref:NAME`."
    ),
    references=(
        "https://learn.microsoft.com/azure/container-apps/manage-secrets",
        "https://learn.microsoft.com/azure/container-apps/environment-variables",
    ),
    controls={"MCSB": ("IM-8", "DP-6"), "CIS-v8": ("3.11", "16.1"),
              "NIST-800-53": ("IA-5(7)", "SC-28"), "ISO-27001-2022": ("A.5.17", "A.8.24"),
              "SOC2": ("CC6.1", "CC6.7")},
)
def credential_literals(job: Job, context: Context) -> Outcome:
    if job.containers is None and job.event_scale is None:
        return unknown("The job's template is not in the data.")
    hits = list(_literal_hits(job))
    if hits:
        return failed(f"{len(hits)} credential-like literal(s) in the job definition.",
                      *(f"{place}: {mask(value)} ({reason})" for place, value, reason in hits),
                      subject=",".join(sorted(place for place, _, _ in hits)))
    return passed("No credential-like literal found in env values, commands, arguments or "
                  "scale-rule metadata.")


def _literal_hits(job: Job) -> Iterator[tuple[str, str, str]]:
    """(where, value, why) for every literal that looks like a credential."""
    for container in job.containers or ():
        label = f"{'init container' if container.is_init else 'container'} '{container.name}'"
        for env in container.env:
            if env.value is not None:
                reason = credential_reason(env.value, env.name)
                if reason:
                    yield f"{label} env '{env.name}'", env.value, reason
        for field, values in (("command", container.command), ("args", container.args)):
            for index, value in enumerate(values):
                # `--password VALUE`: the flag names the next argument.
                flag = values[index - 1].lstrip("-") if index and values[index - 1].startswith(
                    "-") else None
                reason = credential_reason(value, flag)
                if reason:
                    yield f"{label} {field}[{index}]", value, reason
    for rule in job.event_scale.rules if job.event_scale else ():
        for key, value in rule.metadata.items():
            reason = credential_reason(value, key)
            if reason:
                yield f"scale rule '{rule.name}' metadata '{key}'", value, reason
