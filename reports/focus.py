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

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import accumulate, chain
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from auditor.cost import ALLOCATION, JobCost
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
_Text = Callable[[str | Decimal | datetime | int | None], str]  # a value as a CSV field
# A job's executions on one day, summed: the day, the number of executions, and per meter (in
# `METERS` order) the quantity then the cost. A plain tuple: a large estate has half a million.
_Day = tuple[date, int, tuple[float, ...]]
_MONEY_PLACES, _PRICE_PLACES = 10, 15
_DAY = attrgetter("day")
# What a day sums per execution: per meter the quantity, then the cost.
_FIGURES = [attrgetter(field) for _, _, *fields in METERS for field in fields]


def _money(value: float) -> Decimal:
    return Decimal(repr(round(value, _MONEY_PLACES)))


def _unit_price(value: float) -> Decimal:
    """Unit prices are tiny: keep 15 decimal places, so quantity x price gives the cost back
    and a published rate (0.000024) reads exactly as published."""
    return Decimal(repr(round(value, _PRICE_PLACES)))


def _decimal_text(value: float, places: int) -> str:
    """`format(_money(value), "f")` (or of `_unit_price`) without building the Decimal: the repr
    of a float already reads so unless it has an exponent or is inf or nan."""
    shown = repr(round(value, places))
    return _expanded(shown) if "e" in shown or "n" in shown else shown


@lru_cache(maxsize=4096)
def _expanded(shown: str) -> str:
    """A float's repr in plain decimal notation; cached, as unit prices such as 2.4e-05 repeat."""
    return format(Decimal(shown), "f")


def _rate(quantity: float, cost: float) -> float:
    return cost / quantity if quantity else 0.0


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _month(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, 1, tzinfo=UTC)
    following = (start + timedelta(days=32)).replace(day=1)
    return start, following


def _periods(day: date) -> tuple[datetime, datetime, datetime, datetime]:
    """Billing period start and end (the month), then charge period start and end (the day)."""
    return *_month(day), _day_start(day), _day_start(day + timedelta(days=1))


def _meter_cells(meter: int) -> Row:
    name, unit, _, _ = METERS[meter]
    return {"ChargeDescription": f"{name} of job executions, estimated",
            "ConsumedUnit": unit, "PricingUnit": unit, "SkuMeter": name}


def rows(report: ScanReport) -> Iterator[Row]:
    """FOCUS rows: usage per job, day and meter, then the free-grant credits."""
    for shared, days in _jobs(report):
        for day, runs, sums in days:
            start, end, charge_start, charge_end = _periods(day)
            for meter in range(len(METERS)):
                quantity, cost = sums[2 * meter], sums[2 * meter + 1]
                money, amount = _money(cost), _money(quantity)
                price = _unit_price(_rate(quantity, cost))
                yield {**shared, **_meter_cells(meter),
                       "BilledCost": money, "EffectiveCost": money, "ListCost": money,
                       "ContractedCost": money, "BillingPeriodStart": start,
                       "BillingPeriodEnd": end, "ChargePeriodStart": charge_start,
                       "ChargePeriodEnd": charge_end, "ConsumedQuantity": amount,
                       "PricingQuantity": amount, "ListUnitPrice": price,
                       "ContractedUnitPrice": price, "x_ExecutionCount": runs}
    yield from _credits(report)


def _jobs(report: ScanReport) -> Iterator[tuple[Row, list[_Day]]]:
    """Per priced job, what all its rows share (the per-row columns None) and its days."""
    view = report.cost
    if view is None:
        return
    currency = report.settings.cost.currency
    for cost in finops.job_cost_rows(report):
        rates = view.rate_sources.get(cost.job.id.lower(), "")
        yield _shared(cost, currency, rates), _days(cost)


# What every usage row says whatever its job (the per-row columns None).
_USAGE = {**dict.fromkeys(COLUMNS), **SERVICE, "ChargeCategory": "Usage",
          "ChargeFrequency": "Usage-Based", "PricingCategory": "Standard",
          "ResourceType": "Container Apps Job"}


def _shared(cost: JobCost, currency: str, rates: str) -> Row:
    job = cost.job
    return {
        **_USAGE, "BillingCurrency": currency, "ResourceId": job.id, "ResourceName": job.name,
        "RegionId": (job.location or "").replace(" ", "").lower() or None,
        "RegionName": job.location, "SubAccountId": job.subscription_id,
        "Tags": json.dumps(dict(job.tags), sort_keys=True, ensure_ascii=False),
        "x_EstimationMethod": "allocation (dedicated workload profile)"
        if cost.method == ALLOCATION else "consumption meter from execution history",
        "x_RatesSource": rates, "x_ResourceGroup": job.resource_group,
    }


def _days(cost: JobCost) -> list[_Day]:
    """The job's days in order, each figure summed with `sum` in execution order (the last digit
    of a float sum depends on both; the sort is stable). Column by column, so that the loops run
    in C: a large estate has half a million days, most with one execution."""
    executions = sorted(cost.executions, key=_DAY)
    runs = Counter(map(_DAY, executions))  # in day order: each day's number of executions
    if len(runs) == len(executions):  # one execution a day: nothing to slice
        sums = [map(sum, zip(map(figure, executions))) for figure in _FIGURES]
    else:
        ends = list(accumulate(runs.values()))
        spans = list(map(slice, [0, *ends[:-1]], ends))
        sums = [map(sum, map(list(map(figure, executions)).__getitem__, spans))
                for figure in _FIGURES]
    return list(zip(runs, runs.values(), zip(*sums, strict=True), strict=True))


def _credits(report: ScanReport) -> Iterator[Row]:
    currency = report.settings.cost.currency
    for grant in finops.grants(report):
        start, end = _month(date.fromisoformat(f"{grant.month}-01"))
        credit = _money(grant.credit)
        yield {**dict.fromkeys(COLUMNS), **SERVICE,
               "BilledCost": credit, "EffectiveCost": credit, "ListCost": credit,
               "ContractedCost": credit, "BillingCurrency": currency,
               "BillingPeriodStart": start, "BillingPeriodEnd": end,
               "ChargePeriodStart": start, "ChargePeriodEnd": end,
               "ChargeCategory": "Credit", "ChargeFrequency": "Recurring",
               "ChargeDescription": "Monthly free grant of the Consumption plan "
                                    "(vCPU-seconds and GiB-seconds), estimated",
               "SubAccountId": grant.subscription_id, "x_EstimationMethod": "free-grant"}


def write_focus(report: ScanReport, folder: Path) -> list[Path]:
    """cost.csv always (empty of rows when nothing was priced); cost.parquet with pyarrow.

    The lines are `rows` as the csv module writes them, but a large estate has a million rows:
    the cells a job's rows share are formatted once per job, figures that repeat across days
    once, and a line is those texts joined. One pass feeds both files (the Parquet file in
    batches) without holding the rows.
    """
    path = folder / CSV_NAME
    written = [path]
    with ExitStack() as stack:
        temporary = stack.enter_context(replacing(path))
        out = stack.enter_context(temporary.open("w", encoding=ENCODING, newline=""))
        out.write(",".join(COLUMNS) + "\r\n")  # plain names: nothing to quote
        parquet = _parquet_batches(stack, folder / PARQUET_NAME)
        text = _csv_texts()
        meters = [{c: text(v) for c, v in _meter_cells(m).items()} for m in range(len(METERS))]
        figures_of = _figure_texts(text)
        times: dict[date, str] = {}
        for shared, days in _jobs(report):
            cells = {c: text(shared[c]) for c in _OTHER_COLUMNS}
            arounds = [_around({**cells, **meter}) for meter in meters]
            pieces: list[str] = []
            figures = []
            for day, runs, sums in days:
                moments = times.get(day)
                if moments is None:
                    moments = times[day] = ",".join(map(text, _periods(day)))
                count = str(runs)  # as `cell` writes an int
                figures.append(figures_of(sums))
                for a, (_, _, _, costs, usage) in zip(arounds, figures[-1], strict=True):
                    pieces += a[0], costs, a[1], moments, a[2], usage, a[3], count, a[4]
            out.write("".join(pieces))
            if parquet is not None:
                parquet.add(shared, days, figures)
        credits = list(_credits(report))
        for credit in credits:
            out.write(",".join(text(credit[c]) for c in COLUMNS) + "\r\n")
        if parquet is not None:
            parquet.finish(credits)
            written.append(folder / PARQUET_NAME)
    return written


# A usage row's own cells, in runs of adjacent columns (a meter's units are the same on all its
# rows but sit among the figures): its costs, its day's times, its quantities and unit prices,
# and its execution count. The CSV writer joins each run's text into the rest (`_around`).
_RUNS = (("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"),
         ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"),
         ("ConsumedQuantity", "ConsumedUnit", "PricingQuantity", "PricingUnit", "ListUnitPrice",
          "ContractedUnitPrice"),
         ("x_ExecutionCount",))


def _others() -> tuple[tuple[str, ...], ...]:
    """The other columns: before the first of `_RUNS`, between each two, after the last."""
    groups: list[list[str]] = [[]]
    for column in COLUMNS:
        if any(column == run[0] for run in _RUNS):
            groups.append([])
        elif not any(column in run for run in _RUNS):
            groups[-1].append(column)
    return tuple(map(tuple, groups))


_OTHERS = _others()
_OTHER_COLUMNS = tuple(chain.from_iterable(_OTHERS))


def _around(cells: dict[str, str]) -> tuple[str, ...]:
    """The text of a CSV line with these `cells` around its `_RUNS`: before the first run,
    between each two, and after the last (line end included)."""
    first, *middle, last = ([cells[c] for c in group] for group in _OTHERS)
    return (",".join([*first, ""]), *(",".join(["", *texts, ""]) for texts in middle),
            ",".join(["", *last]) + "\r\n")


# Per meter: money, quantity and unit price as `_money` and `_unit_price` print them, then the
# texts of the cost run and of the usage run (`_RUNS`) of its CSV line.
_Figures = tuple[tuple[str, str, str, str, str], ...]


def _figure_texts(text: _Text) -> Callable[[tuple[float, ...]], _Figures]:
    """A day's sums as text, remembered by sums: a large estate's days repeat the same figures,
    and each costs a round and a repr."""
    units = [(text(cells["ConsumedUnit"]), text(cells["PricingUnit"]))
             for cells in map(_meter_cells, range(len(METERS)))]
    seen: dict[tuple[float, ...], _Figures] = {}
    floats = (float,) * len(_FIGURES)

    def texts(sums: tuple[float, ...]) -> _Figures:
        # Only nonzero floats are remembered: 0.0 and -0.0 are one key but print differently,
        # as are 5 and 5.0; equal nonzero floats are the same number.
        remembered = 0.0 not in sums and all(map(isinstance, sums, floats))
        shown = seen.get(sums) if remembered else None
        if shown is None:
            shown = ()
            for (consumed, pricing), quantity, cost in zip(units, sums[::2], sums[1::2],
                                                          strict=True):
                money = _decimal_text(cost, _MONEY_PLACES)
                amount = _decimal_text(quantity, _MONEY_PLACES)
                price = _decimal_text(_rate(quantity, cost), _PRICE_PLACES)
                shown += ((money, amount, price, ",".join((money,) * 4),
                           ",".join((amount, consumed, amount, pricing, price, price))),)
            if remembered:
                if len(seen) >= 32_768:  # about 1 kB each
                    seen.clear()
                seen[sums] = shown
        return shown

    return texts


def _csv_texts() -> _Text:
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


class _ParquetBatches:
    """Usage rows gathered per day and written to cost.parquet a batch at a time.

    Building Arrow arrays from a million row dicts and Decimals took longer than the rest of the
    export. Instead each job's shared values are kept once and spread over its rows, as are a
    day's values over its meters' rows, and Arrow parses the decimals from their CSV text
    (exact: the same digits).
    """

    def __init__(self, writer: Any, schema: Any) -> None:
        self._writer, self._schema = writer, schema
        self._start()

    def _start(self) -> None:
        self._jobs: list[Row] = []  # shared values of the batch's jobs
        self._job: list[int] = []  # per day: the job (its number in the batch), date, runs
        self._dates: list[date] = []
        self._runs: list[int] = []
        self._figures: list[_Figures] = []  # per day

    def add(self, shared: Row, days: list[_Day], figures: list[_Figures]) -> None:
        """A job's days, with their figures as written to the CSV."""
        self._job.extend([len(self._jobs)] * len(days))
        self._jobs.append(shared)
        self._dates.extend(map(itemgetter(0), days))
        self._runs.extend(map(itemgetter(1), days))
        self._figures.extend(figures)
        if len(self._figures) * len(METERS) >= PARQUET_BATCH_ROWS:
            self._flush()

    def finish(self, credits: list[Row]) -> None:
        """The last usage rows, then the credits (few: one per subscription and month)."""
        self._flush()
        import pyarrow as pa

        if credits:
            self._writer.write_table(pa.Table.from_pylist(credits, schema=self._schema))

    def _flush(self) -> None:
        """The gathered rows as one table. What is kept per job, day, date or meter is spread
        over the rows with `take`, or `repeat` when one value is all there is (most columns hold
        the same text on every row)."""
        if not self._figures:
            return
        import pyarrow as pa

        def spread(column: str, values: list[Any], of_row: Any) -> Any:
            kind = self._schema.field(column).type
            if len(set(values)) == 1:
                return pa.repeat(pa.scalar(values[0], kind), len(of_row))
            return pa.array(values, kind).take(of_row)

        meters, days = len(METERS), len(self._figures)
        day = pa.array(sorted(list(range(days)) * meters))  # each row's day: 0, 0, 1, 1, ...
        meter = pa.array(list(range(meters)) * days)
        dates = pa.array(self._dates, pa.date32()).dictionary_encode()
        date_of_row = dates.indices.take(day)
        times = [_periods(d) for d in dates.dictionary.to_pylist()]
        arrays = {"x_ExecutionCount": spread("x_ExecutionCount", self._runs, day)}
        for index, column in enumerate(_RUNS[1]):
            arrays[column] = spread(column, [moments[index] for moments in times],
                                    date_of_row)
        # Each row's meter's figures, parsed from their text: exactly the CSV's decimals.
        rows = list(chain.from_iterable(self._figures))
        for field, columns in enumerate((_RUNS[0], ("ConsumedQuantity", "PricingQuantity"),
                                         ("ListUnitPrice", "ContractedUnitPrice"))):
            texts = pa.array(list(map(itemgetter(field), rows)), pa.string())
            arrays.update(dict.fromkeys(columns, texts.cast(self._schema.field(columns[0]).type)))
        cells = [_meter_cells(m) for m in range(meters)]
        for column in cells[0]:
            arrays[column] = spread(column, [c[column] for c in cells], meter)
        job = pa.array(self._job).take(day)
        for column in COLUMNS:
            if column not in arrays:
                arrays[column] = spread(column, [shared[column] for shared in self._jobs], job)
        self._writer.write_table(pa.Table.from_arrays([arrays[c] for c in COLUMNS],
                                                      schema=self._schema))
        self._start()


def _parquet_batches(stack: ExitStack, path: Path) -> _ParquetBatches | None:
    """What writes cost.parquet (closed with `stack`); None without pyarrow, an optional
    dependency."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return None
    schema = _parquet_schema()
    temporary = stack.enter_context(replacing(path))
    return _ParquetBatches(stack.enter_context(pq.ParquetWriter(temporary, schema)), schema)


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
