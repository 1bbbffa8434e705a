"""Actual cost from an Azure Cost Management export, to reconcile against the estimates.

Accepts the export CSVs people have: actual or amortized cost details (`ResourceId`,
`CostInBillingCurrency`, `Date`, `BillingCurrency`), the older usage details (`InstanceId`,
`PreTaxCost`, `UsageDateTime`, `Currency`) and FOCUS exports (`ResourceId`, `EffectiveCost` or
`BilledCost`, `ChargePeriodStart`, `BillingCurrency`). Column names compare case-insensitively.
Only rows of Container Apps jobs count; the estimate is reconciled per job.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from auditor.errors import InputError

# Candidate columns, most specific first (amortized or effective cost before billed cost).
RESOURCE = ("resourceid", "instanceid", "instancename")
COST = ("effectivecost", "costinbillingcurrency", "billedcost", "pretaxcost", "cost")
DAY = ("chargeperiodstart", "date", "usagedatetime", "usagedate")
CURRENCY = ("billingcurrency", "billingcurrencycode", "currency")
JOB_MARKER = "/providers/microsoft.app/jobs/"


@dataclass(frozen=True, slots=True)
class ActualCosts:
    by_job: dict[str, Decimal]  # lower-cased job id -> cost in the window
    currency: str | None
    files: tuple[str, ...]
    rows_used: int


def load_actual_costs(paths: Iterable[Path], since: datetime, until: datetime) -> ActualCosts:
    by_job: dict[str, Decimal] = defaultdict(Decimal)
    currencies: set[str] = set()
    used = 0
    names = []
    for path in paths:
        names.append(str(path))
        for resource, cost, day, currency in _rows(path):
            if JOB_MARKER not in resource or not since.date() <= day.date() < until.date():
                continue
            by_job[resource.rstrip("/")] += cost
            if currency:
                currencies.add(currency)
            used += 1
    if len(currencies) > 1:
        raise InputError(", ".join(names), f"cost exports mix currencies {sorted(currencies)}",
                         "export in one billing currency")
    return ActualCosts(dict(by_job), next(iter(currencies), None), tuple(names), used)


def _rows(path: Path) -> Iterable[tuple[str, Decimal, datetime, str | None]]:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as e:
        raise InputError(str(path), f"cannot read the cost export ({e.strerror})",
                         "pass an existing CSV file") from e
    with handle:
        reader = csv.DictReader(handle)
        header = {name.strip().lower(): name for name in reader.fieldnames or ()}
        resource, cost, day = (_pick(header, c, path, what) for c, what in (
            (RESOURCE, "resource id"), (COST, "cost"), (DAY, "date")))
        currency = next((header[c] for c in CURRENCY if c in header), None)
        for line, row in enumerate(reader, start=2):
            yield (str(row[resource] or "").strip().lower(),
                   _decimal(row[cost], path, line, cost), _date(row[day], path, line, day),
                   (row[currency] or "").strip().upper() or None if currency else None)


def _pick(header: dict[str, str], candidates: tuple[str, ...], path: Path, what: str) -> str:
    for name in candidates:
        if name in header:
            return header[name]
    raise InputError(str(path), f"no {what} column in the cost export",
                     f"expected one of: {', '.join(candidates)} (Cost Management or FOCUS "
                     "export)")


def _decimal(text: str | None, path: Path, line: int, column: str) -> Decimal:
    try:
        return Decimal((text or "0").strip() or "0")
    except InvalidOperation as e:
        raise InputError(f"{path}:{line}", f"column {column} = {text!r} is not a number",
                         "re-export the cost details") from e


def _date(text: str | None, path: Path, line: int, column: str) -> datetime:
    value = (text or "").strip()
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        pass
    try:
        return datetime.strptime(value, "%m/%d/%Y")  # older Cost Management exports
    except ValueError:
        pass
    raise InputError(f"{path}:{line}", f"column {column} = {value!r} is not a date",
                     "use ISO 8601 (2026-11-01) or MM/DD/YYYY as Cost Management exports")
