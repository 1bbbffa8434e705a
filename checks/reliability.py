"""Reliability checks: bounded runs and bounded retries keep failures cheap and visible."""

from __future__ import annotations

from collections.abc import Callable

from auditor.check import Context, Outcome, check, failed, not_applicable, passed, unknown
from auditor.model import Container, Job, TriggerType
from auditor.schedule import CronError, shortest_gap_seconds
from auditor.settings import Severity

# Container Apps starts at most this many executions per polling interval when unset.
PLATFORM_MAX_EXECUTIONS = 100


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
    controls={"MCSB": ("PV-2",), "CIS-v8": ("4.1",), "NIST-800-53": ("SC-5", "SI-17"),
              "ISO-27001-2022": ("A.8.6",), "SOC2": ("A1.1",)},
    parameters=("max_replica_timeout_seconds",),
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
    controls={"MCSB": ("PV-2",), "CIS-v8": ("4.1",), "NIST-800-53": ("SI-17",),
              "ISO-27001-2022": ("A.8.6",), "SOC2": ("A1.1",)},
    parameters=("max_replica_retry_limit",),
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


@check(
    id="CAJ-012",
    title="Scheduled runs cannot overlap",
    severity=Severity.MEDIUM,
    category="Reliability",
    rationale=(
        "When a run may last longer than the gap to the next firing, executions pile up: "
        "double processing, lock contention and a bill that grows with every slow night."
    ),
    remediation=(
        "Make the timeout shorter than the shortest gap between firings, or fire less often: "
        "`az containerapp job update -n JOB -g RG --replica-timeout SECONDS "
        "--cron-expression \"EXPR\"`."
    ),
    references=("https://learn.microsoft.com/azure/container-apps/jobs",),
    controls={"MCSB": ("PV-2",), "CIS-v8": ("4.1",), "NIST-800-53": ("CM-6", "SC-5"),
              "ISO-27001-2022": ("A.8.9",), "SOC2": ("A1.1",)},
)
def schedule_overlap(job: Job, context: Context) -> Outcome:
    if not job.has_configuration:
        return unknown("The job's configuration is not in the data.")
    if job.trigger_type is not TriggerType.SCHEDULE:
        return not_applicable("The job is not schedule-triggered.")
    if not job.cron_expression:
        return failed("The schedule has no cron expression.",
                      "scheduleTriggerConfig.cronExpression = (absent)")
    try:
        gap = shortest_gap_seconds(job.cron_expression)
    except CronError as e:
        return failed(f"The cron expression '{job.cron_expression}' is invalid: {e}.",
                      f"cronExpression = {job.cron_expression}")
    if job.replica_timeout is None:
        return unknown("replicaTimeout is not set, so overlap cannot be judged.")
    evidence = (f"cronExpression = {job.cron_expression} (UTC); shortest gap "
                f"{_duration(gap)}; replicaTimeout = {job.replica_timeout} s")
    if gap is None:
        return not_applicable(f"The cron expression '{job.cron_expression}' never fires.")
    if job.replica_timeout >= gap:
        return failed(f"A run may last {job.replica_timeout} s but the schedule fires again "
                      f"after {gap} s: runs can overlap.", evidence)
    return passed("The timeout is shorter than the shortest gap between firings.", evidence)


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit} ({seconds} s)"
    return f"{seconds} s"


@check(
    id="CAJ-013",
    title="Event-driven jobs cap concurrent executions",
    severity=Severity.MEDIUM,
    category="Reliability",
    rationale=(
        "An event job starts up to maxExecutions executions per polling interval (100 when "
        "unset). A burst of messages then fans out into a burst of cost and of load on "
        "downstream systems."
    ),
    remediation=(
        "Set a cap that downstream systems can absorb: `az containerapp job update -n JOB "
        "-g RG --max-executions N`."
    ),
    references=("https://learn.microsoft.com/azure/container-apps/jobs",),
    controls={"MCSB": ("PV-2",), "CIS-v8": ("4.1",), "NIST-800-53": ("SC-5", "SC-6"),
              "ISO-27001-2022": ("A.8.6",), "SOC2": ("A1.1",)},
    parameters=("max_event_executions",),
)
def event_concurrency(job: Job, context: Context) -> Outcome:
    if not job.has_configuration:
        return unknown("The job's configuration is not in the data.")
    if job.trigger_type is not TriggerType.EVENT:
        return not_applicable("The job is not event-driven.")
    cap = context.policy.max_event_executions
    configured = job.event_scale.max_executions if job.event_scale else None
    effective = configured if configured is not None else PLATFORM_MAX_EXECUTIONS
    shown = configured if configured is not None else f"(absent: platform default {effective})"
    evidence = f"eventTriggerConfig.scale.maxExecutions = {shown} (policy cap {cap})"
    if effective > cap:
        return failed(f"Up to {effective} concurrent executions; policy allows {cap}.", evidence)
    return passed(f"At most {effective} concurrent executions.", evidence)


@check(
    id="CAJ-014",
    title="Job provisioned successfully",
    severity=Severity.HIGH,
    category="Reliability",
    rationale=(
        "A job whose last deployment failed or is stuck runs an older definition, or none: "
        "what the audit reads is not what runs."
    ),
    remediation=(
        "Read the deployment error and redeploy: `az containerapp job show -n JOB -g RG "
        "--query properties.provisioningState` then `az containerapp job update ...`."
    ),
    references=("https://learn.microsoft.com/azure/container-apps/troubleshooting",),
    controls={"MCSB": ("PV-2",), "CIS-v8": ("4.1",), "NIST-800-53": ("CM-2", "CM-3"),
              "ISO-27001-2022": ("A.8.9",), "SOC2": ("CC8.1",)},
)
def provisioned(job: Job, context: Context) -> Outcome:
    state = job.provisioning_state
    if state is None:
        return unknown("provisioningState is not in the data.")
    evidence = f"properties.provisioningState = {state}"
    if state.lower() != "succeeded":
        return failed(f"provisioningState is {state}, not Succeeded.", evidence)
    return passed("The job provisioned successfully.", evidence)


@check(
    id="CAJ-015",
    title="Replica resources are within policy",
    severity=Severity.LOW,
    category="Reliability",
    rationale=(
        "Oversized replicas multiply cost with every execution and usually hide a memory leak "
        "or an unbounded batch; caps make such growth a reviewed decision."
    ),
    remediation=(
        "Right-size the containers: `az containerapp job update -n JOB -g RG --cpu 0.5 "
        "--memory 1Gi`, or raise the policy cap in config for jobs that need it."
    ),
    references=("https://learn.microsoft.com/azure/container-apps/containers",),
    controls={"MCSB": ("PV-2",), "CIS-v8": ("4.1",), "NIST-800-53": ("CM-6", "SC-6"),
              "ISO-27001-2022": ("A.8.6",), "SOC2": ("A1.1",)},
    parameters=("max_replica_cpu", "max_replica_memory_gib"),
)
def replica_resources(job: Job, context: Context) -> Outcome:
    if job.containers is None:
        return unknown("The job's template is not in the data.")
    if not job.containers:
        return unknown("The template lists no containers.")
    cpu_cap, memory_cap = context.policy.max_replica_cpu, context.policy.max_replica_memory_gib
    unreadable = [c.memory for c in job.containers if c.memory and c.memory_gib is None]
    if unreadable:
        return unknown(f"Memory size {unreadable[0]!r} cannot be read.")
    cpu = _peak(job, lambda c: c.cpu or 0.0)
    memory = _peak(job, lambda c: c.memory_gib or 0.0)
    evidence = [f"{'init container' if c.is_init else 'container'} '{c.name}': cpu {c.cpu}, "
                f"memory {c.memory}" for c in job.containers]
    evidence.append(f"replica peak: {cpu:g} vCPU, {memory:g} GiB (policy caps {cpu_cap:g} "
                    f"vCPU, {memory_cap:g} GiB)")
    over = [text for text, exceeded in ((f"{cpu:g} vCPU > {cpu_cap:g}", cpu > cpu_cap),
                                        (f"{memory:g} GiB > {memory_cap:g}", memory > memory_cap))
            if exceeded]
    if over:
        return failed(f"Replica resources exceed policy: {'; '.join(over)}.", *evidence)
    return passed("Replica resources are within policy.", *evidence)


def _peak(job: Job, amount: Callable[[Container], float]) -> float:
    """Init containers run one at a time before the main containers, which run together."""
    containers = job.containers or ()
    main = sum(amount(c) for c in containers if not c.is_init)
    return max([main, *(amount(c) for c in containers if c.is_init)])
