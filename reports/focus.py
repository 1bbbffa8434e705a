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
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import accumulate, chain, repeat
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from auditor.cost import ALLOCATION, JobCost
from reports import finops
from reports.atomic import replacing
from reports.csv_report import ENCODING, cell
from reports.finops import Priced

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
_MONEY_PLACES, _PRICE_PLACES = 10, 15
_DAY = attrgetter("day")
# An execution's figures, which a day sums: per meter the quantity, then the cost.
_FIGURES = attrgetter(*(field for _, _, *fields in METERS for field in fields))


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


class _Days(NamedTuple):
    """A job's executions summed per day, in day order: the days, each one's number of
    executions, and its sums, per meter (in `METERS` order) the quantity then the cost. Columns,
    not a tuple per day: a large estate has half a million days, and the writer takes each whole.
    """

    dates: list[date]
    runs: list[int]
    sums: list[tuple[float, ...]]
    plain: bool  # whether every sum is a nonzero float (`_plain`)


def rows(report: Priced) -> Iterator[Row]:
    """FOCUS rows: usage per job, day and meter, then the free-grant credits."""
    for shared, days in _jobs(report):
        for day, runs, sums in zip(days.dates, days.runs, days.sums, strict=True):
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


def _jobs(report: Priced) -> Iterator[tuple[Row, _Days]]:
    """Per priced job with executions (the others have no rows), what all its rows share (the
    per-row columns None) and its days."""
    view = report.cost
    if view is None:
        return
    currency = report.settings.cost.currency
    for cost in filter(attrgetter("executions"), finops.job_cost_rows(report)):
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
        "Tags": _tags(frozenset(job.tags.items())),
        "x_EstimationMethod": "allocation (dedicated workload profile)"
        if cost.method == ALLOCATION else "consumption meter from execution history",
        "x_RatesSource": rates, "x_ResourceGroup": job.resource_group,
    }


@lru_cache(maxsize=4096)
def _tags(tags: frozenset[tuple[str, str]]) -> str:
    """Tags as JSON, remembered: jobs share tags, and `json.dumps` with options is slow to start.
    """
    return json.dumps(dict(tags), sort_keys=True, ensure_ascii=False)


def _days(cost: JobCost) -> _Days:
    """The job's days in order, each figure summed with `sum` in execution order (the last digit
    of a float sum depends on both; the sort is stable). The loops run in C: a large estate has
    half a million days, most with one execution."""
    executions = sorted(cost.executions, key=_DAY)
    dates = list(map(_DAY, executions))
    figures = list(map(_FIGURES, executions))  # per execution, in the order of a day's sums
    days = list(dict.fromkeys(dates))
    if len(days) == len(executions) and _plain(figures):
        # One nonzero float a day: `sum` would give it back (it turns -0.0 into 0.0, keeps 5 an
        # int).
        return _Days(days, [1] * len(days), figures, True)
    runs = list(Counter(dates).values())  # in day order
    sums = _sums(figures, runs)
    return _Days(days, runs, sums, _plain(sums))


def _sums(figures: list[tuple[float, ...]], runs: list[int]) -> list[tuple[float, ...]]:
    """Per day, the `figures` of its `runs` executions (consecutive) summed, column by column."""
    ends = list(accumulate(runs))
    spans = list(map(slice, [0, *ends[:-1]], ends))
    columns = zip(*figures, strict=True)
    return list(zip(*(map(sum, map(column.__getitem__, spans)) for column in columns),
                    strict=True))


def _plain(figures: list[tuple[float, ...]]) -> bool:
    """Whether all these figures are nonzero floats: equal ones print the same, unlike 0.0 and
    -0.0, or 5 and 5.0."""
    return all(map(all, figures)) and set(map(type, chain.from_iterable(figures))) <= {float}


def _credits(report: Priced) -> Iterator[Row]:
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


def write_focus(report: Priced, folder: Path) -> list[Path]:
    """cost.csv always (empty of rows when nothing was priced); cost.parquet with pyarrow.

    The lines are `rows` as the csv module writes them, but a large estate has a million rows:
    the cells a job's rows share are formatted once per job, figures that repeat across days
    once, and a job's lines are those texts joined at once (`_UsageLines`). One pass feeds both
    files (the Parquet file in batches) without holding the rows.
    """
    path = folder / CSV_NAME
    written = [path]
    with ExitStack() as stack:
        temporary = stack.enter_context(replacing(path))
        out = stack.enter_context(temporary.open("w", encoding=ENCODING, newline=""))
        out.write(",".join(COLUMNS) + "\r\n")  # plain names: nothing to quote
        parquet = _parquet_batches(stack, folder / PARQUET_NAME)
        text = _csv_texts()
        lines, figure_texts = _UsageLines(text), _FigureTexts(text)
        for shared, days in _jobs(report):
            figures = figure_texts.days(days)
            out.write(lines(shared, days, figures))
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
_OTHER_ENDS = list(accumulate(map(len, _OTHERS)))
_OTHER_SPANS = tuple(map(slice, [0, *_OTHER_ENDS[:-1]], _OTHER_ENDS))  # of each, in the columns


def _around(cells: list[str]) -> tuple[str, ...]:
    """The text of a CSV line with these cells of `_OTHER_COLUMNS` around its `_RUNS`: before the
    first run, between each two, and after the last (line end included)."""
    first, *middle, last = (cells[span] for span in _OTHER_SPANS)
    return (",".join([*first, ""]), *(",".join(["", *texts, ""]) for texts in middle),
            ",".join(["", *last]) + "\r\n")


# A day's figures as text (`_FigureTexts`): per meter (in `METERS` order) the texts of the cost
# run and of the usage run (`_RUNS`) of its CSV line; then per Parquet figure (`_PARQUET_FIGURES`)
# its text for each meter in turn. Flat, so that `itemgetter` takes a field from each day.
_DayFigures = tuple[str, ...]
# The Parquet file's figures, each parsed from its text, with its columns: money, quantity and
# unit price as `_money` and `_unit_price` print them.
_PARQUET_FIGURES = (_RUNS[0], ("ConsumedQuantity", "PricingQuantity"),
                    ("ListUnitPrice", "ContractedUnitPrice"))


def _csv_runs(meter: int) -> tuple[itemgetter[Any], itemgetter[Any]]:
    """Where a `_DayFigures` holds this meter's cost run and usage run."""
    return itemgetter(2 * meter), itemgetter(2 * meter + 1)


def _parquet_figure(figure: int) -> itemgetter[Any]:
    """Where a `_DayFigures` holds this Parquet figure, for each meter in turn."""
    start = (2 + figure) * len(METERS)
    return itemgetter(slice(start, start + len(METERS)))


_Key = TypeVar("_Key")
_Value = TypeVar("_Value")


class _Memo(dict[_Key, _Value]):
    """Values made by `make` once per key; looked up with `map(memo.__getitem__, keys)`, so that
    a key seen before costs no Python call."""

    def __init__(self, make: Callable[[_Key], _Value], limit: int) -> None:
        super().__init__()
        self._make, self._limit = make, limit

    def __missing__(self, key: _Key) -> _Value:
        if len(self) >= self._limit:
            self.clear()
        value = self[key] = self._make(key)
        return value


class _FigureTexts:
    """Days' sums as the texts of their rows' figures, remembered by sums: a large estate's days
    repeat the same figures, and each costs a round and a repr."""

    def __init__(self, text: _Text) -> None:
        self._units = [(text(cells["ConsumedUnit"]), text(cells["PricingUnit"]))
                       for cells in map(_meter_cells, range(len(METERS)))]
        self._seen = _Memo(self._texts, 32_768)  # about 1 kB each

    def days(self, days: _Days) -> list[_DayFigures]:
        """The figures of a job's days. Only plain sums are remembered (equal, they print the
        same)."""
        return list(map(self._seen.__getitem__ if days.plain else self._texts, days.sums))

    def _texts(self, sums: tuple[float, ...]) -> _DayFigures:
        """A day's figures, in the `_DayFigures` layout."""
        runs: list[str] = []
        figures = []
        for (consumed, pricing), quantity, cost in zip(self._units, sums[::2], sums[1::2],
                                                      strict=True):
            money = _decimal_text(cost, _MONEY_PLACES)
            amount = _decimal_text(quantity, _MONEY_PLACES)
            price = _decimal_text(_rate(quantity, cost), _PRICE_PLACES)
            runs += (f"{money},{money},{money},{money}",
                     f"{amount},{consumed},{amount},{pricing},{price},{price}")
            figures.append((money, amount, price))
        return (*runs, *chain.from_iterable(zip(*figures, strict=True)))


_STRINGS = {str, type(None)}


class _UsageLines:
    """A job's usage rows as CSV lines: the job's cells (with each meter's) formatted once,
    around each row's runs (`_RUNS`), all joined by one `str.join` that interleaves them in C.
    """

    def __init__(self, text: _Text) -> None:
        self._text = text
        self._strings: _Memo[str | None, str] = _Memo(text, 200_000)
        # Per meter, its own cells among `_OTHER_COLUMNS`: where, and their text.
        self._meters = [[(_OTHER_COLUMNS.index(c), text(v)) for c, v in cells.items()
                         if c in _OTHER_COLUMNS]
                        for cells in map(_meter_cells, range(len(METERS)))]
        # A day's four times: a scan covers some months of days.
        self._times: _Memo[date, str] = _Memo(
            lambda day: ",".join(map(text, _periods(day))), 100_000)

    def __call__(self, shared: Row, days: _Days, figures: list[_DayFigures]) -> str:
        values = list(map(shared.__getitem__, _OTHER_COLUMNS))
        # Equal strings print the same: theirs are looked up in C, as most repeat on every job.
        strings = set(map(type, values)) <= _STRINGS
        texts: Callable[[Any], str] = self._strings.__getitem__ if strings else self._text
        job = list(map(texts, values))
        times = list(map(self._times.__getitem__, days.dates))
        counts = list(map(str, days.runs))  # as `cell` writes an int
        day: list[Iterable[str]] = []  # the texts of a day's lines, each over the days
        for meter, (costs, usage) in zip(self._meters, map(_csv_runs, range(len(METERS))),
                                         strict=True):
            cells = job.copy()
            for index, shown in meter:
                cells[index] = shown
            before, after_costs, after_times, after_usage, end = map(repeat, _around(cells))
            day += (before, map(costs, figures), after_costs, times, after_times,
                    map(usage, figures), after_usage, counts, end)
        # As long as the days: the texts around the runs repeat.
        return "".join(chain.from_iterable(zip(*day, strict=False)))


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
        self._day_of_row: Any = ()
        self._meter_of_row: Any = ()
        self._start()

    def _start(self) -> None:
        self._jobs: list[Row] = []  # shared values of the batch's jobs
        self._job: list[int] = []  # per day: the job (its number in the batch), date, runs
        self._dates: list[date] = []
        self._runs: list[int] = []
        self._figures: list[_DayFigures] = []  # per day

    def add(self, shared: Row, days: _Days, figures: list[_DayFigures]) -> None:
        """A job's days, with their figures as written to the CSV."""
        self._job.extend([len(self._jobs)] * len(figures))
        self._jobs.append(shared)
        self._dates.extend(days.dates)
        self._runs.extend(days.runs)
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

        day, meter = self._rows_of(len(self._figures))
        dates = pa.array(self._dates, pa.date32()).dictionary_encode()
        date_of_row = dates.indices.take(day)
        times = [_periods(d) for d in dates.dictionary.to_pylist()]
        arrays = {"x_ExecutionCount": spread("x_ExecutionCount", self._runs, day)}
        for index, column in enumerate(_RUNS[1]):
            arrays[column] = spread(column, [moments[index] for moments in times],
                                    date_of_row)
        arrays.update(self._figure_arrays(day, meter))
        cells = [_meter_cells(m) for m in range(len(METERS))]
        for column in cells[0]:
            arrays[column] = spread(column, [c[column] for c in cells], meter)
        job = pa.array(self._job).take(day)
        for column in COLUMNS:
            if column not in arrays:
                arrays[column] = spread(column, [shared[column] for shared in self._jobs], job)
        self._writer.write_table(pa.Table.from_arrays([arrays[c] for c in COLUMNS],
                                                      schema=self._schema))
        self._start()

    def _rows_of(self, days: int) -> tuple[Any, Any]:
        """Each row's day (0, 0, 1, 1, ...) and meter (0, 1, 0, 1, ...) in a batch of `days`
        days: the same in every batch, so built once for the longest and sliced (for nothing).
        """
        import pyarrow as pa

        meters = len(METERS)
        if len(self._day_of_row) < days * meters:
            # A batch passes its size by the rows of the job that fills it.
            longest = max(days, 2 * PARQUET_BATCH_ROWS // meters)
            self._day_of_row = pa.array(sorted(list(range(longest)) * meters))
            self._meter_of_row = pa.array(list(range(meters)) * longest)
        return self._day_of_row[:days * meters], self._meter_of_row[:days * meters]

    def _figure_arrays(self, day: Any, meter: Any) -> dict[str, Any]:
        """The figure columns, parsed from their text: exactly the CSV's decimals. Days repeat
        their figures, remembered (`_FigureTexts`): each distinct texts, told apart by identity
        (cheaper than by value), are parsed once, then spread over the rows."""
        import pyarrow as pa
        import pyarrow.compute as pc

        ids = list(map(id, self._figures))
        numbered = pa.array(ids, pa.int64()).dictionary_encode()  # each day's among the distinct
        by_id = dict(zip(ids, self._figures, strict=True))
        distinct = list(map(by_id.__getitem__, numbered.dictionary.to_pylist()))
        # Each row's place among the distinct days' rows, each day's meter by meter.
        of_row = pc.add(pc.multiply(numbered.indices.take(day), len(METERS)), meter)
        arrays = {}
        for figure, columns in enumerate(_PARQUET_FIGURES):
            of_days = map(_parquet_figure(figure), distinct)
            texts = pa.array(list(chain.from_iterable(of_days)), pa.string())
            parsed = texts.cast(self._schema.field(columns[0]).type).take(of_row)
            arrays.update(dict.fromkeys(columns, parsed))
        return arrays


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
