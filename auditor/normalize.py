"""Build the frozen model from raw rows of any export shape, in one place.

Azure rows are data, not contracts: any field may be missing, null or of the wrong type. Readers
here never raise on a row's content; what they cannot read becomes None, and checks that need it
report `unknown`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar

from auditor.changes import changes_from
from auditor.model import (
    Container,
    Environment,
    EnvVar,
    Estate,
    EventScale,
    Execution,
    Identity,
    Job,
    Registry,
    RoleAssignment,
    RoleDefinition,
    ScaleRule,
    Secret,
    TriggerType,
    UserAssignedIdentity,
    WorkloadProfile,
)
from auditor.snapshot import (
    CHANGES,
    ENVIRONMENTS,
    EXECUTIONS,
    JOBS,
    ROLE_ASSIGNMENTS,
    ROLE_DEFINITIONS,
    RawSnapshot,
)

# Microsoft's own list example says "Scheduled"; the SDK passes unknown strings through.
_TRIGGERS = {
    "schedule": TriggerType.SCHEDULE,
    "scheduled": TriggerType.SCHEDULE,
    "event": TriggerType.EVENT,
    "manual": TriggerType.MANUAL,
}

_TRIGGER_CONFIG: dict[TriggerType | None, str] = {
    TriggerType.SCHEDULE: "scheduleTriggerConfig",
    TriggerType.EVENT: "eventTriggerConfig",
    TriggerType.MANUAL: "manualTriggerConfig",
}


def normalize(snapshot: RawSnapshot) -> Estate:
    jobs = _unique(job_from_row(i.row, i.source) for i in snapshot.items[JOBS])
    environments = _unique(
        environment_from_row(i.row, i.source) for i in snapshot.items[ENVIRONMENTS])
    executions = _unique(
        execution_from_row(i.row, i.source) for i in snapshot.items[EXECUTIONS])
    assignments = _unique(
        assignment_from_row(i.row, i.source) for i in snapshot.items[ROLE_ASSIGNMENTS])
    definitions = _unique(
        definition_from_row(i.row, i.source) for i in snapshot.items[ROLE_DEFINITIONS])
    by_job: dict[str, list[Execution]] = {}
    for execution in executions:
        by_job.setdefault((execution.job_id or "").lower(), []).append(execution)
    history = (snapshot.collection or {}).get("history", {})
    sources = history.get("sources", {}) if isinstance(history, dict) else {}
    return Estate(
        jobs=tuple(sorted(jobs, key=lambda j: j.id.lower())),
        environments=MappingProxyType({e.id.lower(): e for e in environments}),
        executions=tuple(executions),
        role_assignments=tuple(assignments),
        role_definitions=MappingProxyType({d.guid: d for d in definitions}),
        executions_by_job=MappingProxyType({
            job: tuple(sorted(runs, key=_started)) for job, runs in by_job.items()}),
        history_sources=MappingProxyType({
            str(k).lower(): str(v) for k, v in sources.items()} if isinstance(sources, dict)
            else {}),
        changes=changes_from(snapshot.items[CHANGES]),
    )


def _started(execution: Execution) -> datetime:
    return execution.start_time or datetime.min.replace(tzinfo=UTC)


_Record = TypeVar("_Record", Job, Environment, Execution, RoleAssignment, RoleDefinition)


def _unique(records: Iterable[_Record | None]) -> list[_Record]:
    """Drop rows with no usable id and repeats of the same resource (exports overlap)."""
    seen: set[str] = set()
    kept: list[_Record] = []
    for record in records:
        if record is None:
            continue
        key = (record.id or f"{getattr(record, 'job_id', '')}/{getattr(record, 'name', '')}")
        key = key.lower()
        if key in seen:
            continue
        seen.add(key)
        kept.append(record)
    return kept


# --- small, total readers --------------------------------------------------------------------

def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(s for s in (_str(v) for v in _list(value)) if s is not None)


def _tags(value: Any) -> Mapping[str, str]:
    return MappingProxyType({
        str(k): (_str(v) or "") for k, v in _dict(value).items() if isinstance(k, str)
    })


def _id_part(resource_id: str | None, segment: str) -> str | None:
    """The value after `segment` in an ARM id, case-insensitively."""
    if not resource_id:
        return None
    parts = resource_id.strip("/").split("/")
    for index, part in enumerate(parts[:-1]):
        if part.lower() == segment:
            return parts[index + 1]
    return None


def _scope_fields(row: dict[str, Any], resource_id: str) -> tuple[str | None, str | None]:
    """Subscription and resource group: Resource Graph adds them as columns; ARM has only id."""
    subscription = _str(row.get("subscriptionId")) or _id_part(resource_id, "subscriptions")
    group = _str(row.get("resourceGroup")) or _id_part(resource_id, "resourcegroups")
    return subscription, group


_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?|[KMGT]b?|[KMGT]B)?\s*$", re.IGNORECASE)
_BINARY = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_DECIMAL = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def memory_gib(text: str) -> float | None:
    """GiB in a memory string: `1Gi`, `512Mi`, `0.5Gi`, `250Mb`, `2G`; None when unreadable."""
    match = _MEMORY.match(text)
    if not match:
        return None
    number, unit = float(match.group(1)), (match.group(2) or "")
    if not unit:
        return number / 2**30
    scale = _BINARY if unit.lower().endswith("i") else _DECIMAL
    return number * scale[unit[0].lower()] / 2**30


# --- records -----------------------------------------------------------------------------------

def _identity(value: Any) -> Identity | None:
    if not isinstance(value, dict):
        return None
    user_assigned = tuple(
        UserAssignedIdentity(str(rid), _str(_dict(v).get("principalId")),
                             _str(_dict(v).get("clientId")))
        for rid, v in _dict(value.get("userAssignedIdentities")).items()
    )
    return Identity(_str(value.get("type")), _str(value.get("principalId")), user_assigned)


def _containers(template: dict[str, Any]) -> tuple[Container, ...]:
    found: list[Container] = []
    for key, is_init in (("initContainers", True), ("containers", False)):
        for raw in _list(template.get(key)):
            item = _dict(raw)
            resources = _dict(item.get("resources"))
            memory = _str(resources.get("memory"))
            env = tuple(
                EnvVar(_str(e.get("name")), _str(e.get("value")), _str(e.get("secretRef")))
                for e in map(_dict, _list(item.get("env")))
            )
            found.append(Container(
                name=_str(item.get("name")), image=_str(item.get("image")), is_init=is_init,
                cpu=_float(resources.get("cpu")), memory=memory,
                memory_gib=memory_gib(memory) if memory else None, env=env,
                command=_strings(item.get("command")), args=_strings(item.get("args")),
            ))
    return tuple(found)


def _event_scale(trigger: dict[str, Any]) -> EventScale | None:
    if "scale" not in trigger:
        return None
    scale = _dict(trigger.get("scale"))
    rules = tuple(
        ScaleRule(
            name=_str(r.get("name")), type=_str(r.get("type")),
            metadata=MappingProxyType({str(k): _str(v) or "" for k, v in
                                       _dict(r.get("metadata")).items()}),
            auth_secret_refs=tuple(s for s in (_str(_dict(a).get("secretRef"))
                                               for a in _list(r.get("auth"))) if s),
            identity=_str(r.get("identity")),
        )
        for r in map(_dict, _list(scale.get("rules")))
    )
    return EventScale(_int(scale.get("minExecutions")), _int(scale.get("maxExecutions")),
                      _int(scale.get("pollingInterval")), rules)


def job_from_row(row: dict[str, Any], source: str = "") -> Job | None:
    resource_id = _str(row.get("id"))
    if not resource_id:
        return None
    props = _dict(row.get("properties"))
    has_configuration = isinstance(props.get("configuration"), dict)
    has_template = isinstance(props.get("template"), dict)
    config = _dict(props.get("configuration"))
    template = _dict(props.get("template"))
    trigger_raw = _str(config.get("triggerType"))
    trigger_type = _TRIGGERS.get((trigger_raw or "").strip().lower())
    trigger_config = _dict(config.get(_TRIGGER_CONFIG.get(trigger_type, "")))
    subscription, group = _scope_fields(row, resource_id)
    return Job(
        id=resource_id,
        name=_str(row.get("name")) or resource_id.rsplit("/", 1)[-1],
        subscription_id=subscription,
        resource_group=group,
        location=_str(row.get("location")),
        tags=_tags(row.get("tags")),
        identity=_identity(row.get("identity")),
        provisioning_state=_str(props.get("provisioningState")),
        running_state=_str(props.get("runningState")),
        environment_id=_str(props.get("environmentId")),
        workload_profile_name=_str(props.get("workloadProfileName")),
        trigger_type=trigger_type,
        trigger_type_raw=trigger_raw,
        replica_timeout=_int(config.get("replicaTimeout")),
        replica_retry_limit=_int(config.get("replicaRetryLimit")),
        parallelism=_int(trigger_config.get("parallelism")),
        replica_completion_count=_int(trigger_config.get("replicaCompletionCount")),
        cron_expression=_str(trigger_config.get("cronExpression")),
        event_scale=_event_scale(trigger_config) if trigger_type is TriggerType.EVENT else None,
        secrets=tuple(
            Secret(_str(s.get("name")), _str(s.get("keyVaultUrl")), _str(s.get("identity")))
            for s in map(_dict, _list(config.get("secrets")))
        ) if has_configuration else None,
        registries=tuple(
            Registry(_str(r.get("server")), _str(r.get("username")),
                     _str(r.get("passwordSecretRef")), _str(r.get("identity")))
            for r in map(_dict, _list(config.get("registries")))
        ) if has_configuration else None,
        containers=_containers(template) if has_template else None,
        has_configuration=has_configuration,
        has_template=has_template,
        source=source,
    )


def environment_from_row(row: dict[str, Any], source: str = "") -> Environment | None:
    resource_id = _str(row.get("id"))
    if not resource_id:
        return None
    props = _dict(row.get("properties"))
    logs = _dict(props.get("appLogsConfiguration"))
    vnet = _dict(props.get("vnetConfiguration"))
    subscription, group = _scope_fields(row, resource_id)
    return Environment(
        id=resource_id,
        name=_str(row.get("name")) or resource_id.rsplit("/", 1)[-1],
        subscription_id=subscription,
        resource_group=group,
        location=_str(row.get("location")),
        tags=_tags(row.get("tags")),
        logs_destination=_str(logs.get("destination")),
        log_analytics_customer_id=_str(_dict(logs.get("logAnalyticsConfiguration"))
                                       .get("customerId")),
        infrastructure_subnet_id=_str(vnet.get("infrastructureSubnetId")),
        internal=_bool(vnet.get("internal")),
        public_network_access=_str(props.get("publicNetworkAccess")),
        source=source,
        workload_profiles=tuple(
            WorkloadProfile(str(p["name"]), _str(p.get("workloadProfileType")),
                            _int(p.get("minimumCount")), _int(p.get("maximumCount")))
            for p in map(_dict, _list(props.get("workloadProfiles"))) if _str(p.get("name"))),
    )


def execution_from_row(row: dict[str, Any], source: str = "") -> Execution | None:
    name = _str(row.get("name"))
    resource_id = _str(row.get("id"))
    if not name and not resource_id:
        return None
    job_id = None
    if resource_id and "/executions/" in resource_id.lower():
        job_id = resource_id[: resource_id.lower().rindex("/executions/")]
    props = _dict(row.get("properties"))
    return Execution(
        id=resource_id,
        name=name or (resource_id or "").rsplit("/", 1)[-1],
        job_id=job_id,
        status=_str(props.get("status")),
        start_time=_time(props.get("startTime")),
        end_time=_time(props.get("endTime")),
        reason=_str(props.get("reason")) or _str(props.get("detailedStatus")),
        source=source,
    )


def assignment_from_row(row: dict[str, Any], source: str = "") -> RoleAssignment | None:
    resource_id = _str(row.get("id"))
    if not resource_id:
        return None
    props = _dict(row.get("properties"))
    return RoleAssignment(
        id=resource_id,
        principal_id=_str(props.get("principalId")),
        principal_type=_str(props.get("principalType")),
        role_definition_id=_str(props.get("roleDefinitionId")),
        scope=_str(props.get("scope")),
        source=source,
    )


def definition_from_row(row: dict[str, Any], source: str = "") -> RoleDefinition | None:
    resource_id = _str(row.get("id"))
    if not resource_id:
        return None
    props = _dict(row.get("properties"))
    actions = tuple(a for p in map(_dict, _list(props.get("permissions")))
                    for a in _strings(p.get("actions")))
    return RoleDefinition(
        id=resource_id,
        guid=resource_id.rstrip("/").rsplit("/", 1)[-1].lower(),
        role_name=_str(props.get("roleName")),
        role_type=_str(props.get("type")),
        actions=actions,
        source=source,
    )
