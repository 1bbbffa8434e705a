"""reports.xlsx_rows: spliced rows read back exactly as the cells openpyxl itself writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.cell import Cell

from reports import workbook, xlsx_rows
from reports.tables import CellValue, Kind

# Links ("url") are only ever text: the batch test below has them.
KINDS: list[Kind] = ["text", "wrap", "severity", "percent"]
# Values that are equal keys but different cells (1, 1.0, True), text with what XML escapes or
# keeps only when told to, formula-like text, times, gaps: each column gets every value.
VALUES: list[CellValue] = [
    1, 1.0, True, False, 0, -0.0, 2, 2.5, 10**17, "1", "", " padded ", "a\nb", "=SUM(1)",
    "a&b<c>\"d\"", "naïve ☃", "high", "medium", "https://example.com/a b",
    datetime(2024, 5, 1, 10, 30, tzinfo=UTC), datetime(2024, 5, 1, 10, 30), date(2024, 5, 1),
    None, "x" * 40_000]


def both(tmp_path: Path, rows: Sequence[Sequence[CellValue]],
         kinds: Sequence[Kind]) -> tuple[Any, Any]:
    """The rows spliced into one sheet and appended by openpyxl to another, read back."""
    book = Workbook(write_only=True)
    for style in workbook._styles():
        book.add_named_style(style)
    header = [f"column {i}" for i in range(len(kinds))]
    spliced = book.create_sheet("Spliced")
    spliced.append(header)
    last = xlsx_rows.write_rows(book, spliced, rows, kinds, workbook._cell, workbook._shown)
    assert last == len(rows) + 1
    plain = book.create_sheet("Plain")
    plain.append(header)
    for row in rows:
        plain.append([workbook._cell(plain, value, kind)
                      for value, kind in zip(row, kinds, strict=True)])
    path = tmp_path / "rows.xlsx"
    book.save(path)
    xlsx_rows.splice(book, path)
    read = load_workbook(path)
    return read["Spliced"], read["Plain"]


def described(cell: Cell) -> tuple[Any, ...]:
    """Value, type and link; the style by index (font, fill, alignment, number format, quote
    prefix), which both sheets of one workbook share."""
    return (cell.value, cell.data_type, cell.style_id, cell.number_format, cell.quotePrefix,
            cell.hyperlink.target if cell.hyperlink else None)


def test_every_kind_of_value_reads_back_as_openpyxl_writes_it(tmp_path: Path) -> None:
    rows = [[value] * len(KINDS) for value in VALUES]
    spliced, plain = both(tmp_path, rows, KINDS)
    assert spliced.max_row == plain.max_row == len(VALUES) + 1
    for spliced_row, plain_row in zip(spliced.iter_rows(), plain.iter_rows(), strict=True):
        assert [described(c) for c in spliced_row] == [described(c) for c in plain_row]


def test_rows_past_a_batch_keep_their_numbers_and_links(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsx_rows, "_BATCH", 4)
    rows = [[f"https://example.com/{n}", n % 3, None if n % 3 else f"job-{n % 2}"]
            for n in range(11)]
    spliced, plain = both(tmp_path, rows, ["url", "text", "text"])
    for spliced_row, plain_row in zip(spliced.iter_rows(), plain.iter_rows(), strict=True):
        assert [described(c) for c in spliced_row] == [described(c) for c in plain_row]
    assert [spliced.cell(n, 1).hyperlink.target for n in range(2, 13)] == [
        f"https://example.com/{n}" for n in range(11)]


def test_no_rows_leave_the_header_alone(tmp_path: Path) -> None:
    spliced, plain = both(tmp_path, [], KINDS)
    assert spliced.max_row == plain.max_row == 1
