"""route() reads only a few fields of each job row, and must read them as normalize does."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.collect.history import route
from auditor.collect.log_analytics import HistoryJob
from auditor.normalize import environment_from_row, job_from_row
from tests.azure_server import environment_id, environment_row, job_row
from tests.collect.helpers import SUB_A

WS = "f0e1d2c3-0000-4000-8000-000000000001"
ENVIRONMENTS = [environment_row(SUB_A, workspace=WS)]


def _job(**changes: Any) -> dict[str, Any]:
    return {**job_row(SUB_A, "nightly"), **changes}


def _expected(row: dict[str, Any]) -> list[HistoryJob]:
    """The job as route() read it before: through the whole of job_from_row."""
    job = job_from_row(dict(row))
    if job is None:
        return []
    environments = {e.id.lower(): e for e in map(environment_from_row, ENVIRONMENTS) if e}
    environment = environments.get((job.environment_id or "").lower())
    named = environment.name if environment else (job.environment_id or "").rsplit("/", 1)[-1]
    return [HistoryJob(job.id, job.name, job.subscription_id, job.resource_group,
                       named or None)]


@pytest.mark.parametrize("row", [
    pytest.param(_job(), id="resource-graph-row"),
    pytest.param(_job(subscriptionId=None, resourceGroup=None), id="arm-row-no-scope-columns"),
    pytest.param(_job(subscriptionId="", resourceGroup=7), id="empty-and-numeric-columns"),
    pytest.param(_job(name=None), id="no-name"),
    pytest.param(_job(name=12), id="numeric-name"),
    pytest.param(_job(id=None), id="no-id"),
    pytest.param(_job(id=""), id="empty-id"),
    pytest.param(_job(id=42), id="numeric-id"),
    pytest.param(_job(id="/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG-X/providers/Microsoft.App/jobs/j",
                      subscriptionId=None, resourceGroup=None), id="upper-case-segments"),
    pytest.param(_job(properties=None), id="no-properties"),
    pytest.param(_job(properties=["not", "a", "dict"]), id="properties-not-a-dict"),
    pytest.param(_job(properties={"environmentId": 5}), id="numeric-environment"),
    pytest.param(_job(properties={"environmentId": environment_id(SUB_A).upper()}),
                 id="environment-in-another-case"),
    pytest.param(_job(properties={"environmentId": environment_id(SUB_A, name="other")}),
                 id="environment-not-read"),
    pytest.param(_job(properties={"environmentId": "/"}), id="environment-id-empty-name"),
])
def test_route_reads_a_job_row_as_normalize_does(row: dict[str, Any]) -> None:
    assert [r.job for r in route([row], ENVIRONMENTS)] == _expected(row)


def test_route_keeps_the_first_row_of_a_job_listed_twice_in_id_order() -> None:
    first, second = _job(), _job(name="renamed")
    second["id"] = second["id"].upper()
    other = job_row(SUB_A, "a-job")

    routes = route([first, second, other], ENVIRONMENTS)

    assert [r.job.name for r in routes] == ["a-job", "nightly"]
    assert all(r.workspace == WS for r in routes)
