"""Reliability checks: bounded runs and bounded retries keep failures cheap and visible."""

from __future__ import annotations

from auditor.check import Context, Outcome, check, failed, passed, unknown
from auditor.model import Job
from auditor.settings import Severity


@check(
    id="CAJ-010",
    title="Replica timeout is set and within policy",
    severity=Severity.MEDIUM,
    category="Reliability",
    rationale=(
        "A replica that hangs runs, and bills, until its timeout. A long timeout hides stuck "
        "work and lets scheduled runs pile up."
    ),
    remediation=(
        "Set a timeout that fits the work: `az containerapp job update -n JOB -g RG "
        "--replica-timeout SECONDS`."
    ),
    references=("https://learn.microsoft.com/azure/container-apps/jobs",),
    controls={"MCSB": ("AM-5",), "NIST-800-53": ("SC-5", "SI-17")},
)
def replica_timeout(job: Job, context: Context) -> Outcome:
    limit = context.policy.max_replica_timeout_seconds
    if not job.has_configuration:
        return unknown("The job's configuration is not in the data.")
    if job.replica_timeout is None:
        return failed("replicaTimeout is not set.", "configuration.replicaTimeout = (absent)")
    evidence = f"configuration.replicaTimeout = {job.replica_timeout} s (policy max {limit} s)"
    if job.replica_timeout <= 0 or job.replica_timeout > limit:
        return failed(f"replicaTimeout {job.replica_timeout} s exceeds the policy maximum of "
                      f"{limit} s.", evidence)
    return passed(f"replicaTimeout {job.replica_timeout} s is within policy.", evidence)


@check(
    id="CAJ-011",
    title="Replica retry limit is within policy",
    severity=Severity.LOW,
    category="Reliability",
    rationale=(
        "Each retry reruns a failing replica at full cost; an uncapped retry limit turns one "
        "bad input into a bill and delays the alert."
    ),
    remediation=(
        "Cap retries: `az containerapp job update -n JOB -g RG --replica-retry-limit N`."
    ),
    references=("https://learn.microsoft.com/azure/container-apps/jobs",),
    controls={"MCSB": ("AM-5",), "NIST-800-53": ("SI-17",)},
)
def retry_limit(job: Job, context: Context) -> Outcome:
    cap = context.policy.max_replica_retry_limit
    if not job.has_configuration:
        return unknown("The job's configuration is not in the data.")
    retries = job.replica_retry_limit if job.replica_retry_limit is not None else 0
    shown = job.replica_retry_limit if job.replica_retry_limit is not None else "(absent: 0)"
    evidence = f"configuration.replicaRetryLimit = {shown} (policy cap {cap})"
    if retries > cap:
        return failed(f"replicaRetryLimit {retries} exceeds the policy cap of {cap}.", evidence)
    return passed(f"replicaRetryLimit {retries} is within policy.", evidence)
