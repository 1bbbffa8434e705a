"""Waivers: accepted risks, each with a justification, an approver, a ticket and an expiry.

A waived result keeps its status (an auditor sees what was accepted, not a disguised pass); it is
marked waived and no longer counts toward --fail-on. An expired waiver stops applying and is
listed as expired; a waiver that matches no open finding is listed as stale, so the file does
not silently accumulate dead exceptions.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import Enum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from auditor.errors import InputError
from auditor.results import FINDING_STATUSES, Result

_FIELDS = {"check": "a check id such as \"CAJ-003\"",
           "resource": "a job resource id, or a pattern with * such as "
                       "\"/subscriptions/*/resourceGroups/rg-legacy/*\"",
           "justification": "why the risk is accepted",
           "approver": "who accepted it",
           "ticket": "the change or risk ticket",
           "expires": "a date such as 2027-03-31"}


class WaiverState(Enum):
    APPLIED = "applied"
    EXPIRED = "expired"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Waiver:
    check_id: str
    resource: str
    justification: str
    approver: str
    ticket: str
    expires: date
    source: str  # file:line, for the report

    def matches(self, result: Result) -> bool:
        return result.check.id == self.check_id and fnmatchcase(
            result.job.id.lower(), self.resource.lower())

    def to_dict(self) -> dict[str, str]:
        return {"check_id": self.check_id, "resource": self.resource,
                "justification": self.justification, "approver": self.approver,
                "ticket": self.ticket, "expires": self.expires.isoformat(),
                "source": self.source}


@dataclass(frozen=True, slots=True)
class WaiverReview:
    waiver: Waiver
    state: WaiverState
    matched: int  # open findings it matched


def load_waivers(path: Path, known_checks: Collection[str]) -> tuple[Waiver, ...]:
    """Read and validate a waivers file; any mistake is one error naming file, line and fix."""
    from auditor.textfile import read_text

    text = read_text(path, "waivers file")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(str(path), f"invalid TOML: {e}", "fix the syntax at that place") from e
    extra = set(document) - {"waiver"}
    if extra:
        raise InputError(str(path), f"unknown table '{sorted(extra)[0]}'",
                         "write each waiver as a [[waiver]] table")
    entries = document.get("waiver", [])
    if not isinstance(entries, list):
        raise InputError(str(path), "'waiver' must be an array of tables",
                         "write each waiver as a [[waiver]] table")
    lines = [n for n, line in enumerate(text.splitlines(), start=1)
             if re.match(r"\s*\[\[\s*waiver\s*\]\]", line)]
    return tuple(_waiver(entry, f"{path}:{lines[i] if i < len(lines) else 1}", known_checks)
                 for i, entry in enumerate(entries))


def _waiver(entry: Any, where: str, known_checks: Collection[str]) -> Waiver:
    if not isinstance(entry, dict):
        raise InputError(where, "a waiver must be a table", "write it as [[waiver]]")
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise InputError(where, f"unknown key '{unknown[0]}' in waiver",
                         f"known keys: {', '.join(_FIELDS)}")
    for key, form in _FIELDS.items():
        value = entry.get(key)
        if key != "expires" and (not isinstance(value, str) or not value.strip()):
            raise InputError(where, f"waiver key '{key}' is missing or empty", f"set it to {form}")
    if entry["check"] not in known_checks:
        raise InputError(where, f"waiver names unknown check '{entry['check']}'",
                         "see `auditor checks` for the ids")
    return Waiver(entry["check"], entry["resource"].strip(), entry["justification"].strip(),
                  entry["approver"].strip(), entry["ticket"].strip(),
                  _expiry(entry.get("expires"), where), where)


def _expiry(value: Any, where: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InputError(where, f"waiver key 'expires' = {value!r} is not a date",
                     f"set it to {_FIELDS['expires']}")


def apply_waivers(
    results: Sequence[Result], waivers: Sequence[Waiver], as_of: datetime
) -> tuple[tuple[Result, ...], tuple[WaiverReview, ...]]:
    """Attach the first live waiver that matches each open finding; review every waiver."""
    today = as_of.date()
    matched = dict.fromkeys(range(len(waivers)), 0)
    applied: list[Result] = []
    for result in results:
        if result.status in FINDING_STATUSES:
            for index, waiver in enumerate(waivers):
                if waiver.matches(result):
                    matched[index] += 1
                    if waiver.expires >= today and result.waiver is None:
                        result = replace(result, waiver=waiver)
                    elif waiver.expires < today and result.expired_waiver is None:
                        result = replace(result, expired_waiver=waiver)
        applied.append(result)
    reviews = tuple(
        WaiverReview(w, WaiverState.EXPIRED if w.expires < today else
                     WaiverState.APPLIED if matched[i] else WaiverState.STALE, matched[i])
        for i, w in enumerate(waivers))
    return tuple(applied), reviews
