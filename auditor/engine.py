"""Evaluate every check against every job, in one pass, isolating failures per check."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from auditor.check import Check, Context, Outcome, Status
from auditor.cost import CostView
from auditor.model import Estate, Job
from auditor.results import Result
from auditor.settings import Policy, Settings

log = logging.getLogger(__name__)


def active_checks(catalogue: Sequence[Check], settings: Settings) -> tuple[Check, ...]:
    """The checks this scan runs, with severity overrides applied.

    A check is off when config disables it, or when it needs a policy setting that is unset.
    """
    active = []
    for item in catalogue:
        override = settings.checks.get(item.id)
        if override is not None and not override.enabled:
            continue
        if item.requires_policy and not getattr(settings.policy, item.requires_policy):
            continue
        if override is not None and override.severity is not None:
            item = replace(item, severity=override.severity)
        active.append(item)
    return tuple(active)


def evaluate(
    estate: Estate, checks: Sequence[Check], policy: Policy, as_of: datetime,
    cost: CostView | None = None,
) -> tuple[Result, ...]:
    """One result per job and check, ordered by job id then check id.

    A check that raises yields an `error` result for that job; the scan goes on.
    """
    context = Context(policy=policy, estate=estate, as_of=as_of, cost=cost)
    results: list[Result] = []
    for job in estate.jobs:
        for item in checks:
            results.append(Result(item, job, _run(item, job, context)))
    return tuple(results)


def _run(item: Check, job: Job, context: Context) -> Outcome:
    try:
        return item(job, context)
    except Exception as e:  # a broken check must not hide the other results
        log.debug("check %s raised on %s", item.id, job.id, exc_info=True)
        return Outcome(Status.ERROR, f"The check could not be evaluated: {type(e).__name__}.")
