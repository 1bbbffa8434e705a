"""report.xlsx: the auditor's workbook, streamed with openpyxl's write-only mode.

`SHEETS` is the workbook, in order: a Summary, then one sheet per table of `reports.tables`.
A table longer than Excel's row limit continues on "Title (2)", "Title (3)"…; nothing is cut.

Formula injection: openpyxl stores any string that starts with "=" as a formula (and "#N/A" and
the like as an error). Every string cell is therefore forced to text (an inline string; a shared
string in the table rows, see `xlsx_rows`), and one that a spreadsheet would read as a formula
also gets Excel's quote prefix, so it stays text even when a user edits the cell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font, NamedStyle, PatternFill
from openpyxl.utils import get_column_letter

from auditor.results import ScanReport
from reports import finops, tables, xlsx_rows
from reports.atomic import replacing
from reports.sanitize import is_formula_like, visible
from reports.tables import CellValue, Column, Kind, Table, iso_utc, scope_text, utc

if TYPE_CHECKING:
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

FILE_NAME = "report.xlsx"
EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_TEXT = 32_767
DATE_TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"
PERCENT_FORMAT = "0.0%"

_CUT = "… (cut at Excel's cell limit; see findings.json)"
_TOP = Alignment(vertical="top")
_SEVERITY_COLOURS = {"critical": "C00000", "high": "FF7C80", "medium": "FFD966",
                     "low": "BDD7EE", "info": "E7E6E6"}

Row = TypeVar("Row")
Sheet = Callable[[Workbook, ScanReport, int], None]


# --- cells -------------------------------------------------------------------------------------

def _styles() -> list[NamedStyle]:
    """The workbook's cell styles, set on each cell by name: cheaper per cell than setting fonts
    and fills one by one (openpyxl hashes each), and Excel lists them by name."""
    severities = [
        NamedStyle(f"Severity {name}", fill=PatternFill("solid", fgColor=colour),
                   font=Font(bold=name == "critical", color="FFFFFF" if name == "critical"
                             else "000000"), alignment=_TOP)
        for name, colour in _SEVERITY_COLOURS.items()]
    return [
        NamedStyle("Audit text", alignment=_TOP),
        NamedStyle("Audit wrap", alignment=Alignment(vertical="top", wrap_text=True)),
        NamedStyle("Audit link", font=Font(color="0563C1", underline="single"), alignment=_TOP),
        NamedStyle("Audit header", font=Font(bold=True),
                   fill=PatternFill("solid", fgColor="D9E1F2"),
                   alignment=Alignment(vertical="top", wrap_text=True)),
        *severities,
    ]


def _style(kind: Kind, value: object) -> str:
    if kind == "severity" and value in _SEVERITY_COLOURS:
        return f"Severity {value}"
    return {"wrap": "Audit wrap", "url": "Audit link"}.get(kind, "Audit text")


def _cell(sheet: WriteOnlyWorksheet, value: CellValue,
          kind: Kind = "text") -> WriteOnlyCell | None:
    """One styled cell; strings are always text, never formulas."""
    if value is None:
        return None
    value = _shown(value)
    made = WriteOnlyCell(sheet, value)
    made.style = _style(kind, value)  # first: a named style replaces the whole cell style
    if isinstance(value, str):
        made.data_type = "s"
        made.quotePrefix = is_formula_like(value)
    elif isinstance(value, datetime):
        made.number_format = DATE_TIME_FORMAT
    elif isinstance(value, date):
        made.number_format = DATE_FORMAT
    if kind == "url":
        made.hyperlink = str(value)
    elif kind == "percent":
        made.number_format = PERCENT_FORMAT
    return made


def _shown(value: CellValue) -> CellValue:
    """The value as a cell holds it: text made visible and cut at Excel's limit, naive UTC."""
    if isinstance(value, datetime):
        return utc(value).replace(tzinfo=None)  # Excel has no time zones: naive UTC
    if isinstance(value, str):
        value = visible(value)
        if len(value) > EXCEL_MAX_TEXT:
            return value[: EXCEL_MAX_TEXT - len(_CUT)] + _CUT
    return value


def _bold(sheet: WriteOnlyWorksheet, value: CellValue, size: int = 11,
          color: str = "000000") -> WriteOnlyCell | None:
    made = _cell(sheet, value)
    if made is not None:
        made.font = Font(bold=True, size=size, color=color)
    return made


def _header(sheet: WriteOnlyWorksheet, values: Iterable[str]) -> list[WriteOnlyCell | None]:
    row = [_cell(sheet, v) for v in values]
    for made in row:
        if made is not None:
            made.style = "Audit header"
    return row


# --- sheets ------------------------------------------------------------------------------------

def _new_sheet(book: Workbook, title: str, widths: Iterable[int]) -> WriteOnlyWorksheet:
    """A sheet set up for printing: landscape, one page wide.

    Write-only sheets write their layout before the first row, so this comes first.
    """
    sheet: WriteOnlyWorksheet = book.create_sheet(title)
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.page_setup.orientation = "landscape"
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    return sheet


def split_rows(rows: Iterable[Row], per_sheet: int) -> Iterator[Iterator[Row]]:
    """Consecutive runs of at most `per_sheet` rows; always one, even when there are no rows.

    Runs share one iterator: consume each before asking for the next.
    """
    remaining = iter(rows)
    yield islice(remaining, per_sheet)
    for first in remaining:
        yield chain([first], islice(remaining, per_sheet - 1))


def _part_title(title: str, part: int) -> str:
    return title if part == 1 else f"{title} ({part})"


def _write_table(book: Workbook, table: Table, max_rows: int) -> int:
    """The table under a frozen, filtered, bold header row, on as many sheets as it needs;
    returns how many rows the table has."""
    columns: tuple[Column[object], ...] = table.columns
    last_column = get_column_letter(len(columns))
    written = 0
    for part, rows in enumerate(split_rows(table.rows, max_rows - 1), start=1):
        sheet = _new_sheet(book, _part_title(table.title, part), (c.width for c in columns))
        sheet.freeze_panes = "A2"
        sheet.print_title_rows = "1:1"
        sheet.append(_header(sheet, (c.header for c in columns)))
        # The rows are written as markup directly and spliced in after the save (xlsx_rows):
        # openpyxl's per-cell cost is minutes for a 20,000-job estate.
        last_row = xlsx_rows.write_rows(book, sheet, rows, [c.kind for c in columns], _cell,
                                        _shown)
        sheet.auto_filter.ref = f"A1:{last_column}{last_row}"
        written += last_row - 1
    return written


def _table_sheet(build: Callable[[ScanReport], Table]) -> Sheet:
    def write(book: Workbook, report: ScanReport, max_rows: int) -> None:
        _write_table(book, build(report), max_rows)

    return write


def _summary_lines(sheet: WriteOnlyWorksheet, report: ScanReport) -> list[list[object]]:
    info = report.info
    if report.complete:
        state = _bold(sheet, "Complete: every requested scope was read.", 14, "00703C")
    else:
        state = _bold(sheet, f"INCOMPLETE: {len(report.coverage.gaps)} scope(s) could not be "
                      "read; results cover only what was read. See the Coverage sheet.",
                      16, "C00000")
    rate = tables.pass_rate(report)
    shown_rate = _cell(sheet, "n/a") if rate is None else _cell(sheet, rate)
    if rate is not None and shown_rate is not None:
        shown_rate.number_format = PERCENT_FORMAT
    facts: list[tuple[str, object]] = [
        ("Scope", _cell(sheet, scope_text(info.scope), "wrap")),
        ("Source", _cell(sheet, info.source)),
        ("Source detail", _cell(sheet, info.source_detail, "wrap")),
        ("Scan started (UTC)", _cell(sheet, info.started)),
        ("Scan finished (UTC)", _cell(sheet, info.finished)),
        ("Evaluated as of (UTC)", _cell(sheet, info.as_of)),
        ("Tool version", _cell(sheet, info.tool_version)),
        ("Scan id", _cell(sheet, info.id)),
        ("Settings digest (SHA-256)", _cell(sheet, report.settings.digest())),
        ("Input files", _cell(sheet, len(info.snapshot_files))),
    ]
    figures: list[tuple[str, object]] = [
        ("Jobs scanned", len(report.estate.jobs)),
        ("Checks", len(report.checks)),
        ("Results (one per job and check)", len(report.results)),
        ("Findings", len(report.findings)),
        ("Findings waived (accepted risks)", tables.counts(report)["waived"]),
        ("Coverage gaps", len(report.coverage.gaps)),
        ("Pass rate: passed / (passed + failed)", shown_rate),
        *_trend(report),
    ]
    return [
        [_bold(sheet, "Azure Container Apps jobs: audit report", 16)],
        [state],
        [],
        [_bold(sheet, "Scan")],
        *([_cell(sheet, label), value] for label, value in facts),
        [],
        [_bold(sheet, "Key figures")],
        *([_cell(sheet, label), value] for label, value in figures),
        [],
        [_bold(sheet, f"Findings by severity (as of {iso_utc(info.as_of)})")],
    ]


def _trend(report: ScanReport) -> list[tuple[str, object]]:
    """Against the previous complete scan of the same scope, when a history store is kept."""
    history = report.history
    if history is None or history.baseline is None:
        return [("Trend", "first scan of this scope (no earlier scan to compare with)")]
    baseline = history.baseline
    return [("Previous scan (UTC)", utc(baseline.started).replace(tzinfo=None)),
            ("Findings in the previous scan", baseline.findings),
            ("New since the previous scan", history.new),
            ("Persisting", history.persisting),
            ("Resolved since the previous scan", len(history.resolved))]


def _manifest(book: Workbook, report: ScanReport, max_rows: int) -> None:
    """The evidence behind the reports: what was read, by which version under which settings.

    manifest.json, written after this workbook, hashes every file, this one included; here are
    the input files' hashes, so a reader of the workbook alone can check the evidence.
    """
    info = report.info
    sheet = _new_sheet(book, "Manifest", (40, 70, 14))
    history = report.history
    for label, value in (
            ("Tool version", info.tool_version), ("Scan id", info.id),
            ("Settings digest (SHA-256)", report.settings.digest()),
            ("Previous manifest (SHA-256)",
             history.previous_manifest_sha256 if history else None),
            ("Scope", scope_text(info.scope)), ("Evaluated as of (UTC)", info.as_of),
            ("Every file, this workbook included, is hashed in", "manifest.json"),
            ("Check it with", "auditor verify <this folder>")):
        sheet.append([_cell(sheet, label), _cell(sheet, value, "wrap")])
    sheet.append([])
    sheet.append(_header(sheet, ("Input file (snapshot/)", "SHA-256", "Bytes")))
    for name, size, digest in info.evidence_files:
        sheet.append([_cell(sheet, name), _cell(sheet, digest), _cell(sheet, size)])


def _severity_chart(sheet: WriteOnlyWorksheet, header_row: int) -> BarChart:
    """Stacked columns of findings per severity, read from the table at `header_row`."""
    chart = BarChart()
    chart.type = "col"
    chart.grouping = "stacked"
    chart.overlap = 100
    chart.title = "Findings by severity"
    chart.y_axis.title = "Findings"
    last = header_row + len(_SEVERITY_COLOURS)
    chart.add_data(Reference(sheet, min_col=2, max_col=4, min_row=header_row, max_row=last),
                   titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=1, min_row=header_row + 1, max_row=last))
    chart.width, chart.height = 16, 8
    return chart


def _summary(book: Workbook, report: ScanReport, max_rows: int) -> None:
    """Scope, period, source, completeness, key figures and findings by severity, charted.

    A few dozen rows: `max_rows` never applies, but every sheet writer takes it.
    """
    sheet = _new_sheet(book, "Summary", (40, 60, 10, 10, 10))
    lines = _summary_lines(sheet, report)
    for line in lines:
        sheet.append(line)
    sheet.append(_header(sheet, ("Severity", "Failed", "Unknown", "Error", "Total")))
    for count in tables.severity_counts(report):
        sheet.append([_cell(sheet, count.severity.value, "severity"), count.failed,
                      count.unknown, count.error, count.total])
    sheet.add_chart(_severity_chart(sheet, len(lines) + 1), "G4")


def _cost_by_owner(book: Workbook, report: ScanReport, max_rows: int) -> None:
    """Cost per owner with a bar chart, then the free grant as its own credit lines."""
    owners = _write_table(book, finops.cost_by_owner(report), max_rows)
    sheet = book[_part_title("Cost by owner", 1)]
    if owners:
        chart = BarChart()
        chart.type = "bar"
        chart.title = f"Estimated cost by owner ({report.settings.cost.currency})"
        last = min(owners, max_rows - 1) + 1
        chart.add_data(Reference(sheet, min_col=4, min_row=1, max_row=last),
                       titles_from_data=True)
        chart.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=last))
        chart.legend = None
        chart.width, chart.height = 18, max(6, 0.6 * owners)
        sheet.add_chart(chart, "G2")


# The workbook, sheet by sheet.
SHEETS: tuple[Sheet, ...] = (
    _summary,
    _table_sheet(tables.findings),
    _table_sheet(tables.results),
    _table_sheet(tables.checks),
    _table_sheet(tables.controls),
    _table_sheet(tables.waivers),
    _table_sheet(tables.inventory),
    _table_sheet(tables.changes),
    _table_sheet(finops.executions),
    _cost_by_owner,
    _table_sheet(finops.cost_by_job),
    _table_sheet(finops.allocation),
    _table_sheet(finops.dedicated_profiles),
    _table_sheet(finops.free_grant_table),
    _table_sheet(finops.cost_anomalies),
    _table_sheet(tables.coverage),
    _manifest,
)


def write_workbook(report: ScanReport, folder: Path, *, max_rows: int = EXCEL_MAX_ROWS) -> Path:
    """Write report.xlsx; `max_rows` (header included) is Excel's limit unless a test lowers it."""
    book = Workbook(write_only=True)
    for style in _styles():
        book.add_named_style(style)
    for write in SHEETS:
        write(book, report, max_rows)
    path = folder / FILE_NAME
    with replacing(path) as temporary:
        book.save(temporary)
        xlsx_rows.splice(book, temporary)
    return path
