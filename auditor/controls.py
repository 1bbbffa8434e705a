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
    """One row per control that at least one active check maps to, in catalogue order.

    A job passes a control when it passes every check mapped to it that was decided for the job
    (pass or fail); it fails when any fails, unless waived.
    """
    mapped: dict[tuple[str, str], list[str]] = defaultdict(list)
    for item in checks:
        for framework, ids in item.controls.items():
            for control in ids:
                mapped[(framework, control)].append(item.id)
    # Per check, every job's verdict as a rank in a list by job position, so that a control's
    # verdicts are the element-wise worst of its checks' lists (a large estate has millions).
    positions: dict[str, int] = {}
    decided: list[tuple[str, int, int]] = []
    for r in results:
        if r.status is Status.PASS or r.status is Status.FAIL:
            rank = _PASS if r.status is Status.PASS else _WAIVED if r.waived else _FAIL
            decided.append((r.check.id, positions.setdefault(r.job.id, len(positions)), rank))
    ranks: dict[str, list[int]] = {}
    for check_id, position, rank in decided:
        if check_id not in ranks:
            ranks[check_id] = [_UNDECIDED] * len(positions)
        ranks[check_id][position] = rank
    catalogue = frameworks()
    rows = []
    for (framework, control), check_ids in sorted(mapped.items(), key=_order):
        lists = [ranks[c] for c in check_ids if c in ranks]
        counts = Counter(map(max, *lists) if len(lists) > 1 else lists[0] if lists else ())
        title = catalogue[framework].controls[control] if framework in catalogue else ""
        rows.append(ControlRow(framework, control, title, tuple(check_ids),
                               sum(counts.values()) - counts[_UNDECIDED], counts[_PASS],
                               counts[_FAIL], counts[_WAIVED]))
    return rows


_UNDECIDED, _PASS, _WAIVED, _FAIL = -1, 0, 1, 2  # ranks: the worse verdict is the larger


def _order(item: tuple[tuple[str, str], list[str]]) -> tuple[int, list[tuple[str, int]]]:
    """Frameworks in file order; controls in natural order (A.8.2 before A.8.15)."""
    framework, control = item[0]
    keys = list(frameworks())
    natural = [(text, int(number or 0)) for text, number in re.findall(r"(\D*)(\d*)", control)]
    return keys.index(framework) if framework in keys else len(keys), natural
