"""Governance checks: every job says who owns it and who pays for it, in the agreed form."""

from __future__ import annotations

import re

from auditor.check import Context, Outcome, check, failed, not_applicable, passed, unknown
from auditor.model import Job
from auditor.settings import Severity


@check(
    id="CAJ-030",
    title="Required tags are present with valid values",
    severity=Severity.MEDIUM,
    category="Governance",
    rationale=(
        "Without owner and cost-center tags, findings and costs cannot be routed to the team "
        "that can act on them; free-form values defeat reporting by owner and environment."
    ),
    remediation=(
        "Tag the job: `az tag update --resource-id JOB_ID --operation merge --tags "
        "owner=TEAM cost-center=CC environment=prod`."
    ),
    references=(
        "https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources",
    ),
    controls={"MCSB": ("AM-1",), "CIS-v8": ("1.1",), "NIST-800-53": ("CM-8",),
              "ISO-27001-2022": ("A.5.9",), "SOC2": ("CC6.1",)},
    parameters=("required_tags", "tag_rules"),
)
def required_tags(job: Job, context: Context) -> Outcome:
    required = context.policy.required_tags
    if not job.tags and job.trimmed:
        return unknown("The row holds neither tags nor properties (a trimmed export).")
    missing = [t for t in required if not (job.tag(t) or "").strip()]
    problems = [f"tag '{t}' is missing or empty" for t in missing]
    rules = {name.lower(): rule for name, rule in context.policy.tag_rules.items()}
    invalid = []
    for name, rule in rules.items():
        value = (job.tag(name) or "").strip()
        if not value:
            continue
        if rule.allowed and value.lower() not in {a.lower() for a in rule.allowed}:
            invalid.append(name)
            problems.append(f"tag '{name}' = {value!r} is not one of {', '.join(rule.allowed)}")
        elif rule.pattern and not re.fullmatch(rule.pattern, value):
            invalid.append(name)
            problems.append(f"tag '{name}' = {value!r} does not match {rule.pattern}")
    if problems:
        parts = [f"missing or empty: {', '.join(missing)}" if missing else "",
                 f"invalid: {', '.join(invalid)}" if invalid else ""]
        return failed(f"Required tags {'; '.join(p for p in parts if p)}.", *problems,
                      subject=",".join(missing + invalid))
    return passed("All required tags are present and valid.",
                  *(f"tag '{t}' = {job.tag(t)}" for t in required))


@check(
    id="CAJ-042",
    title="Job name follows the naming convention",
    severity=Severity.LOW,
    category="Governance",
    rationale=(
        "Names that encode workload, environment and owner make inventories, alerts and cost "
        "reports readable without a lookup table."
    ),
    remediation=(
        "Jobs cannot be renamed: recreate the job under a conforming name "
        "(`az containerapp job create -n NEW_NAME ...`) and delete the old one."
    ),
    references=("https://learn.microsoft.com/azure/cloud-adoption-framework/ready/"
                "azure-best-practices/resource-naming",),
    controls={"MCSB": ("AM-1",), "CIS-v8": ("1.1",), "NIST-800-53": ("CM-8",),
              "ISO-27001-2022": ("A.5.9",), "SOC2": ("CC6.1",)},
    requires_policy="job_name_pattern",
    parameters=("job_name_pattern",),
)
def naming_convention(job: Job, context: Context) -> Outcome:
    pattern = context.policy.job_name_pattern
    if not pattern:
        return not_applicable("No naming convention is configured.")
    evidence = f"name = {job.name}; convention = {pattern}"
    if re.fullmatch(pattern, job.name):
        return passed("The name follows the convention.", evidence)
    return failed("The name does not follow the naming convention.", evidence)
