#!/usr/bin/env python3
"""Write the bundled sample estate (`auditor scan --sample`) into auditor/sample_estate/.

A made-up company, Contoso, exported its Azure Container Apps jobs the ways people do: some
subscriptions with `az graph query`, one with the ARM list API, one job with
`az containerapp job show`, the environments as a Resource Graph REST response in table format,
executions with `az containerapp job execution list`, and role assignments and definitions from
Resource Graph's `authorizationresources` table, and two weeks of configuration changes from
its `resourcechanges` table. Compliant and non-compliant settings are planted on purpose;
`auditor/sample_estate/README.md` lists them by job.

Deterministic: fixed data, per-job seeded randomness, no clock, no network, stdlib only.
Usage: `python scripts/make_sample_estate.py [OUT_DIR]` (default: auditor/sample_estate/).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "auditor" / "sample_estate"
AS_OF = datetime(2026, 11, 20, tzinfo=UTC)  # the exports were taken just before this instant
WINDOW = timedelta(days=30)  # executions cover the 30 days before AS_OF
KEPT_EXECUTIONS = 100  # Azure keeps only the last 100 executions of a job
SEED = "contoso-sample-estate-v1"

TENANT = "72f9a1c4-6d3e-4b8f-a2c5-e1d7b9f30a6c"
ACR = "contosoacr.azurecr.io"

Row = dict[str, Any]


class _Absent:
    """Marks a field the export does not carry at all (as opposed to null)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


def guid(label: str) -> str:
    """A stable, random-looking (version 4) GUID derived from a label."""
    return str(uuid.UUID(bytes=hashlib.sha256(f"{SEED}:{label}".encode()).digest()[:16],
                         version=4))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


# --- subscriptions, identities, environments -----------------------------------------------------

@dataclass(frozen=True)
class Subscription:
    name: str
    id: str

    @property
    def scope(self) -> str:
        return f"/subscriptions/{self.id}"


PROD = Subscription("contoso-prod", "3f7c2a9e-5b1d-4e8a-9c6f-0d2b7e4a1c35")
DATA = Subscription("contoso-data", "8a4e1f6b-2c9d-4b7e-a5f3-6e1d9c0b8a27")
DEV = Subscription("contoso-dev", "c25d8e3f-7a1b-4f9c-8e6d-1b3a5c7e9f04")
SHARED = Subscription("contoso-shared", "e9b16c4d-3f8a-4d2e-b7c5-9a0e2f4d6b81")


def rg_scope(sub: Subscription, rg: str) -> str:
    return f"{sub.scope}/resourceGroups/{rg}"


@dataclass(frozen=True)
class Uami:
    """A user-assigned managed identity."""

    name: str
    sub: Subscription
    rg: str

    @property
    def id(self) -> str:
        # Azure spells this segment "resourcegroups" inside identity blocks.
        return (f"{self.sub.scope}/resourcegroups/{self.rg}/providers/"
                f"Microsoft.ManagedIdentity/userAssignedIdentities/{self.name}")

    @property
    def principal_id(self) -> str:
        return guid(f"uami-principal:{self.name}")

    @property
    def client_id(self) -> str:
        return guid(f"uami-client:{self.name}")


ID_BILLING = Uami("id-billing-prod", PROD, "rg-identity-prod")
ID_BATCH = Uami("id-batch-prod", PROD, "rg-identity-prod")
ID_DATA_ETL = Uami("id-data-etl", DATA, "rg-data-platform")
ID_ML = Uami("id-ml-platform", DATA, "rg-ml")
ID_DEV = Uami("id-dev-apps", DEV, "rg-dev-apps")
ID_PARTNER = Uami("id-partner-export", DATA, "rg-integration-data")
ID_SHARED = Uami("id-shared-tools", SHARED, "rg-shared-tools")
UAMIS = (ID_BILLING, ID_BATCH, ID_DATA_ETL, ID_ML, ID_PARTNER, ID_DEV, ID_SHARED)


@dataclass(frozen=True)
class Workspace:
    name: str
    sub: Subscription
    rg: str

    @property
    def id(self) -> str:
        return (f"{rg_scope(self.sub, self.rg)}/providers/Microsoft.OperationalInsights/"
                f"workspaces/{self.name}")

    @property
    def customer_id(self) -> str:
        return guid(f"workspace:{self.name}")


LAW_PROD = Workspace("law-contoso-prod", PROD, "rg-monitoring-prod")
LAW_DATA = Workspace("law-contoso-data", DATA, "rg-monitoring-data")
LAW_SHARED = Workspace("law-contoso-shared", SHARED, "rg-monitoring-shared")


@dataclass(frozen=True)
class Env:
    name: str
    sub: Subscription
    rg: str
    location: str = "westeurope"
    logs: str | None = "log-analytics"  # log-analytics, azure-monitor or None
    workspace: Workspace | None = None
    subnet: str | None = None  # infrastructure subnet name in the subscription's VNet
    internal: bool = False
    public_access: str = "Enabled"
    profiles: tuple[tuple[str, str, int, int], ...] = ()  # (name, type, min, max); empty = legacy

    @property
    def id(self) -> str:
        return (f"{rg_scope(self.sub, self.rg)}/providers/Microsoft.App/"
                f"managedEnvironments/{self.name}")

    @property
    def has_profiles(self) -> bool:
        return bool(self.profiles)


CONSUMPTION = ("Consumption", "Consumption", 0, 0)
ENV_PROD = Env("cae-prod-weu", PROD, "rg-containerapps-prod", workspace=LAW_PROD,
               subnet="vnet-prod-weu/subnets/snet-aca-jobs", internal=True,
               public_access="Disabled", profiles=(CONSUMPTION, ("D4-batch", "D4", 1, 3)))
ENV_PROD_BATCH = Env("cae-prod-batch-weu", PROD, "rg-batch-prod", workspace=LAW_PROD,
                     subnet="vnet-prod-weu/subnets/snet-aca-batch", internal=False,
                     profiles=(CONSUMPTION,))
ENV_DATA = Env("cae-data-weu", DATA, "rg-data-platform", logs="azure-monitor",
               subnet="vnet-data-weu/subnets/snet-aca", internal=True, public_access="Disabled",
               profiles=(CONSUMPTION, ("E8-ml", "E8", 0, 2)))
ENV_DATA_NEU = Env("cae-data-neu", DATA, "rg-data-platform-neu", location="northeurope",
                   workspace=LAW_DATA, profiles=(CONSUMPTION,))
ENV_DEV = Env("cae-dev-weu", DEV, "rg-dev-apps", logs=None)
ENV_SHARED = Env("cae-shared-weu", SHARED, "rg-shared-tools", workspace=LAW_SHARED,
                 profiles=(CONSUMPTION,))
ENVIRONMENTS = (ENV_PROD, ENV_PROD_BATCH, ENV_DATA, ENV_DATA_NEU, ENV_DEV, ENV_SHARED)
# Deleted months ago; one job still points at it, and the export does not hold it.
ENV_LEGACY = Env("cae-legacy-weu", PROD, "rg-containerapps-legacy", logs=None)

DISPLAY_LOCATION = {"westeurope": "West Europe", "northeurope": "North Europe"}


# --- pieces of a job -----------------------------------------------------------------------------

def system_identity(job: str) -> Row:
    return {"type": "SystemAssigned", "principalId": system_principal(job), "tenantId": TENANT}


def system_principal(job: str) -> str:
    return guid(f"system-principal:{job}")


def user_identity(*uamis: Uami, with_system: str | None = None, spelling: str = "") -> Row:
    """`with_system=JOB` adds the job's system-assigned identity as well."""
    block: Row = {
        "type": spelling or ("SystemAssigned,UserAssigned" if with_system else "UserAssigned"),
    }
    if with_system:
        block["principalId"] = system_principal(with_system)
        block["tenantId"] = TENANT
    block["userAssignedIdentities"] = {
        u.id: {"principalId": u.principal_id, "clientId": u.client_id} for u in uamis}
    return block


def tags(owner: str, cost_center: str, environment: str, **extra: str) -> dict[str, str]:
    return {"owner": owner, "cost-center": cost_center, "environment": environment, **extra}


def kv_secret(name: str, vault: str, secret: str, identity: str) -> Row:
    """A Key Vault reference; `identity` is a UAMI resource id or "system"."""
    return {"name": name, "keyVaultUrl": f"https://{vault}.vault.azure.net/secrets/{secret}",
            "identity": identity}


def stored_secret(name: str) -> Row:
    """A platform-stored secret: Azure returns its name only."""
    return {"name": name}


def acr_identity(identity: str, server: str = ACR) -> Row:
    return {"server": server, "identity": identity}


def acr_password(username: str, secret: str, server: str = ACR) -> Row:
    return {"server": server, "username": username, "passwordSecretRef": secret}


def val(name: str, value: str) -> Row:
    return {"name": name, "value": value}


def ref(name: str, secret: str) -> Row:
    return {"name": name, "secretRef": secret}


def container(name: str, image: str, cpu: float = 0.5, memory: str = "1Gi", *,
              env: list[Row] | None = None, command: list[str] | None = None,
              args: list[str] | None = None) -> Row:
    item: Row = {"image": image, "name": name}
    if command:
        item["command"] = command
    if args:
        item["args"] = args
    if env:
        item["env"] = env
    item["resources"] = {"cpu": cpu, "memory": memory}
    return item


def digest(label: str) -> str:
    return "sha256:" + hashlib.sha256(f"{SEED}:image:{label}".encode()).hexdigest()


def queue_rule(account: str, queue: str, *, identity: str | None = None,
               secret: str | None = None, length: int = 5) -> Row:
    rule: Row = {"name": f"{queue}-queue", "type": "azure-queue",
                 "metadata": {"accountName": account, "queueName": queue,
                              "queueLength": str(length)}}
    return _rule_auth(rule, identity, secret, "connection")


def servicebus_rule(namespace: str, queue: str, *, identity: str | None = None,
                    secret: str | None = None, count: int = 10) -> Row:
    rule: Row = {"name": f"{queue}-messages", "type": "azure-servicebus",
                 "metadata": {"namespace": namespace, "queueName": queue,
                              "messageCount": str(count)}}
    return _rule_auth(rule, identity, secret, "connection")


def eventhub_rule(namespace: str, hub: str, group: str, *, identity: str) -> Row:
    rule: Row = {"name": f"{hub}-lag", "type": "azure-eventhub",
                 "metadata": {"eventHubNamespace": namespace, "eventHubName": hub,
                              "consumerGroup": group, "unprocessedEventThreshold": "64",
                              "storageAccountName": "contosodatackpt",
                              "blobContainer": "eventhub-checkpoints", "checkpointStrategy":
                              "blobMetadata"}}
    return _rule_auth(rule, identity, None, "")


def _rule_auth(rule: Row, identity: str | None, secret: str | None, parameter: str) -> Row:
    if secret:
        rule["auth"] = [{"secretRef": secret, "triggerParameter": parameter}]
    if identity:
        rule["identity"] = identity
    return rule


def scale(*rules: Row, min_executions: int = 0, max_executions: int | None = None,
          polling: int = 30) -> Row:
    block: Row = {"minExecutions": min_executions}
    if max_executions is not None:
        block["maxExecutions"] = max_executions
    block["pollingInterval"] = polling
    block["rules"] = list(rules)
    return block


def system_data(name: str, created_by: str) -> Row:
    rng = random.Random(f"{SEED}:systemData:{name}")
    created = AS_OF - timedelta(days=rng.randint(120, 700), seconds=rng.randint(0, 86399))
    modified = created + timedelta(days=rng.randint(0, (AS_OF - created).days - 2),
                                   seconds=rng.randint(0, 86399))
    return {"createdBy": created_by, "createdByType": "User", "createdAt": iso(created),
            "lastModifiedBy": created_by, "lastModifiedByType": "User",
            "lastModifiedAt": iso(modified)}


# --- jobs ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunProfile:
    """How a job's executions look: typical duration, failure rate, runs per day (event/manual)."""

    seconds: int
    fail_rate: float = 0.02
    per_day: float = 0.0
    hang_rate: float = 0.0  # share of runs that hang until replicaTimeout (then Failed)
    running_now: bool = False  # the newest execution is still running at AS_OF
    stalled_days: int = 0  # the schedule stopped firing this many days before AS_OF
    burst_days_ago: int = 0  # a backlog day: `burst_runs` extra runs of `burst_seconds`
    burst_runs: int = 0
    burst_seconds: int = 0


@dataclass
class Job:
    """A job and where it is exported from; `arm` is the resource as ARM returns it."""

    arm: Row
    sub: Subscription
    rg: str
    env: Env
    runs: RunProfile | None

    @property
    def name(self) -> str:
        return str(self.arm["name"])

    @property
    def id(self) -> str:
        return str(self.arm["id"])


TRIGGER_KEYS = {"Schedule": "scheduleTriggerConfig", "Scheduled": "scheduleTriggerConfig",
                "Event": "eventTriggerConfig", "Manual": "manualTriggerConfig"}


def make_job(name: str, sub: Subscription, rg: str, env: Env, trigger: str = "Schedule", *,
             cron: str | None = None, event: Row | None = None,
             identity: Any = ABSENT, tags: Any = ABSENT,
             timeout: Any = 1800, retries: Any = 1, parallelism: int = 1, completions: int = 1,
             secrets: list[Row] | None = None, registries: list[Row] | None = None,
             containers: list[Row], init: list[Row] | None = None,
             profile: Any = ABSENT, state: str = "Succeeded",
             runs: RunProfile | None = RunProfile(120)) -> Job:
    """A `Microsoft.App/jobs` resource in ARM shape; ABSENT leaves a field out entirely."""
    trigger_config: Row = {"replicaCompletionCount": completions, "parallelism": parallelism}
    if cron is not None:
        trigger_config = {"replicaCompletionCount": completions, "cronExpression": cron,
                          "parallelism": parallelism}
    if event is not None:
        trigger_config["scale"] = event
    configuration: Row = {"secrets": secrets or None, "triggerType": trigger}
    if timeout is not ABSENT:
        configuration["replicaTimeout"] = timeout
    if retries is not ABSENT:
        configuration["replicaRetryLimit"] = retries
    for key in ("manualTriggerConfig", "scheduleTriggerConfig", "eventTriggerConfig"):
        configuration[key] = trigger_config if key == TRIGGER_KEYS[trigger] else None
    configuration["registries"] = registries or None
    configuration["identitySettings"] = []
    if profile is ABSENT:
        profile = "Consumption" if env.has_profiles else None
    resource_id = f"{rg_scope(sub, rg)}/providers/Microsoft.App/jobs/{name}"
    arm: Row = {"id": resource_id, "name": name, "type": "Microsoft.App/jobs",
                "location": DISPLAY_LOCATION[env.location]}
    if tags is not ABSENT:
        arm["tags"] = tags
    if identity is not ABSENT:
        arm["identity"] = identity
    arm["properties"] = {
        "provisioningState": state,
        "environmentId": env.id,
        "workloadProfileName": profile,
        "configuration": configuration,
        "template": {"containers": containers, "initContainers": init or None, "volumes": None},
        "eventStreamEndpoint": (f"https://{env.location}.azurecontainerapps.dev/subscriptions/"
                                f"{sub.id}/resourceGroups/{rg}/jobs/{name}/eventstream"),
    }
    return Job(arm, sub, rg, env, runs)


# Tag sets by team.
BILLING = tags("team-billing@contoso.com", "CC-1042", "prod")
FINANCE = tags("finance-ops", "CC-1100", "prod")
REPORTING = tags("team-reporting@contoso.com", "CC-1310", "prod")
ORDERS = tags("team-orders@contoso.com", "CC-2040", "prod")
PLATFORM = tags("platform-team", "CC-9000", "prod")
DATA_TEAM = tags("team-data@contoso.com", "CC-3300", "prod")
ML = tags("ml-team@contoso.com", "CC-3410", "prod")
DEV_TAGS = tags("platform-team", "CC-9000", "dev")

# Planted fake credentials (never real: the key and signature decode to a warning).
FAKE_ACCOUNT_KEY = base64.b64encode(
    b"auditor sample estate: NOT a real storage account key; never use").decode()
assert len(FAKE_ACCOUNT_KEY) == 88  # 64 bytes, like a real key
FAKE_SAS_SIG = base64.b64encode(b"auditor-sample: fake SAS sig!!!!").decode().replace("=", "%3D")
FAKE_CONNECTION_STRING = (
    "DefaultEndpointsProtocol=https;AccountName=contosodata;"
    f"AccountKey={FAKE_ACCOUNT_KEY};EndpointSuffix=core.windows.net")
FAKE_SAS_URL = (
    "https://contosodata.blob.core.windows.net/raw?sv=2022-11-02&ss=b&srt=co&sp=rdl"
    f"&se=2027-03-31T00:00:00Z&st=2026-09-01T00:00:00Z&spr=https&sig={FAKE_SAS_SIG}")
FAKE_POSTGRES_URL = ("postgres://etl_loader:Wq7tZ2vK9pLx4Rj@pg-contoso-orders.postgres."
                     "database.azure.com:5432/orders?sslmode=require")

HOSTILE_OWNER = '=HYPERLINK("http://example.invalid","x")'
PIPE_BACKTICK_OWNER = "team-procurement | `vendor-ops`"


def prod_jobs() -> list[Job]:
    billing_rg, reporting_rg = "rg-billing-prod", "rg-reporting-prod"
    billing, batch = ID_BILLING.id, ID_BATCH.id
    return [
        make_job(
            "nightly-invoice-export", PROD, billing_rg, ENV_PROD, cron="0 2 * * *",
            identity=user_identity(ID_BILLING), tags=BILLING, timeout=3600, retries=1,
            secrets=[kv_secret("billing-db-password", "kv-contoso-prod", "billing-db-password",
                               billing)],
            registries=[acr_identity(billing)],
            init=[container("wait-for-db", f"{ACR}/billing/db-wait:1.0.3", 0.25, "0.5Gi",
                            env=[val("DB_HOST", "sql-contoso-billing.database.windows.net")])],
            containers=[container(
                "invoice-export", f"{ACR}/billing/invoice-export:2.8.1", 1, "2Gi",
                env=[val("KEY_VAULT_NAME", "kv-contoso-prod"), val("LOG_LEVEL", "info"),
                     val("AZURE_CLIENT_ID", ID_BILLING.client_id),
                     val("EXPORT_CONTAINER_URL",
                         "https://contosobilling.blob.core.windows.net/invoices"),
                     ref("DB_PASSWORD", "billing-db-password")])],
            runs=RunProfile(1500)),
        make_job(
            "invoice-pdf-renderer", PROD, billing_rg, ENV_PROD, "Event",
            event=scale(queue_rule("contosobilling", "invoice-render", identity=billing),
                        max_executions=10),
            identity=user_identity(ID_BILLING), tags=BILLING, timeout=600, retries=2,
            registries=[acr_identity(billing)],
            containers=[container("renderer", f"{ACR}/billing/pdf-renderer:1.12.0", 1, "2Gi",
                                  env=[val("LOG_LEVEL", "info"),
                                       val("AZURE_CLIENT_ID", ID_BILLING.client_id)])],
            runs=RunProfile(75, per_day=2)),
        make_job(
            "invoice-retry-dispatcher", PROD, billing_rg, ENV_PROD, "Event",
            event=scale(queue_rule("contosobilling", "invoice-retry", identity=billing, length=1),
                        max_executions=10, polling=60),
            identity=user_identity(ID_BILLING), tags=BILLING, timeout=300, retries=1,
            registries=[acr_identity(billing)],
            init=[container("config-render", f"{ACR}/billing/config-render:1.0.0", 0.25, "0.5Gi")],
            containers=[container("dispatcher", f"{ACR}/billing/retry-dispatcher:1.1.0",
                                  0.25, "0.5Gi", env=[val("LOG_LEVEL", "warning")])],
            runs=RunProfile(40, per_day=0.7)),
        make_job(
            "payment-reconciliation", PROD, "rg-finance-prod", ENV_PROD, cron="30 3 * * *",
            identity=system_identity("payment-reconciliation"), tags=FINANCE,
            timeout=3600, retries=2,
            secrets=[kv_secret("bank-api-key", "kv-contoso-prod", "bank-api-key", "system"),
                     stored_secret("sftp-password"), stored_secret("acr-password")],
            registries=[acr_password("contosoacr", "acr-password")],
            containers=[container(
                "reconcile", f"{ACR}/finance/reconcile:3.1.4", 1, "2Gi",
                env=[ref("BANK_API_KEY", "bank-api-key"), ref("SFTP_PASSWORD", "sftp-password"),
                     val("SFTP_HOST", "sftp.bank.example"), val("LOG_LEVEL", "info")])],
            runs=RunProfile(900, fail_rate=0.35)),
        make_job(
            "dunning-letters-batch", PROD, billing_rg, ENV_PROD, cron="0 6 * * 1-5",
            identity=user_identity(ID_BILLING),
            tags={"Owner": "team-billing@contoso.com", "Cost-Center": "CC-1042",
                  "Environment": "prod"},
            timeout=14400, retries=3, registries=[acr_identity(billing)],
            containers=[container("dunning", f"{ACR}/billing/dunning:0.9.7", 0.5, "1Gi",
                                  env=[val("LOG_LEVEL", "info")])],
            runs=RunProfile(2400, stalled_days=6)),
        make_job(
            "ledger-snapshot", PROD, "rg-finance-prod", ENV_PROD, cron="0 */4 * * *",
            identity=user_identity(ID_BATCH), tags=FINANCE, timeout=21600, retries=1,
            registries=[acr_identity(batch)], profile="D4-batch",
            containers=[container("snapshot", f"{ACR}/finance/ledger-snapshot:2024.11.3", 2, "4Gi",
                                  env=[val("LOG_LEVEL", "info")])],
            runs=RunProfile(12600, fail_rate=0.05, hang_rate=0.08, running_now=True)),
        make_job(
            "fx-rates-refresh", PROD, "rg-finance-prod", ENV_PROD, cron="*/5 * * * *",
            identity=user_identity(ID_BATCH), tags=FINANCE, timeout=1800, retries=0,
            registries=[acr_identity(batch)],
            containers=[container(
                "fx-rates", f"{ACR}/finance/fx-rates@{digest('fx-rates')}", 0.25, "0.5Gi",
                env=[val("API_BASE_URL", "https://api.exchangerates.example/v1"),
                     val("LOG_LEVEL", "info")])],
            runs=RunProfile(50, fail_rate=0.03, hang_rate=0.01)),
        make_job(
            "vendor-catalog-sync", PROD, "rg-procurement-prod", ENV_PROD, cron="20 5 * * *",
            identity=user_identity(ID_BATCH),
            tags=tags(PIPE_BACKTICK_OWNER, "CC-2210", "prod"),
            timeout=2700, retries=5, registries=[acr_identity(batch)],
            containers=[container("catalog-sync", f"{ACR}/procurement/catalog-sync:1.7.2",
                                  env=[val("SUPPLIER_FEED_URL",
                                           "https://feeds.supplier.example/catalog.csv")])],
            runs=RunProfile(2000)),
        make_job(
            "tax-filing-export", PROD, "rg-finance-prod", ENV_PROD, cron="0 3 1 * *",
            identity=user_identity(ID_BATCH), tags=FINANCE, timeout=7200, retries=1,
            registries=[acr_identity(batch)],
            containers=[container("tax-export", f"{ACR}/finance/tax-export:1.2.0", 1, "2Gi")],
            runs=RunProfile(3000)),
        make_job(
            "customer-churn-scoring", PROD, "rg-analytics-prod", ENV_PROD_BATCH, "Manual",
            identity=None, tags={"owner": "analytics-team", "environment": "prod"},
            timeout=3600, retries=1, secrets=[stored_secret("acr-password")],
            registries=[acr_password("contosoacr", "acr-password")],
            containers=[container("churn-score", f"{ACR}/analytics/churn-score:1.3.0", 2, "4Gi",
                                  env=[val("MODEL_VERSION", "2026-10"),
                                       val("LOG_LEVEL", "info")])],
            runs=RunProfile(1800, per_day=0.3)),
        make_job(
            "reporting-cube-rebuild", PROD, reporting_rg, ENV_PROD_BATCH, cron="0 1 * * *",
            identity={"type": "None"}, tags=REPORTING, timeout=7200, retries=2,
            secrets=[stored_secret("sql-connection"), stored_secret("acr-password")],
            registries=[acr_password("contosoacr", "acr-password")],
            containers=[container("cube-builder", f"{ACR}/reporting/cube-builder:5.2.0", 2, "4Gi",
                                  env=[ref("SQL_CONNECTION", "sql-connection"),
                                       val("PASSWORD_ROTATION_DAYS", "90")])],
            runs=RunProfile(4200, fail_rate=0.07)),
        make_job(
            "sla-report-mailer", PROD, reporting_rg, ENV_PROD, cron="0 7 * * 1",
            identity=system_identity("sla-report-mailer"),
            tags=tags(HOSTILE_OWNER, "CC-1310", "prod"), timeout=900, retries=1,
            secrets=[stored_secret("smtp-password")], registries=[acr_identity("system")],
            containers=[container("mailer", f"{ACR}/reporting/sla-mailer:1.0.8", 0.25, "0.5Gi",
                                  env=[val("SMTP_HOST", "smtp.office365.com"),
                                       val("SMTP_PORT", "587"),
                                       ref("SMTP_PASSWORD", "smtp-password"),
                                       val("REPORT_URL", "https://reports.contoso.com/sla")])],
            runs=RunProfile(180)),
        make_job(
            "order-events-archiver", PROD, "rg-orders-prod", ENV_PROD_BATCH, "Event",
            event=scale(servicebus_rule("sb-contoso-orders", "order-events",
                                        secret="servicebus-connection", count=50)),
            identity=system_identity("order-events-archiver"), tags=ORDERS,
            timeout=900, retries=1,
            secrets=[stored_secret("servicebus-connection")],
            registries=[acr_identity("system")],
            containers=[container("archiver", f"{ACR}/orders/events-archiver:4.0.1",
                                  env=[ref("SERVICEBUS_CONNECTION", "servicebus-connection"),
                                       val("ARCHIVE_URL",
                                           "https://contosoorders.blob.core.windows.net/archive")])],
            runs=RunProfile(240, per_day=1.5)),
        make_job(
            "gdpr-erasure-worker", PROD, "rg-privacy-prod", ENV_PROD, "Event",
            event=scale(servicebus_rule("sb-contoso-privacy", "erasure-requests",
                                        identity=ID_BATCH.id, count=1), max_executions=100),
            identity=user_identity(ID_BATCH, with_system="gdpr-erasure-worker"),
            tags=tags("privacy-office@contoso.com", "CC-1500", "prod"), timeout=1200, retries=3,
            secrets=[kv_secret("crm-api-token", "kv-contoso-prod", "crm-api-token", ID_BATCH.id)],
            registries=[acr_identity(ID_BATCH.id)],
            init=[container("consent-cache-warmup", f"{ACR}/privacy/cache-warmup:2.2.0",
                            0.25, "0.5Gi")],
            containers=[container("erasure", f"{ACR}/privacy/erasure-worker:2.2.0",
                                  env=[ref("CRM_API_TOKEN", "crm-api-token"),
                                       val("CRM_BASE_URL", "https://crm.contoso.com/api")])],
            runs=RunProfile(300, per_day=0.5)),
        make_job(
            "prod-db-backup-verify", PROD, "rg-platform-prod", ENV_LEGACY, cron="0 4 * * 0",
            identity=user_identity(ID_BATCH), tags=PLATFORM, timeout=ABSENT, retries=1,
            containers=[container("verify", "mcr.microsoft.com/mssql-tools", 1, "2Gi",
                                  command=["/bin/bash", "-c"],
                                  args=["/scripts/verify-restore.sh --latest"])],
            runs=None),
        make_job(
            "cert-expiry-scanner", PROD, "rg-platform-prod", ENV_PROD, cron="0 8 * * *",
            identity=user_identity(ID_BATCH), tags=PLATFORM, timeout=600, retries=0,
            containers=[container("scanner", "mcr.microsoft.com/azure-cli:latest", 0.25, "0.5Gi",
                                  command=["/bin/sh", "-c"],
                                  args=["az login --identity --username $AZURE_CLIENT_ID && "
                                        "/scripts/cert-expiry.sh --days 30"],
                                  env=[val("AZURE_CLIENT_ID", ID_BATCH.client_id)])],
            runs=RunProfile(90)),
        make_job(
            "subscription-cost-export", PROD, "rg-platform-prod", ENV_PROD, cron="0 6 * * *",
            identity=user_identity(ID_BATCH), tags=PLATFORM, timeout=1800, retries=1,
            containers=[container("cost-export", "mcr.microsoft.com/azure-cli:2.67.0",
                                  0.25, "0.5Gi", command=["/bin/sh", "-c"],
                                  args=["/scripts/export-costs.sh --scope subscription"])],
            runs=RunProfile(240)),
    ]


def data_jobs() -> list[Job]:
    platform_rg, ml_rg, neu_rg = "rg-data-platform", "rg-ml", "rg-data-platform-neu"
    etl, ml = ID_DATA_ETL.id, ID_ML.id
    return [
        make_job(
            "etl-orders-loader", DATA, platform_rg, ENV_DATA, cron="15 * * * *",
            identity=user_identity(ID_DATA_ETL), tags=DATA_TEAM, timeout=3000, retries=2,
            secrets=[stored_secret("registry-password")],
            registries=[acr_password("etl-pull", "registry-password",
                                     server="registry.contoso.com:5000")],
            containers=[container("loader", "registry.contoso.com:5000/etl/loader", 1, "2Gi",
                                  env=[val("ORDERS_DB_URL", FAKE_POSTGRES_URL),
                                       val("BATCH_SIZE", "5000"), val("LOG_LEVEL", "info")])],
            runs=RunProfile(1100, fail_rate=0.04)),
        make_job(
            "etl-customers-loader", DATA, platform_rg, ENV_DATA, cron="45 1 * * *",
            identity=user_identity(ID_DATA_ETL), tags=DATA_TEAM, timeout=3600, retries=2,
            secrets=[kv_secret("crm-db-password", "kv-contoso-data", "crm-db-password", etl)],
            registries=[acr_identity(etl)],
            init=[container("schema-check", f"{ACR}/etl/schema-check:3.4.0", 0.25, "0.5Gi")],
            containers=[container(
                "loader", f"{ACR}/etl/customers-loader:3.4.0", 1, "2Gi",
                env=[val("DATABASE_HOST", "pg-contoso-crm.postgres.database.azure.com"),
                     val("DATABASE_USER", "etl_loader"), ref("DATABASE_PASSWORD",
                                                             "crm-db-password")])],
            runs=RunProfile(1300)),
        make_job(
            "ml-feature-refresh", DATA, ml_rg, ENV_DATA, cron="0 2,14 * * *",
            identity=user_identity(ID_ML), tags=ML, timeout=5400, retries=10,
            registries=[acr_identity(ml)],
            containers=[container("features", f"{ACR}/ml/feature-refresh:0.18.2", 4, "8Gi",
                                  env=[val("FEATURE_STORE_URL",
                                           "https://contosoml.blob.core.windows.net/features")])],
            runs=RunProfile(2100, fail_rate=0.12)),
        make_job(
            "ml-model-training", DATA, ml_rg, ENV_DATA, "Manual",
            identity=user_identity(ID_ML), tags=ML, timeout=86400, retries=1, parallelism=4,
            completions=4, registries=[acr_identity(ml)], profile="E8-ml",
            containers=[container("trainer", f"{ACR}/ml/trainer:2026.11.1", 4, "32Gi",
                                  env=[val("EPOCHS", "40"), val("LOG_LEVEL", "debug")])],
            runs=RunProfile(30000, per_day=0.25, fail_rate=0.1, running_now=True)),
        make_job(
            "ml-batch-inference", DATA, ml_rg, ENV_DATA, "Event",
            event=scale(queue_rule("contosoml", "inference-requests", secret="queue-connection",
                                   length=10), max_executions=100),
            identity=user_identity(ID_ML), tags=ML, timeout=1800, retries=1,
            secrets=[stored_secret("queue-connection")], registries=[acr_identity(ml)],
            containers=[container("inference", f"{ACR}/ml/batch-inference:latest", 2, "4Gi",
                                  env=[val("STORAGE_CONNECTION_STRING", FAKE_CONNECTION_STRING),
                                       ref("QUEUE_CONNECTION", "queue-connection")])],
            runs=RunProfile(420, per_day=1.5, fail_rate=0.05, running_now=True,
                            burst_days_ago=3, burst_runs=80, burst_seconds=1500)),
        make_job(
            "ml-drift-monitor", DATA, ml_rg, ENV_DATA, cron="30 6 * * *",
            identity=user_identity(ID_ML), tags=ML, timeout=1800, retries=1,
            registries=[acr_identity(ml)],
            containers=[container("drift", f"{ACR}/ml/drift-monitor:0.5.1",
                                  env=[val("ALERT_THRESHOLD", "0.15")])],
            runs=RunProfile(350)),
        make_job(
            "clickstream-compactor", DATA, platform_rg, ENV_DATA, cron="*/10 * * * *",
            identity=user_identity(ID_DATA_ETL), tags=DATA_TEAM, timeout=540, retries=0,
            registries=[acr_identity(etl)],
            containers=[container("compactor", f"{ACR}/data/compactor:1.5.0", 0.5, "1Gi",
                                  env=[val("BLOB_ENDPOINT",
                                           "https://contosodata.blob.core.windows.net/")])],
            runs=RunProfile(200, fail_rate=0.01)),
        make_job(
            "data-quality-checks", DATA, platform_rg, ENV_DATA, cron="0 5 * * *",
            identity=user_identity(ID_DATA_ETL),
            tags=tags("team-data@contoso.com", "CC-3300", ""), timeout=1800, retries=ABSENT,
            registries=[acr_identity(etl)],
            containers=[container("dq", f"{ACR}/data/dq-runner:0.7.3",
                                  env=[val("LOG_LEVEL", "info")])],
            runs=RunProfile(700, fail_rate=0.1)),
        make_job(
            "lake-partition-pruner", DATA, platform_rg, ENV_DATA, cron="0 3 * * 6",
            identity=system_identity("lake-partition-pruner"),
            tags=tags("   ", "CC-3300", "prod"), timeout=3600, retries=1,
            containers=[container(
                "pruner", "python:3.12-slim", 0.5, "1Gi", command=["sh", "-c"],
                args=["pip install --quiet azure-storage-blob==12.23.1 && python /opt/prune.py "
                      f"--older-than-days 90 --container-url '{FAKE_SAS_URL}'"])],
            runs=RunProfile(1500)),
        make_job(
            "export-to-partner-sftp", DATA, "rg-integration-data", ENV_DATA, cron="0 22 * * *",
            identity=user_identity(ID_PARTNER), tags={}, timeout=1800, retries=3,
            secrets=[stored_secret("sftp-private-key"), stored_secret("sftp-password")],
            registries=[acr_identity(ID_PARTNER.id)],
            containers=[container("sftp-push", f"{ACR}/integration/sftp-push:2.0.0",
                                  env=[val("SFTP_HOST", "sftp.partner.example"),
                                       val("SFTP_USER", "contoso"),
                                       val("SFTP_PASSWORD_FILE", "/mnt/secrets/sftp-password"),
                                       ref("SFTP_PRIVATE_KEY", "sftp-private-key")])],
            runs=RunProfile(400, fail_rate=0.15)),
        make_job(
            "cosmos-change-feed-replay", DATA, platform_rg, ENV_DATA, "Manual",
            identity=user_identity(ID_DATA_ETL), tags=DATA_TEAM, timeout=1800, retries=0,
            registries=[acr_identity(etl)],
            containers=[container("replay", f"{ACR}/data/cosmos-replay:1.2.1",
                                  env=[val("COSMOS_ENDPOINT",
                                           "https://cosmos-contoso-data.documents.azure.com:443/"),
                                       val("AZURE_CLIENT_ID", ID_DATA_ETL.client_id)])],
            runs=RunProfile(900, per_day=0.2)),
        make_job(
            "sensor-ingest-backfill", DATA, neu_rg, ENV_DATA_NEU, "Event",
            event=scale(eventhub_rule("evh-contoso-iot", "sensor-telemetry", "backfill",
                                      identity=etl), max_executions=10),
            identity=user_identity(ID_DATA_ETL), tags=DATA_TEAM, timeout=1200, retries=1,
            registries=[acr_identity(etl)],
            containers=[container("ingest", f"{ACR}/iot/ingest-backfill:0.4.0", 0.5, "1Gi")],
            runs=RunProfile(500, per_day=0.7, fail_rate=0.03)),
        make_job(
            "geo-enrichment-batch", DATA, neu_rg, ENV_DATA_NEU, "Manual",
            identity=user_identity(ID_DATA_ETL), tags=DATA_TEAM, timeout=3600, retries=1,
            registries=[acr_identity(etl)],
            containers=[container("geo", f"{ACR}/data/geo-enrich:2.1.0", 2, "4Gi",
                                  env=[val("GEOCODER_URL", "https://geo.contoso.com/v2")])],
            runs=RunProfile(2000, per_day=0.3)),
        make_job(
            "warehouse-vacuum", DATA, platform_rg, ENV_DATA, "Scheduled", cron="0 0 * * 0",
            identity=system_identity("warehouse-vacuum"), tags=DATA_TEAM, timeout=7200,
            retries=0, registries=[acr_identity("system")],
            containers=[container("vacuum", f"{ACR}/data/warehouse-vacuum:1.0.2")],
            runs=RunProfile(3600)),
        make_job(
            "dbt-models-build", DATA, platform_rg, ENV_DATA, cron="0 4 * * *",
            identity=user_identity(ID_DATA_ETL),
            tags={"OWNER": "team-analytics-eng@contoso.com", "COST-CENTER": "CC-3300",
                  "Environment": "prod"},
            timeout=5400, retries=1, registries=[acr_identity(etl)],
            containers=[container("dbt", f"{ACR}/data/dbt-runner@{digest('dbt-runner')}", 1,
                                  "2Gi", args=["build", "--target", "prod"])],
            runs=RunProfile(2600, fail_rate=0.06)),
        make_job(
            "log-retention-enforcer", DATA, "rg-monitoring-data", ENV_DATA, cron="0 2 * * 0",
            identity=user_identity(ID_DATA_ETL, with_system="log-retention-enforcer",
                                   spelling="SystemAssigned, UserAssigned"),
            tags=PLATFORM, timeout=1800, retries=1,
            containers=[container("enforcer", "mcr.microsoft.com/azure-cli:2.67.0",
                                  0.25, "0.5Gi", command=["/bin/sh", "-c"],
                                  args=["/scripts/enforce-retention.sh --days 90"])],
            runs=RunProfile(300)),
    ]


def dev_jobs() -> list[Job]:
    rg, dev = "rg-dev-apps", ID_DEV.id
    return [
        make_job(
            "dev-nightly-invoice-export", DEV, rg, ENV_DEV, "Scheduled", cron="0 2 * * *",
            tags=tags("team-billing@contoso.com", "CC-1042", "dev"), timeout=3600, retries=1,
            secrets=[stored_secret("acr-password")],
            registries=[acr_password("contosoacr", "acr-password")],
            containers=[container("invoice-export", f"{ACR}/billing/invoice-export:2.9.0-rc1",
                                  env=[val("LOG_LEVEL", "debug")])]),
        make_job(
            "dev-etl-orders-loader", DEV, rg, ENV_DEV, cron="*/15 * * * *",
            identity=user_identity(ID_DEV), tags=DEV_TAGS, timeout=ABSENT, retries=1,
            registries=[acr_identity(dev)],
            containers=[container("loader", f"{ACR}/etl/orders-loader:latest",
                                  env=[val("ORDERS_DB_URL", "postgres://pg-contoso-dev.postgres."
                                           "database.azure.com:5432/orders?sslmode=require")])]),
        make_job(
            "dev-ml-feature-refresh", DEV, rg, ENV_DEV, cron="0 */3 * * *",
            identity=user_identity(ID_DEV), timeout=3600, retries=5,
            registries=[acr_identity(dev)],
            containers=[container("features", f"{ACR}/ml/feature-refresh:0.19.0-dev", 2, "4Gi")]),
        make_job(
            "dev-user-provisioning-sync", DEV, rg, ENV_DEV, "Manual",
            identity=system_identity("dev-user-provisioning-sync"), tags=DEV_TAGS,
            timeout=1200, retries=0, registries=[acr_identity("system")],
            containers=[container("user-sync", f"{ACR}/identity/user-sync:1.4.0",
                                  env=[val("PASSWORD_MIN_LENGTH", "12"),
                                       val("GRAPH_URL", "https://graph.microsoft.com/v1.0")])]),
        make_job(
            "dev-sandbox-runner", DEV, rg, ENV_DEV, "Manual",
            identity={"type": "None"},
            tags={"owner": "j.smith@contoso.com", "purpose": "sandbox"},
            timeout=1800, retries=0, secrets=[stored_secret("github-token")],
            containers=[container("sandbox", "ubuntu", 0.25, "0.5Gi",
                                  command=["sleep"], args=["600"],
                                  env=[ref("GITHUB_TOKEN", "github-token")])]),
        make_job(
            "dev-queue-drainer", DEV, rg, ENV_DEV, "Event",
            event=scale(servicebus_rule("sb-contoso-dev", "dead-letter-replay", identity=dev)),
            identity=user_identity(ID_DEV), tags=DEV_TAGS, timeout=600, retries=1,
            registries=[acr_identity(dev)],
            containers=[container("drainer", f"{ACR}/tools/queue-drainer:0.3.1", 0.25, "0.5Gi")]),
        make_job(
            "dev-load-test-seeder", DEV, rg, ENV_DEV, "Manual",
            identity=user_identity(ID_DEV), tags=DEV_TAGS, timeout=20000, retries=10,
            state="Failed", registries=[acr_identity(dev)],
            containers=[container("seeder", f"{ACR}/qa/load-seeder:1.0.0", 2, "4Gi")]),
        make_job(
            "dev-report-preview", DEV, rg, ENV_DEV, cron="0 9 * * 1-5",
            identity=user_identity(ID_DEV), tags=DEV_TAGS, timeout=900, retries=1,
            secrets=[kv_secret("acr-password", "kv-contoso-dev", "acr-pull-password", dev)],
            registries=[acr_password("contosoacr", "acr-password")],
            containers=[container("preview", f"{ACR}/reporting/sla-mailer:1.1.0-beta",
                                  0.25, "0.5Gi")]),
        make_job(
            "dev-schema-migrator", DEV, rg, ENV_DEV, "Manual",
            identity=user_identity(ID_DEV), tags=tags("team-orders@contoso.com", "CC-2040", "Dev"),
            timeout=1800, retries=0, registries=[acr_identity(dev)],
            init=[container("flyway", "flyway/flyway:10.20", 0.5, "1Gi", args=["migrate"],
                            env=[val("FLYWAY_URL", "jdbc:postgresql://pg-contoso-dev.postgres."
                                     "database.azure.com:5432/orders"),
                                 val("FLYWAY_USER", "migrator"),
                                 val("FLYWAY_PASSWORD", "Hn3vQ8zTm5Kw2Ys")])],
            containers=[container("verify", f"{ACR}/orders/migrations:4.1.0", 0.25, "0.5Gi")]),
    ]


def shared_job() -> Job:
    return make_job(
        "acr-image-purge", SHARED, "rg-shared-tools", ENV_SHARED, cron="0 1 * * 0",
        identity=user_identity(ID_SHARED), tags=PLATFORM | {"environment": "shared"},
        timeout=3600, retries=1,
        containers=[container("purge", "mcr.microsoft.com/acr/acr-cli:0.14", 0.5, "1Gi",
                              args=["purge", "--registry", ACR, "--filter", "ci/.*:.*",
                                    "--ago", "30d", "--untagged"])],
        runs=RunProfile(1200))


# --- export shapes -------------------------------------------------------------------------------

def graph_columns(row: Row, sub: Subscription, rg: str, location: str) -> Row:
    """A Resource Graph row: the ARM resource plus the table's own columns, type lower case."""
    return {
        "id": row["id"], "name": row["name"], "type": row["type"].lower(), "tenantId": TENANT,
        "kind": "", "location": location, "resourceGroup": rg.lower(), "subscriptionId": sub.id,
        "managedBy": "", "sku": None, "plan": None, "properties": row.get("properties"),
        "tags": row.get("tags"), "identity": row.get("identity"), "zones": None,
        "extendedLocation": None,
    }


def graph_job_row(job: Job) -> Row:
    return graph_columns(job.arm, job.sub, job.rg, job.env.location)


def az_graph_query(rows: list[Row]) -> Row:
    """`az graph query -q ... --first 1000` output."""
    return {"count": len(rows), "data": rows, "skip_token": None, "total_records": len(rows)}


def rest_graph_response(rows: list[Row]) -> Row:
    """The Resource Graph REST response, objectArray format."""
    return {"totalRecords": len(rows), "count": len(rows), "data": rows, "facets": [],
            "resultTruncated": "false"}


def rest_graph_table(rows: list[Row]) -> Row:
    """The Resource Graph REST response, table format (columns + rows)."""
    names = list(rows[0])
    types = {name: _column_type(rows, name) for name in names}
    return {"totalRecords": len(rows), "count": len(rows),
            "data": {"columns": [{"name": n, "type": types[n]} for n in names],
                     "rows": [[row.get(n) for n in names] for row in rows]},
            "facets": [], "resultTruncated": "false"}


def _column_type(rows: list[Row], name: str) -> str:
    values = [r.get(name) for r in rows if r.get(name) is not None]
    if values and all(isinstance(v, str) for v in values):
        return "string"
    return "object"


def arm_list(resources: list[Row]) -> Row:
    return {"value": resources, "nextLink": None}


def environment_row(env: Env) -> Row:
    logs: Row | None = None
    if env.logs == "log-analytics" and env.workspace is not None:
        logs = {"destination": "log-analytics",
                "logAnalyticsConfiguration": {"customerId": env.workspace.customer_id,
                                              "dynamicJsonColumns": False}}
    elif env.logs:
        logs = {"destination": env.logs}
    vnet: Row | None = None
    if env.subnet:
        network_rg = f"rg-network-{env.sub.name.removeprefix('contoso-')}"
        vnet = {"internal": env.internal,
                "infrastructureSubnetId": (f"{rg_scope(env.sub, network_rg)}/providers/"
                                           f"Microsoft.Network/virtualNetworks/{env.subnet}")}
    seed = hashlib.sha256(f"{SEED}:domain:{env.name}".encode()).digest()
    prefix = f"{env.name}-internal" if env.internal else env.name
    static_ip = (f"10.{40 + ENVIRONMENTS.index(env)}.0.{seed[4] % 200 + 4}" if env.internal
                 else f"20.{seed[5] % 200 + 10}.{seed[6]}.{seed[7]}")
    properties: Row = {
        "provisioningState": "Succeeded",
        "defaultDomain": f"{prefix}.{seed.hex()[:8]}.{env.location}.azurecontainerapps.io",
        "staticIp": static_ip,
        "zoneRedundant": env.internal,
        "vnetConfiguration": vnet,
        "appLogsConfiguration": logs,
        "workloadProfiles": [
            {"name": n, "workloadProfileType": t} if t == "Consumption"
            else {"name": n, "workloadProfileType": t, "minimumCount": lo, "maximumCount": hi}
            for n, t, lo, hi in env.profiles] or None,
        "infrastructureResourceGroup": f"ME_{env.name}_{env.rg}_{env.location}"
        if env.has_profiles else None,
        "publicNetworkAccess": env.public_access,
        "peerAuthentication": {"mtls": {"enabled": env.internal}},
        "kedaConfiguration": {"version": "2.17.2"},
        "daprConfiguration": {"version": "1.13.6"},
    }
    arm = {"id": env.id, "name": env.name, "type": "Microsoft.App/managedEnvironments",
           "properties": properties, "tags": {"owner": "platform-team", "cost-center": "CC-9000",
                                              "environment": env.sub.name.split("-")[1]}}
    return graph_columns(arm, env.sub, env.rg, env.location)


# --- executions ----------------------------------------------------------------------------------

def _cron_field(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, stop = low, high
        elif "-" in body:
            first, last = body.split("-")
            start, stop = int(first), int(last)
        else:
            start = int(body)
            stop = high if step_text else start
        values.update(range(start, stop + 1, step))
    return values


def cron_times(expression: str, after: datetime, before: datetime) -> Iterator[datetime]:
    """Times matching a 5-field cron (UTC), newest first, in (after, before]."""
    minute, hour, day, month, weekday = expression.split()
    minutes, hours = _cron_field(minute, 0, 59), _cron_field(hour, 0, 23)
    days, months = _cron_field(day, 1, 31), _cron_field(month, 1, 12)
    weekdays = {d % 7 for d in _cron_field(weekday, 0, 7)}
    moment = before.replace(second=0, microsecond=0)
    while moment > after:
        if (moment.minute in minutes and moment.hour in hours and moment.day in days
                and moment.month in months and moment.isoweekday() % 7 in weekdays):
            yield moment
        moment -= timedelta(minutes=1)


def _suffix(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(7))


def start_times(job: Job, rng: random.Random) -> list[datetime]:
    """When the job started in the window, oldest first, at most the last 100."""
    assert job.runs is not None
    config = job.arm["properties"]["configuration"]
    trigger = TRIGGER_KEYS[config["triggerType"]]
    after = AS_OF - WINDOW
    if trigger == "scheduleTriggerConfig":
        cron = config["scheduleTriggerConfig"]["cronExpression"]
        found: list[datetime] = []
        last = AS_OF - timedelta(days=job.runs.stalled_days, seconds=1)
        for moment in cron_times(cron, after, last):
            found.append(moment + timedelta(seconds=rng.randint(1, 9)))
            if len(found) == KEPT_EXECUTIONS:
                break
        return found[::-1]
    count = max(1, round(job.runs.per_day * WINDOW.days * rng.uniform(0.7, 1.3)))
    count = min(count, KEPT_EXECUTIONS)
    span = int(WINDOW.total_seconds())
    return sorted(after + timedelta(seconds=rng.randrange(span)) for _ in range(count))


def executions_of(job: Job) -> list[Row]:
    """`az containerapp job execution list` items for one job."""
    if job.runs is None:
        return []
    rng = random.Random(f"{SEED}:executions:{job.name}")
    config = job.arm["properties"]["configuration"]
    timeout = int(config.get("replicaTimeout") or 1800)
    template = {key: [{k: c[k] for k in ("image", "name", "resources")} for c in items]
                for key in ("containers", "initContainers")
                if (items := job.arm["properties"]["template"].get(key))}
    starts = start_times(job, rng)
    burst = {start for start in (
        (AS_OF - timedelta(days=job.runs.burst_days_ago)).replace(hour=8) + timedelta(minutes=4 * i)
        for i in range(job.runs.burst_runs))}
    starts = sorted(set(starts) | burst)[-KEPT_EXECUTIONS:]
    if job.runs.running_now and config["triggerType"] in ("Event", "Manual"):
        started = max(60, min(job.runs.seconds, timeout) // 3)
        starts.append(AS_OF - timedelta(seconds=rng.randint(30, started)))
    rows: list[Row] = []
    for index, start in enumerate(starts):
        draw = rng.random()
        typical = job.runs.burst_seconds if start in burst else job.runs.seconds
        seconds = max(5, int(rng.gauss(typical, typical * 0.15)))
        status, reason = "Succeeded", None
        if draw < job.runs.hang_rate:
            status, seconds, reason = "Failed", timeout, "DeadlineExceeded"
        elif draw < job.runs.hang_rate + job.runs.fail_rate:
            status, seconds = "Failed", max(5, int(seconds * rng.uniform(0.05, 0.8)))
            reason = "BackoffLimitExceeded"
        elif draw > 0.99:
            status = "Degraded" if config["triggerType"] == "Event" else "Stopped"
            seconds = max(5, int(seconds * rng.uniform(0.1, 0.6)))
        if job.runs.running_now and index == len(starts) - 1:
            status, seconds = "Running", timeout  # still going when the export was taken
        seconds = min(seconds, timeout)
        end = start + timedelta(seconds=seconds)
        properties: Row = {"status": status, "startTime": iso(start)}
        if reason:
            properties["reason"] = reason
        if end >= AS_OF:
            properties["status"] = "Running"
        else:
            properties["endTime"] = iso(end)
        properties["template"] = template
        name = f"{job.name}-{_suffix(rng)}"
        rows.append({"id": f"{job.id}/executions/{name}", "name": name,
                     "properties": properties, "resourceGroup": job.rg,
                     "type": "Microsoft.App/jobs/executions"})
    return rows[::-1]  # the CLI lists the newest first


# --- role assignments and definitions ------------------------------------------------------------

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
USER_ACCESS_ADMIN = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
RBAC_ADMIN = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
CUSTOM_OPERATOR = guid("role:contoso-batch-operator")

BUILT_IN_ROLES: dict[str, tuple[str, str, Row]] = {
    OWNER: ("Owner", "Grants full access to manage all resources, including the ability to "
            "assign roles in Azure RBAC.", {"actions": ["*"]}),
    CONTRIBUTOR: ("Contributor", "Grants full access to manage all resources, but does not allow "
                  "you to assign roles in Azure RBAC.",
                  {"actions": ["*"],
                   "notActions": ["Microsoft.Authorization/*/Delete",
                                  "Microsoft.Authorization/*/Write",
                                  "Microsoft.Authorization/elevateAccess/Action",
                                  "Microsoft.Blueprint/blueprintAssignments/write",
                                  "Microsoft.Blueprint/blueprintAssignments/delete",
                                  "Microsoft.Compute/galleries/share/action",
                                  "Microsoft.Purview/consents/write",
                                  "Microsoft.Purview/consents/delete",
                                  "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
                                  "Microsoft.Subscription/cancel/action",
                                  "Microsoft.Subscription/enable/action"]}),
    READER: ("Reader", "View all resources, but does not allow you to make any changes.",
             {"actions": ["*/read"]}),
    USER_ACCESS_ADMIN: ("User Access Administrator", "Lets you manage user access to Azure "
                        "resources.", {"actions": ["*/read", "Microsoft.Authorization/*",
                                                   "Microsoft.Support/*"]}),
    ACR_PULL: ("AcrPull", "acr pull",
               {"actions": ["Microsoft.ContainerRegistry/registries/pull/read"]}),
    BLOB_DATA_READER: ("Storage Blob Data Reader", "Allows for read access to Azure Storage blob "
                       "containers and data",
                       {"actions": ["Microsoft.Storage/storageAccounts/blobServices/"
                                    "containers/read",
                                    "Microsoft.Storage/storageAccounts/blobServices/"
                                    "generateUserDelegationKey/action"],
                        "dataActions": ["Microsoft.Storage/storageAccounts/blobServices/"
                                        "containers/blobs/read"]}),
    RBAC_ADMIN: ("Role Based Access Control Administrator", "Manage access to Azure resources by "
                 "assigning roles using Azure RBAC. This role does not allow you to manage "
                 "access using other ways, such as Azure Policy.",
                 {"actions": ["Microsoft.Authorization/roleAssignments/write",
                              "Microsoft.Authorization/roleAssignments/delete", "*/read",
                              "Microsoft.Support/*"]}),
}


def _permissions(spec: Row) -> list[Row]:
    return [{"actions": spec.get("actions", []), "notActions": spec.get("notActions", []),
             "dataActions": spec.get("dataActions", []),
             "notDataActions": spec.get("notDataActions", [])}]


def role_definition_rows() -> list[Row]:
    rows: list[Row] = []
    for role_guid, (name, description, spec) in BUILT_IN_ROLES.items():
        rows.append({
            "id": f"/providers/Microsoft.Authorization/RoleDefinitions/{role_guid}",
            "name": role_guid, "type": "microsoft.authorization/roledefinitions",
            "tenantId": "", "kind": "", "location": "", "resourceGroup": "", "subscriptionId": "",
            "managedBy": "", "sku": None, "plan": None,
            "properties": {"roleName": name, "type": "BuiltInRole", "description": description,
                           "assignableScopes": ["/"], "permissions": _permissions(spec),
                           "createdOn": "2015-02-02T21:55:09.8806423Z",
                           "updatedOn": "2024-04-30T21:41:43.3497433Z",
                           "createdBy": None, "updatedBy": None},
            "tags": None, "identity": None, "zones": None, "extendedLocation": None})
    rows.append({
        "id": f"{SHARED.scope}/providers/Microsoft.Authorization/roleDefinitions/{CUSTOM_OPERATOR}",
        "name": CUSTOM_OPERATOR, "type": "microsoft.authorization/roledefinitions",
        "tenantId": TENANT, "kind": "", "location": "", "resourceGroup": "",
        "subscriptionId": SHARED.id, "managedBy": "", "sku": None, "plan": None,
        "properties": {"roleName": "Contoso Batch Operator", "type": "CustomRole",
                       "description": "Temporary: lets batch tooling fix whatever it needs.",
                       "assignableScopes": [SHARED.scope, PROD.scope],
                       "permissions": _permissions({"actions": ["*"]}),
                       "createdOn": "2025-06-12T09:14:27.1187321Z",
                       "updatedOn": "2025-06-12T09:14:27.1187321Z",
                       "createdBy": guid("user:k.mueller"), "updatedBy": guid("user:k.mueller")},
        "tags": None, "identity": None, "zones": None, "extendedLocation": None})
    return rows


def assignment_row(label: str, principal: str, role: str, scope: str,
                   principal_type: str = "ServicePrincipal", *, days_ago: int = 200) -> Row:
    """An `authorizationresources` role assignment; the definition id is subscription-scoped."""
    parts = scope.split("/")
    sub_id = parts[2]
    rg = parts[4].lower() if len(parts) > 4 else ""
    assignment = guid(f"assignment:{label}")
    created = (AS_OF - timedelta(days=days_ago, hours=7, minutes=13)).strftime(
        "%Y-%m-%dT%H:%M:%S.%f0Z")
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{assignment}",
        "name": assignment, "type": "microsoft.authorization/roleassignments",
        "tenantId": TENANT, "kind": "", "location": "", "resourceGroup": rg,
        "subscriptionId": sub_id, "managedBy": "", "sku": None, "plan": None,
        "properties": {
            "roleDefinitionId": (f"/subscriptions/{sub_id}/providers/Microsoft.Authorization/"
                                 f"roleDefinitions/{role}"),
            "principalId": principal, "principalType": principal_type, "scope": scope,
            "condition": None, "conditionVersion": None, "description": None,
            "createdOn": created, "updatedOn": created,
            "createdBy": guid("user:platform-admin"), "updatedBy": guid("user:platform-admin"),
            "delegatedManagedIdentityResourceId": None},
        "tags": None, "identity": None, "zones": None, "extendedLocation": None}


ACR_RESOURCE = (f"{rg_scope(SHARED, 'rg-shared-registry')}/providers/"
                "Microsoft.ContainerRegistry/registries/contosoacr")


def role_assignment_rows() -> list[Row]:
    a = assignment_row
    return [
        # Least privilege: data-plane readers and AcrPull at resource-group or resource scope.
        a("billing-blob", ID_BILLING.principal_id, BLOB_DATA_READER,
          rg_scope(PROD, "rg-billing-prod")),
        a("billing-acr", ID_BILLING.principal_id, ACR_PULL, ACR_RESOURCE),
        a("batch-acr", ID_BATCH.principal_id, ACR_PULL, rg_scope(SHARED, "rg-shared-registry")),
        a("batch-reader-platform", ID_BATCH.principal_id, READER,
          rg_scope(PROD, "rg-platform-prod")),
        a("batch-blob-privacy", ID_BATCH.principal_id, BLOB_DATA_READER,
          rg_scope(PROD, "rg-privacy-prod")),
        a("etl-acr", ID_DATA_ETL.principal_id, ACR_PULL, rg_scope(SHARED, "rg-shared-registry")),
        a("etl-blob", ID_DATA_ETL.principal_id, BLOB_DATA_READER,
          rg_scope(DATA, "rg-data-platform")),
        a("partner-acr", ID_PARTNER.principal_id, ACR_PULL,
          rg_scope(SHARED, "rg-shared-registry")),
        a("ml-acr", ID_ML.principal_id, ACR_PULL, rg_scope(SHARED, "rg-shared-registry")),
        a("ml-blob", ID_ML.principal_id, BLOB_DATA_READER, rg_scope(DATA, "rg-ml")),
        a("dev-acr", ID_DEV.principal_id, ACR_PULL, rg_scope(SHARED, "rg-shared-registry")),
        a("sla-mailer-reader", system_principal("sla-report-mailer"), READER,
          rg_scope(PROD, "rg-reporting-prod")),
        a("vacuum-reader", system_principal("warehouse-vacuum"), READER,
          rg_scope(DATA, "rg-data-platform")),
        # Violations: broad roles at subscription scope held by job identities.
        a("reconciliation-contributor", system_principal("payment-reconciliation"), CONTRIBUTOR,
          PROD.scope, days_ago=410),
        a("user-sync-owner", system_principal("dev-user-provisioning-sync"), OWNER, DEV.scope,
          days_ago=95),
        a("partner-user-access-admin", ID_PARTNER.principal_id, USER_ACCESS_ADMIN, DATA.scope,
          days_ago=61),
        a("shared-tools-custom-star", ID_SHARED.principal_id, CUSTOM_OPERATOR, SHARED.scope,
          days_ago=160),
        a("log-retention-rbac-admin", system_principal("log-retention-enforcer"), RBAC_ADMIN,
          rg_scope(DATA, "rg-monitoring-data"), days_ago=30),
        # People and groups: broad roles, but not held by a job.
        a("platform-admins-owner", guid("group:grp-platform-admins"), OWNER, PROD.scope, "Group",
          days_ago=900),
        a("data-engineers-contributor", guid("group:grp-data-engineers"), CONTRIBUTOR,
          DATA.scope, "Group", days_ago=700),
        a("k-mueller-rbac-admin", guid("user:k.mueller"), RBAC_ADMIN, SHARED.scope, "User",
          days_ago=300),
        # An identity that was deleted; its assignment stayed behind.
        a("orphaned-contributor", guid("deleted:id-legacy-batch"), CONTRIBUTOR,
          rg_scope(PROD, "rg-batch-prod"), days_ago=1100),
    ]


# --- unrelated resources -------------------------------------------------------------------------

def other_resource_rows() -> list[Row]:
    rows: list[Row] = []

    def add(sub: Subscription, rg: str, provider: str, name: str, properties: Row,
            location: str = "westeurope", **columns: Any) -> None:
        arm = {"id": f"{rg_scope(sub, rg)}/providers/{provider}/{name}", "name": name,
               "type": provider, "properties": properties, "tags": PLATFORM}
        row = graph_columns(arm, sub, rg, location)
        row.update(columns)
        rows.append(row)

    for account, sub, rg in (("contosodata", DATA, "rg-data-platform"),
                             ("contosobilling", PROD, "rg-billing-prod")):
        add(sub, rg, "Microsoft.Storage/storageAccounts", account,
            {"provisioningState": "Succeeded", "allowBlobPublicAccess": False,
             "minimumTlsVersion": "TLS1_2", "supportsHttpsTrafficOnly": True,
             "primaryEndpoints": {"blob": f"https://{account}.blob.core.windows.net/"}},
            kind="StorageV2", sku={"name": "Standard_ZRS", "tier": "Standard"})
    add(SHARED, "rg-shared-registry", "Microsoft.ContainerRegistry/registries", "contosoacr",
        {"loginServer": ACR, "adminUserEnabled": False, "publicNetworkAccess": "Enabled",
         "provisioningState": "Succeeded"}, sku={"name": "Premium", "tier": "Premium"})
    for workspace in (LAW_PROD, LAW_DATA, LAW_SHARED):
        add(workspace.sub, workspace.rg, "Microsoft.OperationalInsights/workspaces",
            workspace.name, {"customerId": workspace.customer_id, "retentionInDays": 90,
                             "sku": {"name": "PerGB2018"}, "provisioningState": "Succeeded"})
    for uami in UAMIS:
        add(uami.sub, uami.rg, "Microsoft.ManagedIdentity/userAssignedIdentities", uami.name,
            {"tenantId": TENANT, "principalId": uami.principal_id, "clientId": uami.client_id})
    # A container app (not a job) in the same environment: counted, not audited.
    add(PROD, "rg-orders-prod", "Microsoft.App/containerApps", "api-orders",
        {"provisioningState": "Succeeded", "environmentId": ENV_PROD.id,
         "workloadProfileName": "Consumption"})
    return rows


# --- configuration changes (Resource Graph `resourcechanges`) ------------------------------------

# Who changes what: people through the portal, the release pipeline (an app registration) through
# ARM templates, and the platform itself. (changedBy, changedByType, clientType)
A_NOVAK = ("a.novak@contoso.com", "User", "Azure Portal")
K_MUELLER = ("k.mueller@contoso.com", "User", "Azure Portal")
M_OKAFOR = ("m.okafor@contoso.com", "User", "Azure Portal")
P_LINDQVIST = ("p.lindqvist@contoso.com", "User", "Azure Portal")
L_BERG = ("l.berg@contoso.com", "User", "Azure Portal")
R_HADDAD = ("r.haddad@contoso.com", "User", "Azure Portal")
PIPELINE = (guid("app:contoso-release-pipeline"), "Application", "ARM Template")
PLATFORM_ITSELF = ("System", "System", "Unspecified")
# A prod job deleted during the period: its change records remain, the jobs export lacks it.
DELETED_JOB = (f"{rg_scope(PROD, 'rg-billing-prod')}/providers/Microsoft.App/jobs/"
               "invoice-archive-legacy")


def prop(before: Any, after: Any, category: str = "User") -> Row:
    """One entry of `changes`: JSON null where the property did not exist (as Resource Graph
    returns an Insert), strings otherwise."""
    kind = "Insert" if before is None else "Remove" if after is None else "Update"
    return {"propertyChangeType": kind, "changeCategory": category, "previousValue": before,
            "newValue": after}


def change_row(job_id: str, sub: Subscription, rg: str, when: str, change_type: str,
               actor: tuple[str, str, str], changes: dict[str, Row] | None = None) -> Row:
    """A `resourcechanges` row: the change resource (Microsoft.Resources/changes, spec
    2022-05-01) with the Change Actor fields, in Resource Graph's columns; ids as Resource Graph
    writes them, `<target>/providers/Microsoft.Resources/changes/<number>_<guid>`."""
    label = f"{job_id}|{when}"
    number = f"0858{int(hashlib.sha256(label.encode()).hexdigest()[:15], 16) % 10**16:016d}"
    name = f"{number}_{guid('change:' + label)}"
    epoch = int(datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp())
    system = actor is PLATFORM_ITSELF
    verb = "delete" if change_type == "Delete" else "write"
    attributes: Row = {
        "previousResourceSnapshotId": f"{number}_{guid('before:' + label)}_{epoch - 604}",
        "newResourceSnapshotId": f"{number}_{guid('after:' + label)}_{epoch}",
        "correlationId": "00000000-0000-0000-0000-000000000000" if system
        else guid("correlation:" + label),
        "changedByType": actor[1],
        "changesCount": len(changes or {}),
        "clientType": actor[2],
        "timestamp": when,
        "changedBy": actor[0],
        "operation": "Unspecified" if system else f"Microsoft.App/jobs/{verb}",
    }
    arm = {"id": f"{job_id}/providers/Microsoft.Resources/changes/{name}", "name": name,
           "type": "Microsoft.Resources/changes",
           "properties": {"targetResourceType": "microsoft.app/jobs", "targetResourceId": job_id,
                          "changeAttributes": attributes, "changeType": change_type,
                          "changes": changes or {}}}
    return graph_columns(arm, sub, rg, "")


def change_rows(jobs: dict[str, Job]) -> list[Row]:
    """Two weeks of drift, 15 change records: every new value is what the jobs export holds."""

    def on(name: str, when: str, change_type: str, actor: tuple[str, str, str],
           changes: dict[str, Row] | None = None) -> Row:
        job = jobs[name]
        return change_row(job.id, job.sub, job.rg, when, change_type, actor, changes)

    container = "properties.template.containers[0]"
    scale_path = "properties.configuration.eventTriggerConfig.scale"
    old_sas_arg = jobs["lake-partition-pruner"].arm["properties"]["template"]["containers"][0][
        "args"][0]
    kv = "https://kv-contoso-data.vault.azure.net/secrets/crm-db-password"
    rows = [
        on("ledger-snapshot", "2026-11-06T09:12:44.517Z", "Update", A_NOVAK, {
            "properties.configuration.replicaTimeout": prop("7200", "21600")}),
        on("cert-expiry-scanner", "2026-11-07T14:03:19.204Z", "Update", K_MUELLER, {
            f"{container}.image": prop("mcr.microsoft.com/azure-cli:2.67.0",
                                       "mcr.microsoft.com/azure-cli:latest")}),
        # A secret reference replaced by the connection string itself, key and all.
        on("ml-batch-inference", "2026-11-08T22:41:07.880Z", "Update", M_OKAFOR, {
            f"{container}.env[0].secretRef": prop("storage-connection", None),
            f"{container}.env[0].value": prop(None, FAKE_CONNECTION_STRING),
            "properties.configuration.secrets[1].name": prop("storage-connection", None)}),
        on("vendor-catalog-sync", "2026-11-09T07:30:00.113Z", "Update", PIPELINE, {
            "properties.configuration.replicaRetryLimit": prop("3", "5")}),
        on("ml-batch-inference", "2026-11-10T11:15:32.409Z", "Update", M_OKAFOR, {
            f"{container}.image": prop(f"{ACR}/ml/batch-inference:3.2.0",
                                       f"{ACR}/ml/batch-inference:latest")}),
        on("fx-rates-refresh", "2026-11-12T10:05:41.336Z", "Create", PIPELINE),
        on("fx-rates-refresh", "2026-11-12T10:05:58.902Z", "Update", PLATFORM_ITSELF, {
            "properties.provisioningState": prop("InProgress", "Succeeded", "System")}),
        change_row(DELETED_JOB, PROD, "rg-billing-prod", "2026-11-12T16:47:21.093Z", "Delete",
                   A_NOVAK),
        on("customer-churn-scoring", "2026-11-13T10:20:45.600Z", "Update", PIPELINE, {
            "tags.cost-center": prop("CC-1420", None),
            "tags.owner": prop("team-analytics@contoso.com", "analytics-team")}),
        # The SAS URL in the args was renewed: both sides carry the (fake) signature.
        on("lake-partition-pruner", "2026-11-14T19:02:33.710Z", "Update", P_LINDQVIST, {
            f"{container}.args[0]": prop(old_sas_arg.replace("se=2027-03-31", "se=2026-11-30"),
                                         old_sas_arg)}),
        on("gdpr-erasure-worker", "2026-11-15T03:11:09.250Z", "Update", PIPELINE, {
            f"{scale_path}.maxExecutions": prop("20", "100")}),
        on("etl-customers-loader", "2026-11-16T08:27:50.045Z", "Update", PIPELINE, {
            "properties.configuration.secrets[0].keyVaultUrl": prop(
                f"{kv}/5f0c2d8e41a94b7c9e3a6f1b2d4c8e07", kv)}),
        on("order-events-archiver", "2026-11-17T13:44:12.500Z", "Update", R_HADDAD, {
            f"{scale_path}.maxExecutions": prop("100", None),
            f"{scale_path}.rules[0].metadata.messageCount": prop("10", "50")}),
        on("sla-report-mailer", "2026-11-18T09:58:27.030Z", "Update", L_BERG, {
            "tags.owner": prop("team-reporting@contoso.com", HOSTILE_OWNER)}),
        on("payment-reconciliation", "2026-11-19T16:30:05.440Z", "Update", A_NOVAK, {
            f"{container}.env[2].value": prop("sftp-legacy.bank.example", "sftp.bank.example")}),
    ]
    return sorted(rows, key=lambda row: row["id"].lower())  # `order by id asc`


# --- writing -------------------------------------------------------------------------------------

def build() -> dict[str, Any]:
    """File name -> document, in the export shapes the snapshot reader accepts."""
    prod, data, dev, shared = prod_jobs(), data_jobs(), dev_jobs(), shared_job()
    everything = [*prod, *data, *dev, shared]
    names = [j.name for j in everything]
    assert len(names) == len(set(names)), "job names must be unique"
    executions = [row for job in (*prod, *data, shared) for row in executions_of(job)]
    for job in dev:
        job.arm["systemData"] = system_data(job.name, "dev.lead@contoso.com")
    shared.arm["systemData"] = system_data(shared.name, "k.mueller@contoso.com")
    return {
        "jobs-prod-data.graph.json": az_graph_query([graph_job_row(j) for j in (*prod, *data)]),
        "managed-environments.table.json": rest_graph_table(
            [environment_row(e) for e in ENVIRONMENTS]),
        "jobs-contoso-dev.arm-list.json": arm_list([j.arm for j in dev]),
        "job-acr-image-purge.show.json": shared.arm,
        "job-executions.json": executions,
        "role-assignments.graph.json": az_graph_query(role_assignment_rows()),
        "role-definitions.graph-rest.json": rest_graph_response(role_definition_rows()),
        "other-resources.graph.json": az_graph_query(other_resource_rows()),
        "resource-changes.graph.json": az_graph_query(
            change_rows({j.name: j for j in everything})),
    }


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, document in build().items():
        path = folder / name
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else OUT
    for path in write(folder):
        print(f"{path.stat().st_size:>9,} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
