"""findings.csv: the workbook's Findings sheet as CSV, for people who filter in a spreadsheet.

The columns are the Findings sheet's (`reports.tables.findings`), one row per finding, in report
order. Encoding is UTF-8 with a byte-order mark, because Excel reads a CSV without one in the
legacy code page and garbles every non-ASCII name; lines end in CRLF (RFC 4180) and every cell is
quoted. Times are ISO 8601 UTC with a Z; an empty value is an empty cell.

Formula injection (OWASP "CSV Injection"): names, tags and messages come from whoever can write to
the subscription, and a spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return as a formula. Such a cell is written with a leading `'`, which spreadsheets show
as text; hidden control characters are made visible first (`reports.sanitize.visible`), so a
control character cannot hide a trigger. The CSV is written row by row (never held whole) into a
temporary file that replaces findings.csv in one step.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

from auditor.results import ScanReport
from reports.atomic import replacing
from reports.sanitize import is_formula_like, visible
from reports.tables import CellValue, findings, iso_utc

FILE_NAME = "findings.csv"
ENCODING = "utf-8-sig"


def cell(value: CellValue) -> str:
    """One value as the text of a CSV cell, neutralised for spreadsheets."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        text = visible(value)
        return f"'{text}" if is_formula_like(text) else text
    return str(value)


def write_csv(report: ScanReport, folder: Path) -> Path:
    table = findings(report)
    path = folder / FILE_NAME
    with replacing(path) as temporary, temporary.open("w", encoding=ENCODING, newline="") as out:
        writer = csv.writer(out, dialect="excel", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow([cell(c.header) for c in table.columns])
        for row in table.rows:
            writer.writerow([cell(value) for value in row])
    return path
