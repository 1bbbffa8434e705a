"""Governance checks: every job must say who owns it and who pays for it."""

from __future__ import annotations

from auditor.check import Context, Outcome, check, failed, passed
from auditor.model import Job
from auditor.settings import Severity


@check(
    id="CAJ-030",
    title="Required tags are present with values",
    severity=Severity.MEDIUM,
    category="Governance",
    rationale=(
        "Without owner and cost-center tags, findings and costs cannot be routed to the team "
        "that can act on them."
    ),
    remediation=(
        "Tag the job: `az tag update --resource-id JOB_ID --operation merge --tags "
        "owner=TEAM cost-center=CC environment=prod`."
    ),
    references=(
        "https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources",
    ),
    controls={"MCSB": ("AM-2",), "CIS-v8": ("1.1",), "NIST-800-53": ("CM-8",)},
)
def required_tags(job: Job, context: Context) -> Outcome:
    required = context.policy.required_tags
    missing = [t for t in required if not (job.tag(t) or "").strip()]
    if missing:
        return failed(
            f"Missing or empty required tags: {', '.join(missing)}.",
            *(f"tag '{t}' is missing or empty" for t in missing),
            subject=",".join(missing),
        )
    return passed("All required tags are present.",
                  *(f"tag '{t}' = {job.tag(t)}" for t in required))
