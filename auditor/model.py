"""Normalized, immutable records that checks and reports read.

Every field that Azure may omit is Optional: `None` means "not in the data", which checks turn
into `unknown` rather than guessing. Records are built only by `auditor.normalize`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Any


class TriggerType(Enum):
    SCHEDULE = "Schedule"
    EVENT = "Event"
    MANUAL = "Manual"


@dataclass(frozen=True, slots=True)
class UserAssignedIdentity:
    resource_id: str
    principal_id: str | None
    client_id: str | None


@dataclass(frozen=True, slots=True)
class Identity:
    """The `identity` block; `type` is Azure's string, e.g. "SystemAssigned,UserAssigned"."""

    type: str | None
    principal_id: str | None
    user_assigned: tuple[UserAssignedIdentity, ...] = ()

    @property
    def is_managed(self) -> bool:
        kind = (self.type or "").replace(" ", "").lower()
        return kind not in ("", "none") and (
            "systemassigned" in kind or ("userassigned" in kind and bool(self.user_assigned))
        )

    @property
    def principal_ids(self) -> tuple[str, ...]:
        ids = [self.principal_id] + [u.principal_id for u in self.user_assigned]
        return tuple(i for i in ids if i)


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret's metadata: Azure never returns the value of a platform-stored secret."""

    name: str | None
    key_vault_url: str | None
    identity: str | None


@dataclass(frozen=True, slots=True)
class Registry:
    server: str | None
    username: str | None
    password_secret_ref: str | None
    identity: str | None


@dataclass(frozen=True, slots=True)
class EnvVar:
    name: str | None
    value: str | None
    secret_ref: str | None


@dataclass(frozen=True, slots=True)
class Container:
    name: str | None
    image: str | None
    is_init: bool
    cpu: float | None
    memory: str | None
    memory_gib: float | None = None  # None when `memory` is absent or unreadable
    env: tuple[EnvVar, ...] = ()
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScaleRule:
    name: str | None
    type: str | None
    metadata: Mapping[str, str]
    auth_secret_refs: tuple[str, ...]
    identity: str | None


@dataclass(frozen=True, slots=True)
class EventScale:
    min_executions: int | None
    max_executions: int | None
    polling_interval: int | None
    rules: tuple[ScaleRule, ...]


@dataclass(frozen=True, slots=True)
class Job:
    """One `Microsoft.App/jobs` resource.

    `secrets`, `registries` and `containers` are None when the row had no `configuration` /
    `template` at all (e.g. a trimmed export): checks on them report `unknown`.
    """

    id: str
    name: str
    subscription_id: str | None
    resource_group: str | None
    location: str | None
    tags: Mapping[str, str]
    identity: Identity | None
    provisioning_state: str | None
    running_state: str | None
    environment_id: str | None
    workload_profile_name: str | None
    trigger_type: TriggerType | None
    trigger_type_raw: str | None
    replica_timeout: int | None
    replica_retry_limit: int | None
    parallelism: int | None
    replica_completion_count: int | None
    cron_expression: str | None
    event_scale: EventScale | None
    secrets: tuple[Secret, ...] | None
    registries: tuple[Registry, ...] | None
    containers: tuple[Container, ...] | None
    has_configuration: bool
    has_template: bool
    source: str = ""

    @property
    def trimmed(self) -> bool:
        """A row without `properties`: a projection that may also have left out identity or
        tags, so their absence proves nothing."""
        return not self.has_configuration and not self.has_template and \
            self.provisioning_state is None and self.environment_id is None

    def tag(self, name: str) -> str | None:
        """Tag value by case-insensitive name, as Azure compares tag names."""
        wanted = name.lower()
        for key, value in self.tags.items():
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True, slots=True)
class WorkloadProfile:
    name: str
    type: str | None  # "Consumption", or a dedicated size such as "D4" or "E8"
    minimum_count: int | None
    maximum_count: int | None


@dataclass(frozen=True, slots=True)
class Environment:
    id: str
    name: str
    subscription_id: str | None
    resource_group: str | None
    location: str | None
    tags: Mapping[str, str]
    logs_destination: str | None
    log_analytics_customer_id: str | None
    infrastructure_subnet_id: str | None
    internal: bool | None
    public_network_access: str | None
    source: str = ""
    workload_profiles: tuple[WorkloadProfile, ...] = ()

    def profile(self, name: str | None) -> WorkloadProfile | None:
        wanted = (name or "").lower()
        return next((p for p in self.workload_profiles if p.name.lower() == wanted), None)


# Not frozen, unlike the other records: a large estate builds millions and frozen construction
# takes several times as long. Nothing assigns to one after normalize builds it.
@dataclass(slots=True, unsafe_hash=True)
class Execution:
    id: str | None
    name: str
    job_id: str | None
    status: str | None
    start_time: datetime | None
    end_time: datetime | None
    reason: str | None = None  # e.g. DeadlineExceeded (the timeout), BackoffLimitExceeded
    source: str = ""

    def __reduce__(self) -> tuple[type[Execution], tuple[Any, ...]]:
        """Pickled as its fields: a second process reading a large snapshot sends hundreds of
        thousands back, and the default for a slotted class costs several times as much."""
        return Execution, (self.id, self.name, self.job_id, self.status, self.start_time,
                           self.end_time, self.reason, self.source)


@dataclass(frozen=True, slots=True)
class RoleAssignment:
    id: str
    principal_id: str | None
    principal_type: str | None
    role_definition_id: str | None
    scope: str | None
    source: str = ""

    @property
    def role_definition_guid(self) -> str | None:
        """Built-in definitions are subscription-scoped in assignments: join on the GUID."""
        if not self.role_definition_id:
            return None
        return self.role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


@dataclass(frozen=True, slots=True)
class RoleDefinition:
    id: str
    guid: str
    role_name: str | None
    role_type: str | None
    actions: tuple[str, ...]
    source: str = ""


@dataclass(frozen=True, slots=True)
class PropertyChange:
    """One property of a change record, with values that are safe to show.

    `before`/`after` are None when the property did not exist on that side. Values under
    sensitive paths (env, secrets, args, command, scale-rule metadata) and values that look like
    credentials are already masked (`auditor.changes`), so no report can print a secret that a
    change record carried.
    """

    path: str
    before: str | None
    after: str | None
    property_change_type: str | None = None  # Insert, Update, Remove
    change_category: str | None = None  # User, System
    masked: bool = False  # a value (or part of the path) was masked


@dataclass(frozen=True, slots=True)
class Change:
    """One Resource Graph `resourcechanges` record of a job (Azure keeps 14 days of them)."""

    id: str | None
    resource_id: str
    subscription_id: str | None
    resource_group: str | None
    change_type: str | None  # Create, Update, Delete
    timestamp: datetime | None
    changed_by: str | None  # an e-mail address, an application id, or "System"
    changed_by_type: str | None  # User, Application, System...
    client_type: str | None  # "Azure Portal", "ARM Template", "Unspecified"...
    operation: str | None  # the permission used, e.g. Microsoft.App/jobs/write
    correlation_id: str | None
    changes_count: int | None
    property_changes: tuple[PropertyChange, ...] = ()
    source: str = ""

    @property
    def resource_name(self) -> str:
        return self.resource_id.rstrip("/").rsplit("/", 1)[-1]


def _empty_mapping() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Estate:
    """Everything one scan read, normalized, with the lookups checks need."""

    jobs: tuple[Job, ...] = ()
    environments: Mapping[str, Environment] = field(default_factory=_empty_mapping)  # type: ignore[arg-type]
    executions: tuple[Execution, ...] = ()
    role_assignments: tuple[RoleAssignment, ...] = ()
    role_definitions: Mapping[str, RoleDefinition] = field(default_factory=_empty_mapping)  # type: ignore[arg-type]
    # Lower-cased job id -> that job's executions, oldest first (built by normalize).
    executions_by_job: Mapping[str, tuple[Execution, ...]] = field(default_factory=_empty_mapping)  # type: ignore[arg-type]
    # Lower-cased job id -> where its execution history came from ("log-analytics", ...).
    history_sources: Mapping[str, str] = field(default_factory=_empty_mapping)
    # Resource Graph change records of jobs, oldest first (auditor.changes).
    changes: tuple[Change, ...] = ()
    # Principal id -> positions of its role assignments in `role_assignments` (normalize builds
    # it: scanning every assignment for every job is quadratic in a large estate).
    assignments_by_principal: Mapping[str, tuple[int, ...]] = field(
        default_factory=_empty_mapping)  # type: ignore[arg-type]

    def assignments_of(self, principal_ids: Iterable[str]) -> list[RoleAssignment]:
        """The role assignments of these principals, in `role_assignments` order."""
        wanted = set(principal_ids)
        if self.role_assignments and not self.assignments_by_principal:  # an estate built by hand
            return [a for a in self.role_assignments if a.principal_id in wanted]
        positions = sorted({i for p in wanted for i in self.assignments_by_principal.get(p, ())})
        return [self.role_assignments[i] for i in positions]

    def environment_of(self, job: Job) -> Environment | None:
        return self.environments.get((job.environment_id or "").lower())

    def executions_of(self, job: Job) -> tuple[Execution, ...]:
        return self.executions_by_job.get(job.id.lower(), ())
