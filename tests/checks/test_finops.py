from __future__ import annotations

from datetime import timedelta

import pytest

from auditor.check import Context, Status
from auditor.cost import AnomalyPolicy, CostView, Rates, job_costs
from auditor.model import Estate, Execution
from checks.finops import cost_anomaly
from tests.factories import AS_OF, make_context, make_job

RATES = Rates("USD", 0.000024, 0.000003, 180_000, 360_000, "test")
POLICY = AnomalyPolicy(relative_floor=0.5, absolute_floor=5.0, min_history_days=7,
                       lookback_days=7, z_threshold=3.0)
BIG = make_job(name="big", **{"properties.template.containers": [
    {"name": "m", "image": "contosoacr.azurecr.io/m:1",
     "resources": {"cpu": 4, "memory": "8Gi"}}]})


def nightly(minutes: list[float]) -> list[Execution]:
    """One run a night, the last one on the night before AS_OF."""
    first = AS_OF - timedelta(days=len(minutes)) + timedelta(hours=2)
    return [Execution(f"{BIG.id}/executions/n{i}", f"n{i}", BIG.id, "Succeeded",
                      first + timedelta(days=i), first + timedelta(days=i, minutes=m))
            for i, m in enumerate(minutes)]


def context(runs: list[Execution] | None) -> Context:
    if runs is None:
        return make_context()
    estate = Estate(jobs=(BIG,), executions=tuple(runs))
    since = AS_OF - timedelta(days=30)
    costs = {c.job.id.lower(): c for c in job_costs(estate, RATES, since, AS_OF)}
    view = CostView(costs, since, AS_OF, "USD", POLICY)
    base = make_context(estate)
    return Context(base.policy, base.estate, base.as_of, view)


@pytest.mark.parametrize(("runs", "expected"), [
    pytest.param(nightly([60.0] * 30), Status.PASS, id="pass-flat"),
    pytest.param(nightly([60.0] * 29 + [1200.0]), Status.FAIL, id="fail-spike-last-night"),
    pytest.param(nightly([60.0] * 29 + [90.0]), Status.PASS, id="pass-small-rise-under-floors"),
    pytest.param(nightly([60.0, 1200.0]), Status.NOT_APPLICABLE, id="na-new-job"),
    pytest.param([], Status.NOT_APPLICABLE, id="na-no-executions"),
    pytest.param(None, Status.UNKNOWN, id="unknown-not-priced"),
])
def test_cost_anomaly(runs: list[Execution] | None, expected: Status) -> None:
    assert cost_anomaly(BIG, context(runs)).status is expected


def test_anomaly_evidence_has_day_expected_actual_delta_and_driver() -> None:
    outcome = cost_anomaly(BIG, context(nightly([60.0] * 29 + [1200.0])))
    (line,) = outcome.evidence
    assert line == ("2026-11-19: 8.64 USD against an expected 0.43 (+8.21); likely driver: "
                    "longer executions (20.0 times the usual)")
    assert outcome.subject == "2026-11-19"


def test_new_job_says_so() -> None:
    outcome = cost_anomaly(BIG, context(nightly([60.0, 1200.0])))
    assert outcome.message.startswith("New job: first priced run on 2026-11-18")

