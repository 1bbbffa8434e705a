"""A small ScanReport built in memory from model objects, for the report writer tests.

The reports are tested against their own tiny catalogue (below), not the real one, so these tests
keep proving the writers while the real checks change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from auditor.check import Check, Context, Outcome, check, failed, not_applicable, passed, unknown
from auditor.coverage import Coverage, Gap, Read
from auditor.engine import evaluate
from auditor.model import Container, Environment, Estate, Identity, Job, TriggerType
from auditor.results import ScanInfo, ScanReport
from auditor.settings import Severity, load_settings
from auditor.waivers import Waiver, apply_waivers

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
STARTED = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


@check(id="T-001", title="Job has an identity", severity=Severity.HIGH, rationale="r",
       remediation="Assign one: `az containerapp job identity assign`.", category="Identity")
def has_identity(job: Job, context: Context) -> Outcome:
    if job.identity is None:
        return failed("The job has no identity.", f"job '{job.name}' identity = None")
    return passed("The job has an identity.", f"identity.type = {job.identity.type}")


@check(id="T-002", title="Timeout is set", severity=Severity.MEDIUM, rationale="r",
       remediation="Set `replicaTimeout`.", category="Reliability")
def timeout_set(job: Job, context: Context) -> Outcome:
    if job.replica_timeout is None:
        return unknown("replicaTimeout is not in the data.")
    return passed(f"replicaTimeout = {job.replica_timeout}")


@check(id="T-003", title="Owner tag names a team", severity=Severity.LOW, rationale="r",
       remediation="Tag the owner.", category="Governance")
def owner_tag(job: Job, context: Context) -> Outcome:
    if not job.tags:
        return not_applicable("The job has no tags.")
    owner = job.tag("owner") or ""
    if not owner.startswith("team-"):
        return failed(f"Owner '{owner}' is not a team.", f"tag 'owner' = {owner}",
                      "owners must start with 'team-'", subject=owner)
    return passed("The owner is a team.")


@check(id="T-004", title="Never raises", severity=Severity.CRITICAL, rationale="r",
       remediation="Fix the check.", category="Testing")
def explodes(job: Job, context: Context) -> Outcome:
    if job.name == "boom":
        raise RuntimeError("broken")
    return passed("fine")


CATALOGUE: tuple[Check, ...] = (has_identity, timeout_set, owner_tag, explodes)


def _make_job(**overrides: Any) -> Job:
    name = overrides.pop("name", "job-a")
    group = overrides.pop("resource_group", "rg-a")
    fields: dict[str, Any] = {
        "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/"
              f"Microsoft.App/jobs/{name}",
        "name": name,
        "subscription_id": SUBSCRIPTION,
        "resource_group": group,
        "location": "westeurope",
        "tags": {"owner": "team-a", "cost-center": "cc-1"},
        "identity": Identity("SystemAssigned", "p-1"),
        "provisioning_state": "Succeeded",
        "running_state": None,
        "environment_id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/"
                          "Microsoft.App/managedEnvironments/env-a",
        "workload_profile_name": None,
        "trigger_type": TriggerType.SCHEDULE,
        "trigger_type_raw": "Schedule",
        "replica_timeout": 1800,
        "replica_retry_limit": 1,
        "parallelism": 1,
        "replica_completion_count": 1,
        "cron_expression": "0 2 * * *",
        "event_scale": None,
        "secrets": (),
        "registries": (),
        "containers": (Container("main", "contoso.azurecr.io/app:1.0", False, 0.5, "1Gi"),),
        "has_configuration": True,
        "has_template": True,
    }
    fields.update(overrides)
    fields["tags"] = MappingProxyType(dict(fields["tags"]))
    return Job(**fields)


def _make_report(
    jobs: Iterable[Job] | None = None,
    *,
    gaps: Iterable[Gap] = (),
    other_types: Mapping[str, int] | None = None,
    catalogue: tuple[Check, ...] = CATALOGUE,
    waivers: Sequence[Waiver] = (),
) -> ScanReport:
    """A report over `jobs` (by default: one clean job, one with findings, one unknown)."""
    if jobs is None:
        jobs = [_make_job(),
                _make_job(name="job-b", identity=None, tags={"owner": "alice"}),
                _make_job(name="job-c", resource_group="rg-c", replica_timeout=None, tags={})]
    ordered = tuple(sorted(jobs, key=lambda j: j.id.lower()))
    environment = Environment(
        id=ordered[0].environment_id or "", name="env-a", subscription_id=SUBSCRIPTION,
        resource_group="rg-a", location="westeurope", tags={}, logs_destination=None,
        log_analytics_customer_id=None, infrastructure_subnet_id=None, internal=None,
        public_network_access=None) if ordered else None
    estate = Estate(
        jobs=ordered,
        environments=MappingProxyType({environment.id.lower(): environment} if environment else {}),
    )
    settings = load_settings()
    results, reviews = apply_waivers(evaluate(estate, catalogue, settings.policy, STARTED),
                                     waivers, STARTED)
    coverage = Coverage(reads=[Read("file jobs.json", "snapshot", len(ordered))],
                        gaps=list(gaps))
    info = ScanInfo(
        id="scan-1", started=STARTED, finished=datetime(2024, 5, 1, 10, 0, 7, tzinfo=UTC),
        as_of=STARTED, source="snapshot", source_detail="exports/2024-05-01",
        tool_version="0.1.0", scope={"snapshot": "exports/2024-05-01"},
        snapshot_files=("jobs.json",), other_types=dict(other_types or {}),
    )
    return ScanReport(info, settings, coverage, catalogue, estate, results, reviews)


def _make_waiver(check_id: str = "T-001", resource: str = "*/jobs/job-b", **fields: Any) -> Waiver:
    values: dict[str, Any] = {"justification": "Replaced in Q3", "approver": "ciso@contoso.com",
                              "ticket": "CHG-1", "expires": date(2024, 12, 31),
                              "source": "waivers.toml:2", **fields}
    return Waiver(check_id, resource, **values)


@pytest.fixture
def make_waiver() -> Callable[..., Waiver]:
    return _make_waiver


@pytest.fixture
def make_job() -> Callable[..., Job]:
    return _make_job


@pytest.fixture
def make_report() -> Callable[..., ScanReport]:
    return _make_report


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A staging folder as the scan leaves it: the snapshot evidence is already there."""
    (tmp_path / "snapshot").mkdir()
    (tmp_path / "snapshot" / "jobs.json").write_text('{"data": []}\n', encoding="utf-8")
    return tmp_path
