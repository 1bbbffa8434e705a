"""Checks on the job's managed environment: where its logs go and who can reach it."""

from __future__ import annotations

from auditor.check import Context, Outcome, check, failed, passed, unknown
from auditor.model import Job
from auditor.settings import Severity


@check(
    id="CAJ-040",
    title="The job's environment sends logs to Azure Monitor",
    severity=Severity.MEDIUM,
    category="Observability",
    rationale=(
        "Without a log destination no execution leaves evidence: failures, timeouts and "
        "what a job printed cannot be investigated or shown to an auditor."
    ),
    remediation=(
        "Send the environment's logs to a workspace: `az containerapp env update -n ENV -g RG "
        "--logs-destination log-analytics --logs-workspace-id ID --logs-workspace-key KEY`."
    ),
    references=("https://learn.microsoft.com/azure/container-apps/log-options",),
    controls={"MCSB": ("LT-3", "LT-5"), "CIS-v8": ("8.2", "8.9"),
              "NIST-800-53": ("AU-2", "AU-12"), "ISO-27001-2022": ("A.8.15",),
              "SOC2": ("CC7.2",)},
)
def environment_logs(job: Job, context: Context) -> Outcome:
    environment = context.estate.environment_of(job)
    if environment is None:
        return unknown(f"The job's environment {job.environment_id or '(none)'} is not in the "
                       "data.")
    destination = environment.logs_destination
    evidence = f"environment {environment.name}: appLogsConfiguration.destination = " \
               f"{destination or '(none)'}"
    if (destination or "").lower() in ("log-analytics", "azure-monitor"):
        return passed(f"Logs go to {destination}.", evidence)
    return failed("The job's environment sends its logs nowhere.", evidence)


@check(
    id="CAJ-041",
    title="The job's environment is network-isolated",
    severity=Severity.MEDIUM,
    category="Network",
    rationale=(
        "Jobs reach databases and internal services; in an environment without VNet "
        "integration their traffic cannot be filtered, inspected or kept off the internet."
    ),
    remediation=(
        "Create the environment in a delegated subnet (`az containerapp env create ... "
        "--infrastructure-subnet-resource-id SUBNET_ID --internal-only`) and move the job "
        "to it."
    ),
    references=("https://learn.microsoft.com/azure/container-apps/networking",),
    controls={"MCSB": ("NS-1", "NS-2"), "CIS-v8": ("12.2", "13.4"),
              "NIST-800-53": ("SC-7",), "ISO-27001-2022": ("A.8.20", "A.8.22"),
              "SOC2": ("CC6.6",)},
    parameters=("require_internal_environment",),
)
def network_isolation(job: Job, context: Context) -> Outcome:
    environment = context.estate.environment_of(job)
    if environment is None:
        return unknown(f"The job's environment {job.environment_id or '(none)'} is not in the "
                       "data.")
    evidence = [f"environment {environment.name}: vnetConfiguration.infrastructureSubnetId = "
                f"{environment.infrastructure_subnet_id or '(none)'}",
                f"vnetConfiguration.internal = {environment.internal}",
                f"publicNetworkAccess = {environment.public_network_access or '(absent)'}"]
    if not environment.infrastructure_subnet_id:
        return failed("The job's environment is not VNet-integrated.", *evidence)
    if context.policy.require_internal_environment and not (
            environment.internal or (environment.public_network_access or "").lower()
            == "disabled"):
        return failed("The job's environment is publicly reachable; policy requires internal.",
                      *evidence)
    return passed("The job's environment is VNet-integrated.", *evidence)
