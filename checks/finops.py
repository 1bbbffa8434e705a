"""FinOps checks: a job's daily cost should follow its own pattern."""

from __future__ import annotations

from auditor.check import Context, Outcome, check, failed, not_applicable, passed, unknown
from auditor.model import Job
from auditor.settings import Severity


@check(
    id="CAJ-050",
    title="Daily cost follows the job's own baseline",
    severity=Severity.MEDIUM,
    category="Cost",
    rationale=(
        "A job that suddenly runs more often, longer or bigger multiplies its bill before any "
        "budget alert fires; its own weekday baseline shows the jump the day it happens."
    ),
    remediation=(
        "Compare the anomalous day's executions with the usual ones: `az containerapp job "
        "execution list -n JOB -g RG -o table`; cap concurrency (`--max-executions`), fix the "
        "trigger, or right-size the replicas (`--cpu`, `--memory`)."
    ),
    references=("https://learn.microsoft.com/azure/container-apps/billing",
                "https://learn.microsoft.com/azure/cost-management-billing/understand/"
                "analyze-unexpected-charges"),
    controls={"MCSB": ("AM-1",), "CIS-v8": ("1.1",), "NIST-800-53": ("SI-4",),
              "ISO-27001-2022": ("A.8.16",), "SOC2": ("CC7.2",)},
)
def cost_anomaly(job: Job, context: Context) -> Outcome:
    if context.cost is None:
        return unknown("The scan priced no executions.")
    cost = context.cost.of(job)
    if cost is None or not cost.executions:
        return not_applicable("No priced executions in the window.")
    found = context.cost.anomalies(job)
    currency = context.cost.currency
    if found is None:
        first = min(e.day for e in cost.executions)
        return not_applicable(f"New job: first priced run on {first:%Y-%m-%d}; too little "
                              "history for a baseline.")
    if found:
        return failed(
            f"{len(found)} day(s) cost well above the job's baseline.",
            *(f"{a.day:%Y-%m-%d}: {a.actual:.2f} {currency} against an expected "
              f"{a.expected:.2f} (+{a.delta:.2f}); likely driver: {a.driver}" for a in found),
            subject=",".join(f"{a.day:%Y-%m-%d}" for a in found))
    return passed(f"Daily cost follows the baseline ({cost.total:.2f} {currency} in the "
                  "window).")
