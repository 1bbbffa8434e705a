"""What a check is: a pure function over one Job plus declarative metadata.

A check never reads files, flags or the network. It gets the job and a `Context` (policy
thresholds and read-only lookups into the estate) and returns an `Outcome`: a status, a one-line
message and the evidence it used. The `@check` decorator attaches metadata and registers nothing:
`checks/__init__.py` lists the catalogue modules explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from auditor.cost import CostView
from auditor.model import Estate, Job
from auditor.settings import Policy, Severity


class Status(Enum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"
    UNKNOWN = "unknown"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    message: str
    evidence: tuple[str, ...] = ()
    # What inside the job the result is about (a variable, a container); part of its identity.
    subject: str = ""


def passed(message: str, *evidence: str) -> Outcome:
    return Outcome(Status.PASS, message, evidence)


def failed(message: str, *evidence: str, subject: str = "") -> Outcome:
    return Outcome(Status.FAIL, message, evidence, subject)


def not_applicable(message: str) -> Outcome:
    return Outcome(Status.NOT_APPLICABLE, message)


def unknown(message: str) -> Outcome:
    return Outcome(Status.UNKNOWN, message)


@dataclass(frozen=True, slots=True)
class Context:
    """What a check may consult besides the job itself."""

    policy: Policy
    estate: Estate
    as_of: datetime
    cost: CostView | None = None  # None when the scan priced nothing


CheckFunction = Callable[[Job, Context], Outcome]


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    title: str
    severity: Severity
    rationale: str
    remediation: str
    function: CheckFunction
    references: tuple[str, ...] = ()
    # Framework name -> control ids, e.g. {"MCSB": ("IM-3",), "NIST-800-53": ("IA-5",)}.
    controls: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    category: str = ""
    # A policy setting that must be set for the check to run (the check is off until then).
    requires_policy: str = ""
    # The policy settings the check reads, shown with their effective values.
    parameters: tuple[str, ...] = ()

    def __call__(self, job: Job, context: Context) -> Outcome:
        return self.function(job, context)


def check(
    *,
    id: str,
    title: str,
    severity: Severity,
    rationale: str,
    remediation: str,
    references: tuple[str, ...] = (),
    controls: Mapping[str, tuple[str, ...]] | None = None,
    category: str = "",
    requires_policy: str = "",
    parameters: tuple[str, ...] = (),
) -> Callable[[CheckFunction], Check]:
    """Turn a function into a `Check` carrying its metadata."""

    def wrap(function: CheckFunction) -> Check:
        return Check(id, title, severity, rationale, remediation, function, references,
                     dict(controls or {}), category, requires_policy, parameters)

    return wrap
