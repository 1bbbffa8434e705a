"""A synthetic Container Apps estate for the scale benchmark: deterministic, varied, realistic.

`build(Spec(...))` makes, from a seed:

- subscriptions, and Resource Graph rows in Azure's own shape: jobs and managed environments
  (`resources`), role assignments and role definitions (`authorizationresources`, including
  assignments to users that the scan's query filters out, and built-in roles that are
  tenant-level rows);
- per Log Analytics workspace, the rows of auditor's executions query (`executions.kql`): one
  row per execution, as the query aggregates an execution's system-log events. The stand-in
  serves these rows; it runs no KQL.

Every environment sends its logs to a Log Analytics workspace (one workspace per
`subscriptions_per_workspace` subscriptions), so history is read with one query per workspace and
never through the per-job executions API.

The variety is what the checks look at: schedule, event and manual triggers (daily, weekly, every
six hours, hourly), system-, user- or no identity, Key Vault and platform secrets, registries with
identity or passwords, pinned, floating and Docker Hub images, missing tags, long timeouts and
many retries, dedicated workload profiles, privileged role assignments, failing jobs, jobs that
stopped running, runs close to their timeout and cost spikes.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)

REGIONS = ("westeurope", "northeurope", "eastus", "eastus2", "westus2", "uksouth")
TEAMS = ("billing", "data", "ml", "ops", "web", "risk", "hr", "logistics")
NAMES = ("invoice-export", "etl-orders", "report-daily", "sync-crm", "purge-logs", "backup-db",
         "score-model", "index-search", "mail-digest", "fx-rates", "ledger-close", "img-resize",
         "queue-drain", "cert-renew", "acr-purge", "ingest-events")
SIZES = ((0.25, "0.5Gi"), (0.5, "1Gi"), (0.5, "1Gi"), (1.0, "2Gi"), (1.0, "2Gi"),
         (2.0, "4Gi"), (4.0, "8Gi"))

# Built-in roles: (guid, name, actions).
OWNER = ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner", ("*",))
CONTRIBUTOR = ("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor", ("*",))
READER = ("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", ("*/read",))
BLOB_CONTRIBUTOR = ("ba92f5b4-2d11-453d-a403-e96b0029c9fe", "Storage Blob Data Contributor",
                    ("Microsoft.Storage/storageAccounts/blobServices/containers/read",))
KV_SECRETS_USER = ("4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User",
                   ("Microsoft.KeyVault/vaults/secrets/getSecret/action",))
ACR_PULL = ("7f951dda-4ed3-4680-a7ca-43fe172d538d", "AcrPull",
            ("Microsoft.ContainerRegistry/registries/pull/read",))
UAA = ("18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", "User Access Administrator",
       ("*/read", "Microsoft.Authorization/*"))
BUILT_IN = (OWNER, CONTRIBUTOR, READER, BLOB_CONTRIBUTOR, KV_SECRETS_USER, ACR_PULL, UAA)


@dataclass(frozen=True)
class Spec:
    jobs: int = 20_000
    subscriptions: int = 400
    days: int = 90
    subscriptions_per_workspace: int = 10
    seed: int = 20_000
    as_of: datetime = AS_OF

    @property
    def workspaces(self) -> int:
        return max(1, -(-self.subscriptions // self.subscriptions_per_workspace))


@dataclass
class Estate:
    spec: Spec
    subscription_ids: list[str]
    resources: list[dict[str, Any]] = field(default_factory=list)
    authorization: list[dict[str, Any]] = field(default_factory=list)
    subscription_rows: list[dict[str, Any]] = field(default_factory=list)
    # workspace id -> executions query rows, sorted by StartTime; and their start times.
    logs: dict[str, list[list[Any]]] = field(default_factory=dict)
    log_starts: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def logs_between(self, workspace: str, since: str, until: str) -> list[list[Any]]:
        """The rows of executions that started in [since, until) (ISO 8601 with Z)."""
        rows, starts = self.logs.get(workspace, []), self.log_starts.get(workspace, [])
        return rows[bisect_left(starts, since):bisect_left(starts, until)]


def subscription_id(n: int) -> str:
    return f"{n:08x}-aaaa-4bbb-8ccc-{n:012x}"


def workspace_id(n: int) -> str:
    return f"{n:08x}-5a5a-4b4b-8c8c-{n:012x}"


def _guid(*parts: object) -> str:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _columns(resource_id: str, name: str, kind: str, subscription: str, group: str,
             location: str) -> dict[str, Any]:
    """The columns Resource Graph adds to every row of the `resources` table."""
    return {"id": resource_id, "name": name, "type": kind, "tenantId": TENANT, "kind": "",
            "location": location, "resourceGroup": group, "subscriptionId": subscription,
            "managedBy": "", "sku": None, "plan": None, "tags": {}, "identity": None,
            "zones": None, "extendedLocation": None}


@dataclass
class _Subscription:
    index: int
    id: str
    region: str
    groups: list[str]
    environments: list[tuple[str, str]]  # (id, name)
    workspace: str
    acr: str
    uami: str


def build(spec: Spec) -> Estate:
    rng = random.Random(spec.seed)
    subs = [_subscription(rng, spec, n) for n in range(1, spec.subscriptions + 1)]
    estate = Estate(spec, [s.id for s in subs])
    for sub in subs:
        estate.subscription_rows.append(_subscription_row(sub))
        estate.resources += [_environment_row(rng, sub, env_id, name)
                             for env_id, name in sub.environments]
    estate.authorization += [_definition_row(*role) for role in BUILT_IN]
    for sub in subs[::20]:  # a custom role in every twentieth subscription, half of them '*'
        estate.authorization.append(_custom_role_row(sub, wildcard=sub.index % 40 == 1))
    for sub in subs:  # people hold roles too; the scan's query keeps service principals only
        estate.authorization.append(_assignment_row(
            sub.id, f"/subscriptions/{sub.id}", _guid("user", sub.id), OWNER[0], "User"))
    weights = [0.5 + rng.random() for _ in subs]
    logs: dict[str, list[list[Any]]] = {}
    assigned: set[str] = set()
    for n in range(spec.jobs):
        sub = rng.choices(subs, weights)[0]
        job, env_name, profile = _job_row(rng, sub, n)
        estate.resources.append(job)
        for assignment in _job_assignments(rng, sub, job):  # jobs may share an identity
            if assignment["id"] not in assigned:
                assigned.add(assignment["id"])
                estate.authorization.append(assignment)
        logs.setdefault(sub.workspace, []).extend(
            _executions(rng, spec, job, env_name, profile))
    for workspace, rows in logs.items():
        rows.sort(key=lambda r: (r[3], r[0], r[2]))
        estate.logs[workspace] = rows
        estate.log_starts[workspace] = [r[3] for r in rows]
    jobs = spec.jobs
    estate.counts = {
        "subscriptions": len(subs),
        "jobs": jobs,
        "environments": len(estate.resources) - jobs,
        "role_assignments": sum(1 for r in estate.authorization
                                if r["type"] == "microsoft.authorization/roleassignments"
                                and r["properties"]["principalType"] == "ServicePrincipal"),
        "role_definitions": sum(1 for r in estate.authorization
                                if r["type"] == "microsoft.authorization/roledefinitions"),
        "workspaces": len(estate.logs),
        "executions": sum(len(rows) for rows in estate.logs.values()),
        "log_events": sum(r[7] for rows in estate.logs.values() for r in rows),
    }
    return estate


# --- subscriptions, environments and roles ---------------------------------------------------

def _subscription(rng: random.Random, spec: Spec, n: int) -> _Subscription:
    sub = subscription_id(n)
    groups = [f"rg-{team}-{stage}" for team in rng.sample(TEAMS, 2) for stage in ("prod", "dev")]
    environments = [(f"/subscriptions/{sub}/resourceGroups/rg-platform/providers/"
                     f"Microsoft.App/managedEnvironments/cae-{stage}-{n:04d}",
                     f"cae-{stage}-{n:04d}") for stage in ("prod", "nonprod")]
    return _Subscription(
        n, sub, rng.choice(REGIONS), groups, environments,
        workspace_id((n - 1) // spec.subscriptions_per_workspace + 1),
        f"contoso{n:04d}.azurecr.io",
        f"/subscriptions/{sub}/resourceGroups/rg-platform/providers/"
        f"Microsoft.ManagedIdentity/userAssignedIdentities/id-jobs-{n:04d}")


def _subscription_row(sub: _Subscription) -> dict[str, Any]:
    row = _columns(f"/subscriptions/{sub.id}", f"contoso-{sub.index:04d}",
                   "microsoft.resources/subscriptions", sub.id, "", "")
    row["properties"] = {"state": "Enabled", "subscriptionPolicies": {
        "locationPlacementId": "Public_2014-09-01", "quotaId": "EnterpriseAgreement_2014-09-01",
        "spendingLimit": "Off"}}
    return row


def _environment_row(rng: random.Random, sub: _Subscription, env_id: str,
                     name: str) -> dict[str, Any]:
    row = _columns(env_id, name, "microsoft.app/managedenvironments", sub.id, "rg-platform",
                   sub.region)
    internal = rng.random() < 0.6
    row["tags"] = {"owner": "platform@contoso.com", "environment": name.split("-")[1]}
    row["properties"] = {
        "provisioningState": "Succeeded",
        "appLogsConfiguration": {"destination": "log-analytics",
                                 "logAnalyticsConfiguration": {"customerId": sub.workspace}},
        "vnetConfiguration": {"internal": internal, "infrastructureSubnetId": (
            f"/subscriptions/{sub.id}/resourceGroups/rg-network/providers/"
            f"Microsoft.Network/virtualNetworks/vnet-{sub.index:04d}/subnets/aca")},
        "publicNetworkAccess": "Disabled" if internal else "Enabled",
        "zoneRedundant": rng.random() < 0.3,
        "workloadProfiles": [{"name": "Consumption", "workloadProfileType": "Consumption"},
                             {"name": "D4", "workloadProfileType": "D4",
                              "minimumCount": 1, "maximumCount": 3}],
    }
    return row


def _definition_row(guid: str, name: str, actions: tuple[str, ...]) -> dict[str, Any]:
    row = _columns(f"/providers/Microsoft.Authorization/RoleDefinitions/{guid}", guid,
                   "microsoft.authorization/roledefinitions", "", "", "")
    row["properties"] = {"roleName": name, "type": "BuiltInRole", "description": name,
                         "assignableScopes": ["/"],
                         "permissions": [{"actions": list(actions), "notActions": [],
                                          "dataActions": [], "notDataActions": []}]}
    return row


def _custom_role_row(sub: _Subscription, *, wildcard: bool) -> dict[str, Any]:
    guid = _guid("custom-role", sub.id)
    row = _columns(f"/subscriptions/{sub.id}/providers/Microsoft.Authorization/"
                   f"roleDefinitions/{guid}", guid, "microsoft.authorization/roledefinitions",
                   sub.id, "", "")
    actions = ["*"] if wildcard else ["Microsoft.App/jobs/read", "Microsoft.App/jobs/start/action"]
    row["properties"] = {"roleName": f"Jobs operator {sub.index:04d}", "type": "CustomRole",
                         "description": "custom", "assignableScopes": [f"/subscriptions/{sub.id}"],
                         "permissions": [{"actions": actions, "notActions": [],
                                          "dataActions": [], "notDataActions": []}]}
    return row


def _assignment_row(subscription: str, scope: str, principal: str, role: str,
                    principal_type: str = "ServicePrincipal") -> dict[str, Any]:
    guid = _guid(scope, principal, role)
    row = _columns(f"{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}", guid,
                   "microsoft.authorization/roleassignments", subscription, "", "")
    row["properties"] = {
        "principalId": principal, "principalType": principal_type,
        "roleDefinitionId": (f"/subscriptions/{subscription}/providers/"
                             f"Microsoft.Authorization/roleDefinitions/{role}"),
        "scope": scope, "createdOn": "2025-05-01T10:00:00.0000000Z",
        "updatedOn": "2025-05-01T10:00:00.0000000Z"}
    return row


def _job_assignments(rng: random.Random, sub: _Subscription,
                     job: dict[str, Any]) -> list[dict[str, Any]]:
    identity = job["identity"]
    if not identity:
        return []
    principal = identity.get("principalId") or next(
        iter(identity["userAssignedIdentities"].values()))["principalId"]
    group_scope = f"/subscriptions/{sub.id}/resourceGroups/{job['resourceGroup']}"
    rows = [_assignment_row(sub.id, group_scope, principal, BLOB_CONTRIBUTOR[0])]
    roll = rng.random()
    if roll < 0.04:
        rows.append(_assignment_row(sub.id, f"/subscriptions/{sub.id}", principal,
                                    CONTRIBUTOR[0]))
    elif roll < 0.06:
        rows.append(_assignment_row(sub.id, group_scope, principal, OWNER[0]))
    elif roll < 0.5:
        rows.append(_assignment_row(sub.id, group_scope, principal, KV_SECRETS_USER[0]))
    return rows


# --- jobs ---------------------------------------------------------------------------------------

@dataclass
class _Profile:
    """How a job runs: its trigger rhythm, duration, failure rate and oddities."""

    kind: str  # daily, weekly, six-hourly, hourly, manual, event
    minute: int
    hour: int
    weekday: int
    timeout: int
    duration: float
    failure_rate: float
    stops_days_before: int  # > 0: the job stopped running this many days before as_of
    spike: bool  # a cost spike two days before as_of
    near_timeout: bool


def _job_row(rng: random.Random, sub: _Subscription,
             n: int) -> tuple[dict[str, Any], str, _Profile]:
    name = f"{rng.choice(NAMES)}-{n:05d}"
    group = rng.choice(sub.groups)
    env_id, env_name = sub.environments[0 if group.endswith("prod") else 1]
    resource_id = (f"/subscriptions/{sub.id}/resourceGroups/{group}/providers/"
                   f"Microsoft.App/jobs/{name}")
    row = _columns(resource_id, name, "microsoft.app/jobs", sub.id, group, sub.region)
    profile = _profile(rng)
    row["tags"] = _tags(rng, group)
    row["identity"] = _identity(rng, sub, resource_id)
    trigger, trigger_key, trigger_config = _trigger(rng, profile)
    has_identity = row["identity"] is not None
    secrets, env = _secrets_and_env(rng, name, has_identity)
    image, registries = _image(rng, sub, name, has_identity)
    cpu, memory = rng.choice(SIZES)
    containers = [{"image": image, "name": name[:20].rstrip("-"), "command": ["/app/run"],
                   "args": ["--mode", "batch"], "env": env,
                   "resources": {"cpu": cpu, "memory": memory}}]
    init = [{"image": f"{sub.acr}/platform/wait-for:1.0.3", "name": "wait",
             "resources": {"cpu": 0.25, "memory": "0.5Gi"}}] if rng.random() < 0.15 else []
    configuration: dict[str, Any] = {
        "replicaTimeout": profile.timeout,
        "triggerType": trigger,
        trigger_key: trigger_config,
        "secrets": secrets,
        "registries": registries,
    }
    if rng.random() < 0.9:
        configuration["replicaRetryLimit"] = rng.choice((0, 1, 1, 2, 3, 3, 5, 10))
    row["properties"] = {
        "provisioningState": "Succeeded",
        "runningState": "Ready",
        "environmentId": env_id,
        "workloadProfileName": "D4" if rng.random() < 0.08 else "Consumption",
        "configuration": configuration,
        "template": {"containers": containers, "initContainers": init, "volumes": []},
    }
    return row, env_name, profile


def _profile(rng: random.Random) -> _Profile:
    roll = rng.random()
    kind = ("daily" if roll < 0.20 else "weekly" if roll < 0.50 else
            "six-hourly" if roll < 0.51 else "hourly" if roll < 0.512 else
            "manual" if roll < 0.82 else "event")
    timeout = rng.choice((300, 600, 1800, 1800, 3600, 3600, 7200, 14400, 86400))
    near_timeout = rng.random() < 0.03
    duration = timeout * 0.9 if near_timeout else min(timeout * 0.6,
                                                      rng.lognormvariate(5.0, 1.0) + 5)
    failure = rng.random()
    return _Profile(
        kind=kind, minute=rng.randrange(60), hour=rng.randrange(24), weekday=rng.randrange(7),
        timeout=timeout, duration=duration,
        failure_rate=0.4 if failure < 0.04 else 0.12 if failure < 0.12 else 0.01,
        stops_days_before=rng.randrange(4, 20) if rng.random() < 0.03 else 0,
        spike=rng.random() < 0.02, near_timeout=near_timeout)


def _trigger(rng: random.Random, profile: _Profile) -> tuple[str, str, dict[str, Any]]:
    parallel = rng.random() < 0.1
    completions = rng.choice((2, 4, 5)) if parallel else 1
    counts = {"replicaCompletionCount": completions,
              "parallelism": rng.choice((1, 2, completions)) if parallel else 1}
    m, h = profile.minute, profile.hour
    cron = {"daily": f"{m} {h} * * *", "weekly": f"{m} {h} * * {profile.weekday}",
            "six-hourly": f"{m} */6 * * *", "hourly": f"{m} * * * *"}.get(profile.kind)
    if cron is not None:
        trigger = "Scheduled" if rng.random() < 0.05 else "Schedule"  # both spellings occur
        return trigger, "scheduleTriggerConfig", {"cronExpression": cron, **counts}
    if profile.kind == "manual":
        return "Manual", "manualTriggerConfig", counts
    scale: dict[str, Any] = {"minExecutions": 0, "pollingInterval": rng.choice((30, 60)),
                             "rules": [{"name": "queue", "type": "azure-servicebus",
                                        "metadata": {"queueName": "work", "messageCount": "5",
                                                     "namespace": "sb-contoso"},
                                        "auth": [{"secretRef": "sb-connection",
                                                  "triggerParameter": "connection"}]}]}
    if rng.random() < 0.7:
        scale["maxExecutions"] = rng.choice((5, 10, 20, 50, 100))
    return "Event", "eventTriggerConfig", {**counts, "scale": scale}


def _tags(rng: random.Random, group: str) -> dict[str, str]:
    tags = {"owner": f"{group.split('-')[1]}-team@contoso.com", "cost-center":
            f"cc-{rng.randrange(1000, 1100)}", "environment": group.rsplit("-", 1)[1]}
    roll = rng.random()
    if roll < 0.08:
        del tags["owner"]
    elif roll < 0.15:
        del tags["cost-center"]
    elif roll < 0.18:
        tags["environment"] = ""
    return tags


def _identity(rng: random.Random, sub: _Subscription, resource_id: str) -> dict[str, Any] | None:
    roll = rng.random()
    if roll < 0.6:
        return {"type": "SystemAssigned", "principalId": _guid("mi", resource_id),
                "tenantId": TENANT}
    if roll < 0.8:
        return {"type": "UserAssigned", "userAssignedIdentities": {sub.uami: {
            "principalId": _guid("uami", sub.uami), "clientId": _guid("client", sub.uami)}}}
    return None


def _secrets_and_env(rng: random.Random, name: str,
                     has_identity: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    secrets: list[dict[str, Any]] = [{"name": "sb-connection"}]
    env: list[dict[str, Any]] = [{"name": "MODE", "value": "batch"},
                                 {"name": "LOG_LEVEL", "value": rng.choice(("INFO", "DEBUG"))}]
    for i in range(rng.randrange(0, 3)):
        secret = f"secret-{i}"
        if has_identity and rng.random() < 0.7:
            secrets.append({"name": secret, "identity": "system",
                            "keyVaultUrl": f"https://kv-{name[:12]}.vault.azure.net/secrets/s{i}"})
        else:
            secrets.append({"name": secret})
        env.append({"name": f"SECRET_{i}", "secretRef": secret})
    roll = rng.random()
    if roll < 0.02:
        env.append({"name": "DB_PASSWORD", "value": f"Pw-{rng.getrandbits(64):x}!x"})
    elif roll < 0.04:
        env.append({"name": "STORAGE_CONNECTION", "value": (
            "DefaultEndpointsProtocol=https;AccountName=st;AccountKey="
            f"{rng.getrandbits(256):064x}==;EndpointSuffix=core.windows.net")})
    return secrets, env


def _image(rng: random.Random, sub: _Subscription, name: str,
           has_identity: bool) -> tuple[str, list[dict[str, Any]]]:
    roll = rng.random()
    repo = f"{sub.acr}/{name.rsplit('-', 1)[0]}"
    if roll < 0.05:
        return "docker.io/library/python:3.12-slim", []
    if roll < 0.15:
        image = f"{repo}:latest"
    elif roll < 0.45:
        image = f"{repo}@sha256:{rng.getrandbits(256):064x}"
    else:
        image = f"{repo}:{rng.randrange(1, 4)}.{rng.randrange(10)}.{rng.randrange(20)}"
    if has_identity and rng.random() < 0.85:
        registry = {"server": sub.acr, "identity": "system"}
    else:
        registry = {"server": sub.acr, "username": f"contoso{sub.index:04d}",
                    "passwordSecretRef": "acr-password"}
    return image, [registry]


# --- executions ---------------------------------------------------------------------------------

_RATE = {"manual": 1 / 14, "event": 0.25}  # executions a day, on average
_FIRINGS = {"daily": (0,), "weekly": (0,), "six-hourly": (0, 6, 12, 18), "hourly": range(24)}


def _executions(rng: random.Random, spec: Spec, job: dict[str, Any], environment: str,
                profile: _Profile) -> list[list[Any]]:
    """The executions query's rows for one job over `spec.days` days before as_of."""
    name = job["name"]
    as_of = int(spec.as_of.timestamp())
    first_day = as_of - spec.days * 86_400
    end = as_of - profile.stops_days_before * 86_400
    starts: list[int] = []
    for day in range(spec.days):
        midnight = first_day + day * 86_400
        if profile.kind in _FIRINGS:
            # 1 January 1970 was a Thursday (weekday 4, counting Sunday as 0).
            if profile.kind == "weekly" and (midnight // 86_400 + 4) % 7 != profile.weekday:
                continue
            for hour in _FIRINGS[profile.kind]:
                at = profile.hour if profile.kind in ("daily", "weekly") else hour
                starts.append(midnight + at * 3600 + profile.minute * 60 + rng.randrange(1, 60))
        else:
            count = _poisson(rng, _RATE[profile.kind])
            starts += [midnight + rng.randrange(86_400) for _ in range(count)]
        if profile.spike and day == spec.days - 2:  # a burst of extra, long executions
            starts += [midnight + 12 * 3600 + i * 60 for i in range(12)]
    spike_day = (as_of - 2 * 86_400) // 86_400
    return [_execution_row(rng, name, environment, index, start, as_of, profile,
                           spike=profile.spike and start // 86_400 == spike_day)
            for index, start in enumerate(s for s in starts if s < end)]


def _poisson(rng: random.Random, rate: float) -> int:
    count, threshold, product = 0, math.exp(-rate), rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


_SUCCEEDED = json.dumps(["SuccessfulCreate", "Completed"])
_RUNNING = json.dumps(["SuccessfulCreate"])


def _execution_row(rng: random.Random, job: str, environment: str, index: int, start: int,
                   as_of: int, profile: _Profile, *, spike: bool) -> list[Any]:
    seconds = max(5.0, profile.duration * rng.uniform(0.7, 1.3))
    if spike:
        seconds = seconds * 8
    status, reason, reasons = "Succeeded", "", _SUCCEEDED
    if rng.random() < profile.failure_rate:
        if profile.near_timeout or rng.random() < 0.2:
            seconds, reason = float(profile.timeout), "DeadlineExceeded"
        else:
            reason = "BackoffLimitExceeded"
        status, reasons = "Failed", json.dumps(["BackOff", "SuccessfulCreate", reason])
    end = start + int(min(seconds, profile.timeout))
    if end >= as_of:  # still running at the cut-off: its last event so far
        status, reason, reasons = "Running", "", _RUNNING
        end = as_of - 1
    execution = f"{job}-{_base36(index * 7919 + 104_729)}"
    return [job, environment, execution, _epoch_iso(start), _epoch_iso(end), status, reason,
            2 + 2 * reasons.count(","), reasons]


def _epoch_iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _base36(number: int) -> str:
    digits = ""
    while number:
        number, digit = divmod(number, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
    return digits.rjust(7, "0")
