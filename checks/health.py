"""Execution health checks: jobs that fail, miss their schedule or run into their timeout.

They read the execution history in the data (Log Analytics or the executions API) within the
policy's window before `--as-of`. Missing log rows are not proof that nothing ran (the platform
is known to drop some), so the messages say what the data shows, not what happened.
"""

from __future__ import annotations

import math
from datetime import timedelta

from auditor.check import Context, Outcome, check, failed, not_applicable, passed, unknown
from auditor.model import Execution, Job, TriggerType
from auditor.schedule import CronError, firings
from auditor.settings import Severity

FAILED = {"failed", "degraded"}
FINISHED = FAILED | {"succeeded"}
TIMEOUT_REASON = "deadlineexceeded"
# Container Apps may start a scheduled execution a little late; do not count that as a miss.
START_GRACE = timedelta(minutes=10)


def _window(job: Job, context: Context) -> list[Execution]:
    since = context.as_of - timedelta(days=context.policy.health_window_days)
    return [e for e in context.estate.executions_of(job)
            if e.start_time is not None and since <= e.start_time <= context.as_of]


def _finished(executions: list[Execution]) -> list[Execution]:
    return [e for e in executions if (e.status or "").lower() in FINISHED]


@check(
    id="CAJ-016",
    title="Execution failure rate is within policy",
    severity=Severity.HIGH,
    category="Execution health",
    rationale=(
        "A job that fails often either leaves work undone or succeeds only on retry, at "
        "several times the cost; either way someone relies on output that is not there."
    ),
    remediation=(
        "Read the failed executions' logs: `az containerapp job execution list -n JOB -g RG "
        "--query \"[?properties.status=='Failed']\"` and `az containerapp job logs show -n JOB "
        "-g RG --execution EXECUTION`."
    ),
    references=("https://learn.microsoft.com/azure/container-apps/jobs",
                "https://learn.microsoft.com/azure/container-apps/log-monitoring"),
    controls={"MCSB": ("LT-3",), "CIS-v8": ("8.2",), "NIST-800-53": ("SI-4", "CP-10"),
              "ISO-27001-2022": ("A.8.16",), "SOC2": ("CC7.2",)},
    parameters=("health_window_days", "max_failure_rate", "min_executions_for_failure_rate"),
)
def failure_rate(job: Job, context: Context) -> Outcome:
    finished = _finished(_window(job, context))
    minimum = context.policy.min_executions_for_failure_rate
    if len(finished) < minimum:
        return not_applicable(f"{len(finished)} finished executions in the window; the rate "
                              f"is judged from {minimum}.")
    failures = [e for e in finished if (e.status or "").lower() in FAILED]
    rate = len(failures) / len(finished)
    limit = context.policy.max_failure_rate
    evidence = [f"{len(failures)} of {len(finished)} finished executions failed in the last "
                f"{context.policy.health_window_days} days ({rate:.0%}; policy max {limit:.0%})"]
    evidence += [f"{e.name}: {e.status} at {e.start_time:%Y-%m-%d %H:%M}Z"
                 + (f" ({e.reason})" if e.reason else "") for e in failures[-10:]]
    if rate > limit:
        return failed(f"{rate:.0%} of executions failed; policy allows {limit:.0%}.", *evidence)
    return passed(f"{rate:.0%} of executions failed.", *evidence)


@check(
    id="CAJ-017",
    title="Scheduled job ran as scheduled",
    severity=Severity.HIGH,
    category="Execution health",
    rationale=(
        "A schedule that silently stops firing (a disabled trigger, a failed deployment, a "
        "quota) is noticed only when the data it should produce is missed downstream."
    ),
    remediation=(
        "Check the job's trigger and recent executions: `az containerapp job show -n JOB -g RG "
        "--query properties.configuration` and `az containerapp job execution list -n JOB -g RG`; "
        "start a run by hand with `az containerapp job start -n JOB -g RG` once fixed."
    ),
    references=("https://learn.microsoft.com/azure/container-apps/jobs",),
    controls={"MCSB": ("LT-3",), "CIS-v8": ("8.2",), "NIST-800-53": ("SI-4", "CP-10"),
              "ISO-27001-2022": ("A.8.16",), "SOC2": ("CC7.2",)},
    parameters=("missed_run_intervals",),
)
def ran_as_scheduled(job: Job, context: Context) -> Outcome:
    if job.trigger_type is not TriggerType.SCHEDULE:
        return not_applicable("The job is not schedule-triggered.")
    if not job.cron_expression:
        return unknown("The job's schedule is not in the data.")
    runs = [e for e in context.estate.executions_of(job)
            if e.start_time is not None and e.start_time <= context.as_of]
    if not runs:
        return unknown("No executions of this job are in the data; missing log rows are not "
                       "proof that nothing ran.")
    last = runs[-1]
    assert last.start_time is not None
    allowed = context.policy.missed_run_intervals
    try:
        missed = firings(job.cron_expression, last.start_time + START_GRACE,
                         context.as_of - START_GRACE, limit=allowed + 1)
    except CronError:
        return unknown(f"The cron expression '{job.cron_expression}' is invalid (see CAJ-012).")
    evidence = [f"last execution {last.name} started {last.start_time:%Y-%m-%d %H:%M}Z; "
                f"cronExpression = {job.cron_expression} (UTC); as of "
                f"{context.as_of:%Y-%m-%d %H:%M}Z"]
    if len(missed) >= allowed:
        evidence += [f"expected run at {m:%Y-%m-%d %H:%M}Z not in the data" for m in missed]
        return failed(f"At least {len(missed)} scheduled runs are missing since the last "
                      "execution.", *evidence)
    return passed("The job has run on schedule.", *evidence)


@check(
    id="CAJ-018",
    title="Executions finish inside the timeout with headroom",
    severity=Severity.MEDIUM,
    category="Execution health",
    rationale=(
        "Executions that run close to replicaTimeout are one slow night away from being killed "
        "mid-work; executions that hit it (DeadlineExceeded) already were."
    ),
    remediation=(
        "Speed up or split the work, or raise the timeout deliberately: `az containerapp job "
        "update -n JOB -g RG --replica-timeout SECONDS` (and re-check CAJ-012 for overlap)."
    ),
    references=("https://learn.microsoft.com/azure/container-apps/jobs",),
    controls={"MCSB": ("PV-2",), "CIS-v8": ("4.1",), "NIST-800-53": ("SC-5", "SI-17"),
              "ISO-27001-2022": ("A.8.6",), "SOC2": ("A1.1",)},
    parameters=("duration_headroom", "health_window_days"),
)
def timeout_headroom(job: Job, context: Context) -> Outcome:
    if job.replica_timeout is None:
        return unknown("replicaTimeout is not in the data.")
    executions = _window(job, context)
    durations = sorted((e.end_time - e.start_time).total_seconds() for e in executions
                       if e.end_time is not None and e.start_time is not None)
    timed_out = [e for e in executions if (e.reason or "").lower() == TIMEOUT_REASON]
    if not durations and not timed_out:
        return not_applicable("No finished executions in the window.")
    limit = context.policy.duration_headroom * job.replica_timeout
    p95 = durations[max(math.ceil(0.95 * len(durations)) - 1, 0)] if durations else 0.0
    evidence = [f"p95 duration {p95:.0f} s of {len(durations)} executions; replicaTimeout "
                f"{job.replica_timeout} s; headroom limit {limit:.0f} s "
                f"({context.policy.duration_headroom:.0%})"]
    evidence += [f"{e.name} hit the timeout (DeadlineExceeded) at "
                 f"{e.start_time:%Y-%m-%d %H:%M}Z" for e in timed_out if e.start_time]
    if timed_out:
        return failed(f"{len(timed_out)} execution(s) hit the timeout.", *evidence)
    if p95 > limit:
        return failed(f"p95 duration {p95:.0f} s is over {context.policy.duration_headroom:.0%} "
                      f"of the {job.replica_timeout} s timeout.", *evidence)
    return passed(f"p95 duration {p95:.0f} s leaves headroom under the timeout.", *evidence)
