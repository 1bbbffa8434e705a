"""cost.csv (and cost.parquet when pyarrow is installed): estimated job cost in FOCUS columns.

One row per job, day and meter (vCPU and memory active usage), plus one credit row per
subscription and month for the free grant, following the FinOps Open Cost and Usage
Specification 1.x column names so FinOps tools can load it next to billing exports. The figures
are estimates from execution history, not invoiced amounts: `x_EstimationMethod` says how each
was derived, and the four cost columns carry the same estimate (no discounts are known here).
Custom columns start with `x_`, as FOCUS requires. Dates are UTC ISO 8601; period ends are
exclusive.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from auditor.cost import ALLOCATION, ExecutionCost, JobCost
from auditor.results import ScanReport
from reports import finops
from reports.atomic import replacing
from reports.csv_report import ENCODING, cell

CSV_NAME = "cost.csv"
PARQUET_BATCH_ROWS = 65_536
PARQUET_NAME = "cost.parquet"
SERVICE = {"ServiceName": "Azure Container Apps", "ServiceCategory": "Compute",
           "ServiceSubcategory": "Containers", "ProviderName": "Microsoft",
           "ServiceProviderName": "Microsoft", "HostProviderName": "Microsoft",
           "InvoiceIssuerName": "Microsoft", "PublisherName": "Microsoft"}
# Meter, unit, and the ExecutionCost fields holding its quantity and cost.
METERS = (("Standard vCPU Active Usage", "vCPU-Seconds", "vcpu_seconds", "vcpu_cost"),
          ("Standard Memory Active Usage", "GiB-Seconds", "gib_seconds", "gib_cost"))
COLUMNS = (
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingCurrency",
    "BillingAccountId", "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart",
    "ChargePeriodEnd", "ChargeCategory", "ChargeDescription", "ChargeFrequency",
    "ConsumedQuantity", "ConsumedUnit", "PricingQuantity", "PricingUnit", "ListUnitPrice",
    "ContractedUnitPrice", "PricingCategory", "ResourceId", "ResourceName", "ResourceType",
    "RegionId", "RegionName", "SubAccountId", "SkuMeter", *SERVICE, "Tags",
    "x_EstimationMethod", "x_ExecutionCount", "x_RatesSource", "x_ResourceGroup",
)
Row = dict[str, str | Decimal | datetime | int | None]
_POSITION = {column: index for index, column in enumerate(COLUMNS)}


def _money(value: float) -> Decimal:
    return Decimal(repr(round(value, 10)))


def _unit_price(value: float) -> Decimal:
    """Unit prices are tiny: keep 15 decimal places, so quantity x price gives the cost back
    and a published rate (0.000024) reads exactly as published."""
    return Decimal(repr(round(value, 15)))


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _month(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, 1, tzinfo=UTC)
    following = (start + timedelta(days=32)).replace(day=1)
    return start, following


def rows(report: ScanReport) -> Iterator[Row]:
    """FOCUS rows: usage per job, day and meter, then the free-grant credits."""
    for shared, own in _parts(report):
        yield {**shared, **own}


def _parts(report: ScanReport) -> Iterator[tuple[Row, Row]]:
    """Each row as what it shares with the other rows of its job (the same object for all of
    them) and what is its own; writers format the shared part once per job."""
    view = report.cost
    if view is None:
        return
    currency = report.settings.cost.currency
    for cost in finops.job_cost_rows(report):
        yield from _usage(cost, currency, view.rate_sources.get(cost.job.id.lower(), ""))
    for grant in finops.grants(report):
        month = date.fromisoformat(f"{grant.month}-01")
        start, end = _month(month)
        yield {}, {**dict.fromkeys(COLUMNS), **SERVICE,
               "BilledCost": _money(grant.credit), "EffectiveCost": _money(grant.credit),
               "ListCost": _money(grant.credit), "ContractedCost": _money(grant.credit),
               "BillingCurrency": currency, "BillingPeriodStart": start,
               "BillingPeriodEnd": end, "ChargePeriodStart": start, "ChargePeriodEnd": end,
               "ChargeCategory": "Credit", "ChargeFrequency": "Recurring",
               "ChargeDescription": "Monthly free grant of the Consumption plan "
                                    "(vCPU-seconds and GiB-seconds), estimated",
               "SubAccountId": grant.subscription_id, "x_EstimationMethod": "free-grant"}


def _usage(cost: JobCost, currency: str, rates: str) -> Iterator[tuple[Row, Row]]:
    job = cost.job
    by_day: dict[date, list[ExecutionCost]] = defaultdict(list)
    for execution in cost.executions:
        by_day[execution.day].append(execution)
    # What every row of the job shares, built once (a large estate has a million rows).
    shared: Row = {
        **dict.fromkeys(COLUMNS), **SERVICE,
        "BillingCurrency": currency, "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based",
        "PricingCategory": "Standard", "ResourceId": job.id, "ResourceName": job.name,
        "ResourceType": "Container Apps Job",
        "RegionId": (job.location or "").replace(" ", "").lower() or None,
        "RegionName": job.location, "SubAccountId": job.subscription_id,
        "Tags": json.dumps(dict(job.tags), sort_keys=True, ensure_ascii=False),
        "x_EstimationMethod": "allocation (dedicated workload profile)"
        if cost.method == ALLOCATION else "consumption meter from execution history",
        "x_RatesSource": rates, "x_ResourceGroup": job.resource_group,
    }
    for day, runs in sorted(by_day.items()):
        period_start, period_end = _month(day)
        charge_start, charge_end = _day_start(day), _day_start(day + timedelta(days=1))
        for meter, unit, quantity_field, cost_field in METERS:
            quantity = sum(getattr(e, quantity_field) for e in runs)
            billed = sum(getattr(e, cost_field) for e in runs)
            unit_price = billed / quantity if quantity else 0.0
            money, amount, price = _money(billed), _money(quantity), _unit_price(unit_price)
            yield shared, {
                "BilledCost": money, "EffectiveCost": money, "ListCost": money,
                "ContractedCost": money, "BillingPeriodStart": period_start,
                "BillingPeriodEnd": period_end, "ChargePeriodStart": charge_start,
                "ChargePeriodEnd": charge_end,
                "ChargeDescription": f"{meter} of job executions, estimated",
                "ConsumedQuantity": amount, "ConsumedUnit": unit,
                "PricingQuantity": amount, "PricingUnit": unit,
                "ListUnitPrice": price, "ContractedUnitPrice": price,
                "SkuMeter": meter, "x_ExecutionCount": len(runs),
            }


def write_focus(report: ScanReport, folder: Path) -> list[Path]:
    """cost.csv always (empty of rows when nothing was priced); cost.parquet with pyarrow.

    One pass over the rows feeds both files, the Parquet file in batches: a large estate has a
    million rows, too many to hold at once or to build twice.
    """
    path = folder / CSV_NAME
    written = [path]
    with ExitStack() as stack:
        temporary = stack.enter_context(replacing(path))
        out = stack.enter_context(temporary.open("w", encoding=ENCODING, newline=""))
        writer = csv.writer(out, dialect="excel", quoting=csv.QUOTE_MINIMAL,
                            lineterminator="\r\n")
        writer.writerow(COLUMNS)
        parquet = _parquet_writer(stack, folder / PARQUET_NAME)
        text = _csv_texts()
        batch: list[Row] = []
        shared_of: Row | None = None
        shared_cells: list[str] = []
        for shared, own in _parts(report):
            if shared is not shared_of:  # a new job: its shared cells are formatted once
                shared_of = shared
                shared_cells = [text(shared.get(c)) for c in COLUMNS]
            cells = shared_cells.copy()
            for column, value in own.items():
                cells[_POSITION[column]] = text(value)
            out.write(",".join(cells) + "\r\n")  # what `writer.writerow` writes, faster
            if parquet is not None:
                batch.append({**shared, **own})
                if len(batch) == PARQUET_BATCH_ROWS:
                    parquet(batch)
                    batch = []
        if parquet is not None:
            parquet(batch)
            written.append(folder / PARQUET_NAME)
    return written


def _csv_texts() -> Callable[[str | Decimal | datetime | int | None], str]:
    """Each value as a field of the CSV line, as the csv module's QUOTE_MINIMAL writes it
    (`_csv_cell`, quoted when it holds a comma, a quote or a line break), remembering strings and
    times: most repeat on every row. Numbers never need quotes."""
    seen: dict[str | datetime, str] = {}

    def text(value: str | Decimal | datetime | int | None) -> str:
        if isinstance(value, str | datetime):
            shown = seen.get(value)
            if shown is None:
                if len(seen) >= 200_000:
                    seen.clear()
                shown = seen[value] = _quoted(_csv_cell(value))
            return shown
        return _csv_cell(value)

    return text


def _quoted(field: str) -> str:
    if "," in field or '"' in field or "\r" in field or "\n" in field:
        return '"' + field.replace('"', '""') + '"'
    return field


def _csv_cell(value: str | Decimal | datetime | int | None) -> str:
    """Numbers as plain decimals (a negative credit is a number, not a formula); text as the
    findings CSV writes it, neutralised for spreadsheets."""
    return format(value, "f") if isinstance(value, Decimal) else cell(value)


def _parquet_writer(stack: ExitStack, path: Path) -> Callable[[list[Row]], None] | None:
    """What writes batches of rows into cost.parquet (closed with `stack`); None without
    pyarrow, an optional dependency."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    schema = _parquet_schema()
    temporary = stack.enter_context(replacing(path))
    writer = stack.enter_context(pq.ParquetWriter(temporary, schema))

    def write(batch: list[Row]) -> None:
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))

    return write


def _parquet_schema() -> Any:
    import pyarrow as pa

    money = pa.decimal128(28, 10)
    types = {c: pa.string() for c in COLUMNS}
    types.update({c: money for c in ("BilledCost", "EffectiveCost", "ListCost",
                                     "ContractedCost", "ConsumedQuantity", "PricingQuantity")})
    types.update({c: pa.decimal128(38, 20) for c in ("ListUnitPrice", "ContractedUnitPrice")})
    types.update({c: pa.timestamp("s", tz="UTC") for c in (
        "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")})
    types["x_ExecutionCount"] = pa.int64()
    return pa.schema([(c, types[c]) for c in COLUMNS])
