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
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from auditor.cost import ALLOCATION, ExecutionCost, JobCost
from auditor.results import ScanReport
from reports import finops
from reports.atomic import replacing
from reports.csv_report import ENCODING, cell

CSV_NAME = "cost.csv"
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
    view = report.cost
    if view is None:
        return
    currency = report.settings.cost.currency
    for cost in finops.job_cost_rows(report):
        yield from _usage(cost, currency, view.rate_sources.get(cost.job.id.lower(), ""))
    for grant in finops.grants(report):
        month = date.fromisoformat(f"{grant.month}-01")
        start, end = _month(month)
        yield {**dict.fromkeys(COLUMNS), **SERVICE,
               "BilledCost": _money(grant.credit), "EffectiveCost": _money(grant.credit),
               "ListCost": _money(grant.credit), "ContractedCost": _money(grant.credit),
               "BillingCurrency": currency, "BillingPeriodStart": start,
               "BillingPeriodEnd": end, "ChargePeriodStart": start, "ChargePeriodEnd": end,
               "ChargeCategory": "Credit", "ChargeFrequency": "Recurring",
               "ChargeDescription": "Monthly free grant of the Consumption plan "
                                    "(vCPU-seconds and GiB-seconds), estimated",
               "SubAccountId": grant.subscription_id, "x_EstimationMethod": "free-grant"}


def _usage(cost: JobCost, currency: str, rates: str) -> Iterator[Row]:
    job = cost.job
    by_day: dict[date, list[ExecutionCost]] = defaultdict(list)
    for execution in cost.executions:
        by_day[execution.day].append(execution)
    for day, runs in sorted(by_day.items()):
        period_start, period_end = _month(day)
        for meter, unit, quantity_field, cost_field in METERS:
            quantity = sum(getattr(e, quantity_field) for e in runs)
            billed = sum(getattr(e, cost_field) for e in runs)
            unit_price = billed / quantity if quantity else 0.0
            yield {
                **dict.fromkeys(COLUMNS), **SERVICE,
                "BilledCost": _money(billed), "EffectiveCost": _money(billed),
                "ListCost": _money(billed), "ContractedCost": _money(billed),
                "BillingCurrency": currency, "BillingPeriodStart": period_start,
                "BillingPeriodEnd": period_end, "ChargePeriodStart": _day_start(day),
                "ChargePeriodEnd": _day_start(day + timedelta(days=1)),
                "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based",
                "ChargeDescription": f"{meter} of job executions, estimated",
                "ConsumedQuantity": _money(quantity), "ConsumedUnit": unit,
                "PricingQuantity": _money(quantity), "PricingUnit": unit,
                "ListUnitPrice": _unit_price(unit_price),
                "ContractedUnitPrice": _unit_price(unit_price),
                "PricingCategory": "Standard", "ResourceId": job.id, "ResourceName": job.name,
                "ResourceType": "Container Apps Job",
                "RegionId": (job.location or "").replace(" ", "").lower() or None,
                "RegionName": job.location, "SubAccountId": job.subscription_id,
                "SkuMeter": meter, "Tags": json.dumps(dict(job.tags), sort_keys=True,
                                                      ensure_ascii=False),
                "x_EstimationMethod": "allocation (dedicated workload profile)"
                if cost.method == ALLOCATION else "consumption meter from execution history",
                "x_ExecutionCount": len(runs), "x_RatesSource": rates,
                "x_ResourceGroup": job.resource_group,
            }


def write_focus(report: ScanReport, folder: Path) -> list[Path]:
    """cost.csv always (empty of rows when nothing was priced); cost.parquet with pyarrow."""
    path = folder / CSV_NAME
    with replacing(path) as temporary, temporary.open("w", encoding=ENCODING, newline="") as out:
        writer = csv.writer(out, dialect="excel", quoting=csv.QUOTE_MINIMAL,
                            lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for row in rows(report):
            writer.writerow([_csv_cell(row[c]) for c in COLUMNS])
    written = [path]
    try:
        import pyarrow  # noqa: F401  (optional dependency)
    except ImportError:
        return written
    written.append(_write_parquet(report, folder / PARQUET_NAME))
    return written


def _csv_cell(value: str | Decimal | datetime | int | None) -> str:
    """Numbers as plain decimals (a negative credit is a number, not a formula); text as the
    findings CSV writes it, neutralised for spreadsheets."""
    return format(value, "f") if isinstance(value, Decimal) else cell(value)


def _write_parquet(report: ScanReport, path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    money = pa.decimal128(28, 10)
    types = {c: pa.string() for c in COLUMNS}
    types.update({c: money for c in ("BilledCost", "EffectiveCost", "ListCost",
                                     "ContractedCost", "ConsumedQuantity", "PricingQuantity")})
    types.update({c: pa.decimal128(38, 20) for c in ("ListUnitPrice", "ContractedUnitPrice")})
    types.update({c: pa.timestamp("s", tz="UTC") for c in (
        "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")})
    types["x_ExecutionCount"] = pa.int64()
    schema = pa.schema([(c, types[c]) for c in COLUMNS])
    table = pa.Table.from_pylist(list(rows(report)), schema=schema)
    with replacing(path) as temporary:
        pq.write_table(table, temporary)
    return path
