"""Framework controls: the catalogues in `config/frameworks.toml` and pass rates per control.

Auditors test controls, not checks: a control passes for a job when every check mapped to it
that could be evaluated on that job passed.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

from auditor.check import Check, Status
from auditor.results import Result


@dataclass(frozen=True, slots=True)
class Framework:
    key: str
    name: str
    controls: dict[str, str]  # control id -> title


@dataclass(frozen=True, slots=True)
class ControlRow:
    framework: str
    control_id: str
    title: str
    check_ids: tuple[str, ...]
    tested: int  # jobs with at least one pass or fail on the control's checks
    passed: int
    failed: int
    waived: int  # failed only on waived results

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.tested if self.tested else None


@lru_cache(maxsize=1)
def frameworks() -> dict[str, Framework]:
    text = files("auditor.defaults").joinpath("frameworks.toml").read_text(encoding="utf-8")
    return {key: Framework(key, value["name"], dict(value["controls"]))
            for key, value in tomllib.loads(text).items()}


def control_rows(checks: Iterable[Check], results: Iterable[Result]) -> list[ControlRow]:
    """One row per control that at least one active check maps to, in catalogue order."""
    mapped: dict[tuple[str, str], list[str]] = defaultdict(list)
    for item in checks:
        for framework, ids in item.controls.items():
            for control in ids:
                mapped[(framework, control)].append(item.id)
    # Per check id and job id (one result each): pass, fail, or fail under a waiver.
    verdicts: dict[str, dict[str, str]] = defaultdict(dict)
    for r in results:
        if r.status in (Status.PASS, Status.FAIL):
            verdict = "pass" if r.status is Status.PASS else "waived" if r.waived else "fail"
            verdicts[r.check.id][r.job.id] = verdict
    catalogue = frameworks()
    rows = []
    for (framework, control), check_ids in sorted(mapped.items(), key=_order):
        per_job: dict[str, str] = {}
        for check_id in check_ids:
            for job, verdict in verdicts[check_id].items():
                per_job[job] = _worse(per_job.get(job), verdict)
        counts = Counter(per_job.values())
        title = catalogue[framework].controls[control] if framework in catalogue else ""
        rows.append(ControlRow(framework, control, title, tuple(check_ids), len(per_job),
                               counts["pass"], counts["fail"], counts["waived"]))
    return rows


_RANK = {"pass": 0, "waived": 1, "fail": 2}


def _worse(current: str | None, verdict: str) -> str:
    return verdict if current is None or _RANK[verdict] > _RANK[current] else current


def _order(item: tuple[tuple[str, str], list[str]]) -> tuple[int, list[tuple[str, int]]]:
    """Frameworks in file order; controls in natural order (A.8.2 before A.8.15)."""
    framework, control = item[0]
    keys = list(frameworks())
    natural = [(text, int(number or 0)) for text, number in re.findall(r"(\D*)(\d*)", control)]
    return keys.index(framework) if framework in keys else len(keys), natural
