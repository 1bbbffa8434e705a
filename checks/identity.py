"""Identity checks: jobs reach Azure as themselves, with no stored credentials and no more rights
than their work needs."""

from __future__ import annotations

from auditor.check import (
    Context,
    Outcome,
    check,
    failed,
    not_applicable,
    passed,
    unknown,
)
from auditor.model import Job, RoleAssignment, TriggerType
from auditor.settings import Severity

# Built-in roles that can change anything or grant access: their GUIDs are the same in every
# tenant, so they are recognised even when role definitions were not exported.
PRIVILEGED_BUILT_IN_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
}


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
    references=("https://learn.microsoft.com/azure/container-apps/managed-identity",),
    controls={"MCSB": ("IM-3",), "CIS-v8": ("5.2",), "NIST-800-53": ("IA-9", "IA-5"),
              "ISO-27001-2022": ("A.5.17", "A.8.5"), "SOC2": ("CC6.1",)},
)
def managed_identity(job: Job, context: Context) -> Outcome:
    identity = job.identity
    if identity is None and job.trimmed:
        return unknown("The row holds neither identity nor properties (a trimmed export).")
    if identity is None or not identity.is_managed:
        kind = identity.type if identity and identity.type else "None"
        return failed("The job has no managed identity.", f"identity.type = {kind}")
    evidence = [f"identity.type = {identity.type}"]
    evidence += [f"user-assigned: {u.resource_id}" for u in identity.user_assigned]
    return passed("The job has a managed identity.", *evidence)


@check(
    id="CAJ-002",
    title="Registries are pulled with a managed identity",
    severity=Severity.HIGH,
    category="Identity and secrets",
    rationale=(
        "A registry password stored as a job secret is a long-lived credential that grants "
        "pull (often push) rights to every image; a managed identity with AcrPull does not "
        "need one."
    ),
    remediation=(
        "Grant the job's identity AcrPull and switch the registry to it: `az containerapp job "
        "registry set -n JOB -g RG --server REGISTRY --identity system`."
    ),
    references=("https://learn.microsoft.com/azure/container-apps/managed-identity-image-pull",),
    controls={"MCSB": ("IM-3", "PA-7"), "CIS-v8": ("5.2",), "NIST-800-53": ("IA-5",),
              "ISO-27001-2022": ("A.5.17",), "SOC2": ("CC6.1",)},
)
def registry_identity(job: Job, context: Context) -> Outcome:
    if job.registries is None:
        return unknown("The job's configuration is not in the data.")
    if not job.registries:
        return not_applicable("The job configures no private registry.")
    with_password = [r for r in job.registries if not r.identity]
    if with_password:
        return failed(
            f"{len(with_password)} registr{'y' if len(with_password) == 1 else 'ies'} pulled "
            "with a username and password.",
            *(f"registry {r.server}: username {r.username or '(none)'}, password from secret "
              f"'{r.password_secret_ref or '(none)'}'" for r in with_password),
            subject=",".join(sorted(r.server or "" for r in with_password)),
        )
    return passed("Every registry is pulled with a managed identity.",
                  *(f"registry {r.server}: identity {r.identity}" for r in job.registries))


@check(
    id="CAJ-005",
    title="Job identities hold no privileged role at subscription scope or above",
    severity=Severity.CRITICAL,
    category="Identity and secrets",
    rationale=(
        "Code in a job runs as its identity. Owner, Contributor or an access-administration "
        "role at subscription, management-group or root scope lets a compromised image take "
        "over the estate."
    ),
    remediation=(
        "Replace the assignment with a narrow data-plane or resource-group role: `az role "
        "assignment delete --assignee PRINCIPAL_ID --role Contributor --scope "
        "/subscriptions/SUB`, then `az role assignment create` at the resource that the job "
        "needs."
    ),
    references=("https://learn.microsoft.com/azure/role-based-access-control/best-practices",),
    controls={"MCSB": ("PA-7", "PA-1"), "CIS-v8": ("6.8", "5.4"),
              "NIST-800-53": ("AC-6", "AC-6(5)"), "ISO-27001-2022": ("A.5.15", "A.8.2"),
              "SOC2": ("CC6.3",)},
)
def privileged_roles(job: Job, context: Context) -> Outcome:
    if job.identity is None or not job.identity.is_managed:
        return not_applicable("The job has no managed identity.")
    principals = set(job.identity.principal_ids)
    if not principals:
        return unknown("The job's identity principal ids are not in the data.")
    assignments = context.estate.assignments_of(principals)
    if not assignments:
        return unknown("No role assignments for the job's identities are in the data; export "
                       "authorizationresources to evaluate least privilege.")
    privileged = [(a, role) for a in assignments
                  if (role := _privileged_role(a, context)) and _is_broad(a)]
    if privileged:
        return failed(
            f"The job's identity holds {len(privileged)} privileged role assignment(s) at "
            "broad scope.",
            *(f"{role} at {a.scope or _scope_of(a)} (principal {a.principal_id})"
              for a, role in privileged),
            subject=",".join(sorted(a.id.lower() for a, _ in privileged)),
        )
    return passed(f"None of the {len(assignments)} role assignments is privileged at broad "
                  "scope.", *(f"{_role_name(a, context)} at {a.scope or _scope_of(a)}"
                              for a in assignments))


def _role_name(assignment: RoleAssignment, context: Context) -> str:
    guid = assignment.role_definition_guid or ""
    definition = context.estate.role_definitions.get(guid)
    if definition and definition.role_name:
        return definition.role_name
    return PRIVILEGED_BUILT_IN_ROLES.get(guid, f"role {guid or '(unknown)'}")


def _privileged_role(assignment: RoleAssignment, context: Context) -> str | None:
    guid = assignment.role_definition_guid or ""
    if guid in PRIVILEGED_BUILT_IN_ROLES:
        return PRIVILEGED_BUILT_IN_ROLES[guid]
    definition = context.estate.role_definitions.get(guid)
    if definition is None:
        return None
    if definition.role_name in PRIVILEGED_BUILT_IN_ROLES.values():
        return definition.role_name
    # `*` grants every action; `*/read` (Reader) does not.
    if (definition.role_type or "").lower() != "builtinrole" and "*" in definition.actions:
        return f"{definition.role_name or guid} (custom role with '*' actions)"
    return None


def _scope_of(assignment: RoleAssignment) -> str:
    marker = "/providers/microsoft.authorization/roleassignments/"
    index = assignment.id.lower().find(marker)
    return assignment.id[:index] or "/" if index >= 0 else assignment.id


def _is_broad(assignment: RoleAssignment) -> bool:
    """Root, management-group or subscription scope (not a resource group or resource)."""
    scope = (assignment.scope or _scope_of(assignment)).rstrip("/").lower()
    parts = scope.strip("/").split("/") if scope else []
    if not parts:
        return True
    if parts[:3] == ["providers", "microsoft.management", "managementgroups"]:
        return True
    return len(parts) == 2 and parts[0] == "subscriptions"


@check(
    id="CAJ-006",
    title="Event scale rules authenticate with a managed identity",
    severity=Severity.MEDIUM,
    category="Identity and secrets",
    rationale=(
        "A scale rule that reads its queue or topic with a connection string keeps a "
        "shared-access key in the job's secrets; with an identity there is nothing to leak "
        "or rotate."
    ),
    remediation=(
        "Give the rule an identity instead of auth: `az containerapp job update -n JOB -g RG "
        "--scale-rule-name RULE --scale-rule-identity system` and grant the identity a "
        "data-reader role on the queue."
    ),
    references=("https://learn.microsoft.com/azure/container-apps/scale-app",),
    controls={"MCSB": ("IM-3",), "CIS-v8": ("5.2",), "NIST-800-53": ("IA-5",),
              "ISO-27001-2022": ("A.5.17",), "SOC2": ("CC6.1",)},
)
def scale_rule_identity(job: Job, context: Context) -> Outcome:
    if not job.has_configuration:
        return unknown("The job's configuration is not in the data.")
    if job.trigger_type is not TriggerType.EVENT:
        return not_applicable("The job is not event-driven.")
    rules = job.event_scale.rules if job.event_scale else ()
    if not rules:
        return not_applicable("The job has no scale rules.")
    with_secrets = [r for r in rules if r.auth_secret_refs and not r.identity]
    if with_secrets:
        return failed(
            f"{len(with_secrets)} scale rule(s) authenticate with a secret.",
            *(f"rule '{r.name}' ({r.type}) uses secret(s) {', '.join(r.auth_secret_refs)}"
              for r in with_secrets),
            subject=",".join(sorted(r.name or "" for r in with_secrets)),
        )
    return passed("No scale rule authenticates with a secret.",
                  *(f"rule '{r.name}' ({r.type}): identity {r.identity or '(none needed)'}"
                    for r in rules))
