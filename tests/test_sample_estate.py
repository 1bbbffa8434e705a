"""The bundled sample estate (`auditor scan --sample`): every row is read, and the planted
findings are exactly the ones the scan reports.

Counts are computed here from the files themselves, independently of the snapshot reader. The
planted sets below are the specification of the sample (see auditor/sample_estate/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import auditor.sample_estate
import checks
from auditor.check import Status
from auditor.engine import evaluate
from auditor.model import Estate, TriggerType
from auditor.normalize import normalize
from auditor.results import Result
from auditor.settings import load_settings
from auditor.snapshot import (
    ENVIRONMENTS,
    EXECUTIONS,
    JOBS,
    KNOWN_TYPES,
    ROLE_ASSIGNMENTS,
    ROLE_DEFINITIONS,
    RawSnapshot,
    read_snapshot,
)

SAMPLE = Path(auditor.sample_estate.__file__).parent
GENERATOR = Path(__file__).resolve().parents[1] / "scripts" / "make_sample_estate.py"
AS_OF = datetime(2026, 11, 20, tzinfo=UTC)

# Failing jobs per check, as planted. A job that is not listed must not fail the check.
PLANTED: dict[str, set[str]] = {
    "CAJ-001": {"customer-churn-scoring", "reporting-cube-rebuild", "dev-nightly-invoice-export",
                "dev-sandbox-runner"},
    "CAJ-003": {"customer-churn-scoring", "payment-reconciliation", "reporting-cube-rebuild",
                "order-events-archiver", "etl-orders-loader", "ml-batch-inference",
                "sla-report-mailer", "export-to-partner-sftp", "dev-nightly-invoice-export",
                "dev-sandbox-runner"},
    "CAJ-010": {"ledger-snapshot", "prod-db-backup-verify", "ml-model-training",
                "dev-etl-orders-loader", "dev-load-test-seeder"},
    "CAJ-011": {"vendor-catalog-sync", "ml-feature-refresh", "dev-ml-feature-refresh",
                "dev-load-test-seeder"},
    "CAJ-030": {"customer-churn-scoring", "data-quality-checks", "lake-partition-pruner",
                "export-to-partner-sftp", "dev-ml-feature-refresh", "dev-sandbox-runner"},
    # Execution health, from 30 days of executions before AS_OF:
    "CAJ-016": {"payment-reconciliation"},  # 35 % of runs fail
    "CAJ-017": {"dunning-letters-batch"},  # its schedule stopped firing 6 days ago
    "CAJ-018": {"ledger-snapshot",  # runs hit the timeout (DeadlineExceeded)
                "vendor-catalog-sync",  # typical run at 74 % of the timeout, p95 over 80 %
                "ml-batch-inference"},  # the backlog day's runs reach the timeout
}

# Near misses: settings that look suspicious but comply, so the check must pass.
NEAR_MISSES: dict[str, set[str]] = {
    "CAJ-001": {"gdpr-erasure-worker",  # "SystemAssigned,UserAssigned"
                "log-retention-enforcer"},  # "SystemAssigned, UserAssigned" (with a space)
    "CAJ-003": {"dev-report-preview"},  # registry password, but held in Key Vault
    "CAJ-010": {"dunning-letters-batch"},  # exactly the 14400 s maximum
    "CAJ-011": {"dunning-letters-batch",  # exactly the cap of 3
                "data-quality-checks"},  # absent: the platform default 0
    "CAJ-030": {"dunning-letters-batch", "dbt-models-build",  # "Owner", "OWNER": names are
                "sla-report-mailer",  # case-insensitive; a formula-like owner is still a value
                "vendor-catalog-sync"},  # an owner with "|" and a backtick
}
MISSING_ENVIRONMENT = {"prod-db-backup-verify"}  # points at an environment not in the export


# --- reading the files independently -------------------------------------------------------------

def _rows(document: Any) -> list[Any]:
    if isinstance(document, list):
        return document
    if "data" in document:
        data = document["data"]
        if isinstance(data, dict):
            names = [column["name"] for column in data["columns"]]
            return [dict(zip(names, row, strict=True)) for row in data["rows"]]
        return list(data)
    if "value" in document:
        return list(document["value"])
    return [document]


@pytest.fixture(scope="module")
def file_rows() -> dict[str, list[dict[str, Any]]]:
    """Rows per lower-case type, straight from the JSON files."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(SAMPLE.glob("*.json")):
        for row in _rows(json.loads(path.read_text(encoding="utf-8"))):
            found.setdefault(row["type"].lower(), []).append(row)
    return found


@pytest.fixture(scope="module")
def raw() -> RawSnapshot:
    return read_snapshot(SAMPLE)


@pytest.fixture(scope="module")
def estate(raw: RawSnapshot) -> Estate:
    return normalize(raw)


@pytest.fixture(scope="module")
def results(estate: Estate) -> tuple[Result, ...]:
    return evaluate(estate, checks.catalogue(), load_settings().policy, AS_OF)


def _ids(rows: list[dict[str, Any]]) -> set[str]:
    return {row["id"].lower() for row in rows}


# --- every row is recognised ---------------------------------------------------------------------

def test_every_row_of_a_known_type_is_read(
    raw: RawSnapshot, file_rows: dict[str, list[dict[str, Any]]]
) -> None:
    for kind in KNOWN_TYPES:
        assert len(raw.items[kind]) == len(file_rows[kind]), kind
    assert not raw.coverage.gaps


def test_every_row_is_normalized_once(
    estate: Estate, file_rows: dict[str, list[dict[str, Any]]]
) -> None:
    for kind in KNOWN_TYPES:  # no duplicate ids across the exports
        assert len(_ids(file_rows[kind])) == len(file_rows[kind]), kind
    assert {j.id.lower() for j in estate.jobs} == _ids(file_rows[JOBS])
    assert set(estate.environments) == _ids(file_rows[ENVIRONMENTS])
    assert {(e.id or "").lower() for e in estate.executions} == _ids(file_rows[EXECUTIONS])
    assert {a.id.lower() for a in estate.role_assignments} == _ids(file_rows[ROLE_ASSIGNMENTS])
    assert {d.id.lower() for d in estate.role_definitions.values()} == _ids(
        file_rows[ROLE_DEFINITIONS])


def test_the_sample_has_the_promised_size(estate: Estate) -> None:
    assert 38 <= len(estate.jobs) <= 45
    assert 5 <= len(estate.environments) <= 6
    assert 300 <= len(estate.executions) <= 1500
    assert len({j.subscription_id for j in estate.jobs}) == 4
    assert {j.trigger_type for j in estate.jobs} == set(TriggerType)
    assert sum(p.stat().st_size for p in SAMPLE.glob("*.json")) < 1_500_000


def test_unrelated_types_are_counted_not_read(
    raw: RawSnapshot, file_rows: dict[str, list[dict[str, Any]]]
) -> None:
    expected = Counter({kind: len(rows) for kind, rows in file_rows.items()
                        if kind not in KNOWN_TYPES})
    assert raw.other_types == expected
    assert raw.other_types["microsoft.storage/storageaccounts"] >= 1
    assert raw.other_types["microsoft.app/containerapps"] >= 1  # an app, not a job


def test_scheduled_spelling_normalizes_to_schedule(estate: Estate) -> None:
    quirky = [j for j in estate.jobs if j.trigger_type_raw == "Scheduled"]
    assert quirky
    assert all(j.trigger_type is TriggerType.SCHEDULE and j.cron_expression for j in quirky)


# --- internal consistency ------------------------------------------------------------------------

def test_jobs_point_at_exported_environments(estate: Estate) -> None:
    unresolved = {j.name for j in estate.jobs if estate.environment_of(j) is None}
    assert unresolved == MISSING_ENVIRONMENT


def test_executions_belong_to_jobs_and_fall_in_the_window(estate: Estate) -> None:
    job_ids = {j.id.lower() for j in estate.jobs}
    assert all((e.job_id or "").lower() in job_ids for e in estate.executions)
    assert {e.status for e in estate.executions} == {
        "Succeeded", "Failed", "Running", "Stopped", "Degraded"}
    for e in estate.executions:
        assert e.start_time is not None
        assert AS_OF - timedelta(days=31) <= e.start_time < AS_OF
        assert (e.end_time is None) == (e.status == "Running")
        assert e.end_time is None or e.end_time >= e.start_time


def test_role_assignments_resolve(estate: Estate) -> None:
    assert all(a.role_definition_guid in estate.role_definitions
               for a in estate.role_assignments)
    job_principals = {p for j in estate.jobs if j.identity for p in j.identity.principal_ids}
    held = {a.principal_id for a in estate.role_assignments if a.principal_type ==
            "ServicePrincipal"}
    assert len(held & job_principals) >= 8  # job identities hold roles
    assert held - job_principals  # and one deleted identity's assignment stayed behind


def test_references_inside_jobs_resolve(estate: Estate) -> None:
    for job in estate.jobs:
        secrets = {s.name for s in job.secrets or ()}
        refs = {e.secret_ref for c in job.containers or () for e in c.env if e.secret_ref}
        refs |= {r.password_secret_ref for r in job.registries or () if r.password_secret_ref}
        if job.event_scale:
            refs |= {s for rule in job.event_scale.rules for s in rule.auth_secret_refs}
        assert refs <= secrets, job.name
        identities = {"system"} | {u.resource_id for u in
                                   (job.identity.user_assigned if job.identity else ())}
        used = {s.identity for s in job.secrets or () if s.identity}
        used |= {r.identity for r in job.registries or () if r.identity}
        assert used <= identities, job.name


def test_hostile_tag_values_are_present(estate: Estate) -> None:
    owners = {j.tag("owner") for j in estate.jobs}
    assert '=HYPERLINK("http://example.invalid","x")' in owners
    assert any("|" in v and "`" in v for j in estate.jobs for v in j.tags.values())


# --- the planted findings ------------------------------------------------------------------------

@pytest.mark.parametrize("check_id", sorted(PLANTED))
def test_planted_failures_are_exactly_the_failing_jobs(
    check_id: str, results: tuple[Result, ...]
) -> None:
    mine = [r for r in results if r.check.id == check_id]
    assert mine, f"{check_id} is not in the catalogue"
    assert not [r.job.name for r in mine if r.status is Status.ERROR]
    assert {r.job.name for r in mine if r.status is Status.FAIL} == PLANTED[check_id]


@pytest.mark.parametrize("check_id", sorted(NEAR_MISSES))
def test_near_misses_pass(check_id: str, results: tuple[Result, ...]) -> None:
    status = {r.job.name: r.status for r in results if r.check.id == check_id}
    assert {name: status[name] for name in NEAR_MISSES[check_id]} == {
        name: Status.PASS for name in NEAR_MISSES[check_id]}


# --- the files are the generator's output --------------------------------------------------------

def test_bundled_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(GENERATOR), str(tmp_path)], check=True,
                   capture_output=True)
    generated = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    bundled = {p.name: p.read_bytes() for p in SAMPLE.glob("*.json")}
    assert sorted(generated) == sorted(bundled)
    stale = [name for name in generated if generated[name] != bundled[name]]
    assert not stale, f"rerun scripts/make_sample_estate.py: {stale} differ"
