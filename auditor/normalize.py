"""Build the frozen model from raw rows of any export shape, in one place.

Azure rows are data, not contracts: any field may be missing, null or of the wrong type. Readers
here never raise on a row's content; what they cannot read becomes None, and checks that need it
report `unknown`.
"""

from __future__ import annotations

import re
import sys
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
from auditor.readers import (
    as_bool,
    as_dict,
    as_float,
    as_int,
    as_list,
    as_str,
    as_strings,
    as_time,
    scope_fields,
)
from auditor.snapshot import (
    CHANGES,
    ENVIRONMENTS,
    EXECUTIONS,
    JOBS,
    ROLE_ASSIGNMENTS,
    ROLE_DEFINITIONS,
    Convert,
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
    """The estate the checks see, from the rows in `snapshot` and the executions it normalized
    while reading (`NORMALIZED_WHILE_READING`)."""
    jobs = _unique(job_from_row(i.row, i.source) for i in snapshot.items[JOBS])
    environments = _unique(
        environment_from_row(i.row, i.source) for i in snapshot.items[ENVIRONMENTS])
    executions = _unique(snapshot.records.get(EXECUTIONS) or (
        execution_from_row(i.row, i.source) for i in snapshot.items[EXECUTIONS]))
    assignments = _unique(
        assignment_from_row(i.row, i.source) for i in snapshot.items[ROLE_ASSIGNMENTS])
    definitions = _unique(
        definition_from_row(i.row, i.source) for i in snapshot.items[ROLE_DEFINITIONS])
    by_principal: dict[str, list[int]] = {}
    for position, assignment in enumerate(assignments):
        if assignment.principal_id:
            by_principal.setdefault(assignment.principal_id, []).append(position)
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
        assignments_by_principal=MappingProxyType(
            {principal: tuple(positions) for principal, positions in by_principal.items()}),
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

def _tags(value: Any) -> Mapping[str, str]:
    return MappingProxyType({
        str(k): (as_str(v) or "") for k, v in as_dict(value).items() if isinstance(k, str)
    })


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
        UserAssignedIdentity(str(rid), as_str(as_dict(v).get("principalId")),
                             as_str(as_dict(v).get("clientId")))
        for rid, v in as_dict(value.get("userAssignedIdentities")).items()
    )
    return Identity(as_str(value.get("type")), as_str(value.get("principalId")), user_assigned)


def _containers(template: dict[str, Any]) -> tuple[Container, ...]:
    found: list[Container] = []
    for key, is_init in (("initContainers", True), ("containers", False)):
        for raw in as_list(template.get(key)):
            item = as_dict(raw)
            resources = as_dict(item.get("resources"))
            memory = as_str(resources.get("memory"))
            env = tuple(
                EnvVar(as_str(e.get("name")), as_str(e.get("value")), as_str(e.get("secretRef")))
                for e in map(as_dict, as_list(item.get("env")))
            )
            found.append(Container(
                name=as_str(item.get("name")), image=as_str(item.get("image")), is_init=is_init,
                cpu=as_float(resources.get("cpu")), memory=memory,
                memory_gib=memory_gib(memory) if memory else None, env=env,
                command=as_strings(item.get("command")), args=as_strings(item.get("args")),
            ))
    return tuple(found)


def _event_scale(trigger: dict[str, Any]) -> EventScale | None:
    if "scale" not in trigger:
        return None
    scale = as_dict(trigger.get("scale"))
    rules = tuple(
        ScaleRule(
            name=as_str(r.get("name")), type=as_str(r.get("type")),
            metadata=MappingProxyType({str(k): as_str(v) or "" for k, v in
                                       as_dict(r.get("metadata")).items()}),
            auth_secret_refs=tuple(s for s in (as_str(as_dict(a).get("secretRef"))
                                               for a in as_list(r.get("auth"))) if s),
            identity=as_str(r.get("identity")),
        )
        for r in map(as_dict, as_list(scale.get("rules")))
    )
    return EventScale(as_int(scale.get("minExecutions")), as_int(scale.get("maxExecutions")),
                      as_int(scale.get("pollingInterval")), rules)


def job_from_row(row: dict[str, Any], source: str = "") -> Job | None:
    resource_id = as_str(row.get("id"))
    if not resource_id:
        return None
    props = as_dict(row.get("properties"))
    has_configuration = isinstance(props.get("configuration"), dict)
    has_template = isinstance(props.get("template"), dict)
    config = as_dict(props.get("configuration"))
    template = as_dict(props.get("template"))
    trigger_raw = as_str(config.get("triggerType"))
    trigger_type = _TRIGGERS.get((trigger_raw or "").strip().lower())
    trigger_config = as_dict(config.get(_TRIGGER_CONFIG.get(trigger_type, "")))
    subscription, group = scope_fields(row, resource_id)
    return Job(
        id=resource_id,
        name=as_str(row.get("name")) or resource_id.rsplit("/", 1)[-1],
        subscription_id=subscription,
        resource_group=group,
        location=as_str(row.get("location")),
        tags=_tags(row.get("tags")),
        identity=_identity(row.get("identity")),
        provisioning_state=as_str(props.get("provisioningState")),
        running_state=as_str(props.get("runningState")),
        environment_id=as_str(props.get("environmentId")),
        workload_profile_name=as_str(props.get("workloadProfileName")),
        trigger_type=trigger_type,
        trigger_type_raw=trigger_raw,
        replica_timeout=as_int(config.get("replicaTimeout")),
        replica_retry_limit=as_int(config.get("replicaRetryLimit")),
        parallelism=as_int(trigger_config.get("parallelism")),
        replica_completion_count=as_int(trigger_config.get("replicaCompletionCount")),
        cron_expression=as_str(trigger_config.get("cronExpression")),
        event_scale=_event_scale(trigger_config) if trigger_type is TriggerType.EVENT else None,
        secrets=tuple(
            Secret(as_str(s.get("name")), as_str(s.get("keyVaultUrl")), as_str(s.get("identity")))
            for s in map(as_dict, as_list(config.get("secrets")))
        ) if has_configuration else None,
        registries=tuple(
            Registry(as_str(r.get("server")), as_str(r.get("username")),
                     as_str(r.get("passwordSecretRef")), as_str(r.get("identity")))
            for r in map(as_dict, as_list(config.get("registries")))
        ) if has_configuration else None,
        containers=_containers(template) if has_template else None,
        has_configuration=has_configuration,
        has_template=has_template,
        source=source,
    )


def environment_from_row(row: dict[str, Any], source: str = "") -> Environment | None:
    resource_id = as_str(row.get("id"))
    if not resource_id:
        return None
    props = as_dict(row.get("properties"))
    logs = as_dict(props.get("appLogsConfiguration"))
    vnet = as_dict(props.get("vnetConfiguration"))
    subscription, group = scope_fields(row, resource_id)
    return Environment(
        id=resource_id,
        name=as_str(row.get("name")) or resource_id.rsplit("/", 1)[-1],
        subscription_id=subscription,
        resource_group=group,
        location=as_str(row.get("location")),
        tags=_tags(row.get("tags")),
        logs_destination=as_str(logs.get("destination")),
        log_analytics_customer_id=as_str(as_dict(logs.get("logAnalyticsConfiguration"))
                                       .get("customerId")),
        infrastructure_subnet_id=as_str(vnet.get("infrastructureSubnetId")),
        internal=as_bool(vnet.get("internal")),
        public_network_access=as_str(props.get("publicNetworkAccess")),
        source=source,
        workload_profiles=tuple(
            WorkloadProfile(str(p["name"]), as_str(p.get("workloadProfileType")),
                            as_int(p.get("minimumCount")), as_int(p.get("maximumCount")))
            for p in map(as_dict, as_list(props.get("workloadProfiles"))) if as_str(p.get("name"))),
    )


def execution_from_row(row: dict[str, Any], source: str = "") -> Execution | None:
    name = as_str(row.get("name"))
    resource_id = as_str(row.get("id"))
    if not name and not resource_id:
        return None
    job_id = None
    if resource_id:
        at = resource_id.lower().rfind("/executions/")
        job_id = _shared(resource_id[:at]) if at >= 0 else None
    props = row.get("properties")
    if not isinstance(props, dict):
        props = {}
    return Execution(  # positional: keywords cost more than the rest of the call
        resource_id,
        name or (resource_id or "").rsplit("/", 1)[-1],
        job_id,
        _shared(as_str(props.get("status"))),
        as_time(props.get("startTime")),
        as_time(props.get("endTime")),
        _shared(as_str(props.get("reason")) or as_str(props.get("detailedStatus"))),
        source,
    )


def _shared(text: str | None) -> str | None:
    """One string for the values executions repeat (their job, status, reason): a large estate
    has millions of executions and as many copies otherwise."""
    return None if text is None else sys.intern(text)


# Give `read_snapshot` to normalize executions as they are read: a large estate has millions.
NORMALIZED_WHILE_READING: Mapping[str, Convert] = MappingProxyType(
    {EXECUTIONS: execution_from_row})


def assignment_from_row(row: dict[str, Any], source: str = "") -> RoleAssignment | None:
    resource_id = as_str(row.get("id"))
    if not resource_id:
        return None
    props = as_dict(row.get("properties"))
    return RoleAssignment(
        id=resource_id,
        principal_id=as_str(props.get("principalId")),
        principal_type=as_str(props.get("principalType")),
        role_definition_id=as_str(props.get("roleDefinitionId")),
        scope=as_str(props.get("scope")),
        source=source,
    )


def definition_from_row(row: dict[str, Any], source: str = "") -> RoleDefinition | None:
    resource_id = as_str(row.get("id"))
    if not resource_id:
        return None
    props = as_dict(row.get("properties"))
    actions = tuple(a for p in map(as_dict, as_list(props.get("permissions")))
                    for a in as_strings(p.get("actions")))
    return RoleDefinition(
        id=resource_id,
        guid=resource_id.rstrip("/").rsplit("/", 1)[-1].lower(),
        role_name=as_str(props.get("roleName")),
        role_type=as_str(props.get("type")),
        actions=actions,
        source=source,
    )
