"""A finding's fingerprint: the same problem on the same resource has the same id in every scan.

    fingerprint = sha256(check id + "\\n" + lower-cased resource id + "\\n" + subject)[:32 hex]

The resource id is lower-cased because Azure returns one resource's id in varying case (a
resource group as `rg-a` in one API and `RG-A` in another). The subject (the variable, container
or other part of the job a result is about) keeps its case: it comes from the job's own
definition. The separators keep ("A", "bc") and ("Ab", "c") apart.

The history store, findings.json (`fingerprint`), findings.sarif (`partialFingerprints`) and
`auditor diff` all use this one function, so a finding is matched the same way everywhere.
Changing it would make every finding "new" once: it is versioned as `auditorFinding/v1`.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from auditor.results import Result

VERSION = "auditorFinding/v1"
LENGTH = 32  # hex digits: 128 bits


def fingerprint(check_id: str, resource_id: str, subject: str = "") -> str:
    material = f"{check_id}\n{resource_id.lower()}\n{subject}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:LENGTH]


def of_result(result: Result) -> str:
    return fingerprint(result.check.id, result.job.id, result.outcome.subject)
