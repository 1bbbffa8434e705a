"""The workbook's table rows, written as SpreadsheetML text and spliced in after openpyxl saves.

openpyxl spends 25-50 µs on each cell (a Cell object, its style arrays, an element tree per
cell), and a 20,000-job scan has millions of cells: the Results sheet alone holds one row per job
and check. Here each row becomes text in one pass, in the markup openpyxl itself writes (inline
strings, the same cell styles by index, hyperlinks as external relationships), into a temporary
file per sheet. The sheet itself, with its layout and header row, is still made by openpyxl;
`splice` puts the rows into the saved file, between the header row and the end of `sheetData`.

Cell styles are openpyxl's own: the first cell of each kind is made with the workbook's cell
maker and its style index reused for every cell of that kind, so a spliced cell reads back
exactly as a cell written by openpyxl (value, type, style, quote prefix, number format, link).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import weakref
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel

from reports.sanitize import is_formula_like

# workbook._cell(sheet, value, kind): the openpyxl cell a value of that kind becomes.
MakeCell = Callable[[Any, Any, Any], Any]
# workbook._shown(value): the value as a cell holds it (visible text, cut; naive UTC times).
Shown = Callable[[Any], Any]

RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
HYPERLINK = f"{RELATIONSHIPS}/hyperlink"
# Level 1 deflates several times faster than the default 6 for a few per cent more bytes: the
# spliced sheets are hundreds of megabytes of markup in a large estate.
COMPRESS_LEVEL = 1

_ESCAPE_ATTRIBUTE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})
# What XML 1.0 cannot hold beyond the controls `sanitize.visible` already shows: lone
# surrogates (JSON may carry them) and the two non-characters.
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")


@dataclass
class _Rows:
    worksheet: Any
    path: Path
    links: list[tuple[str, str]]  # (cell reference, target)


@dataclass
class _Pending:
    folder: Path
    sheets: list[_Rows] = field(default_factory=list)
    styles: dict[tuple[Any, ...], int] = field(default_factory=dict)


_pending: weakref.WeakKeyDictionary[Workbook, _Pending] = weakref.WeakKeyDictionary()


def _state(book: Workbook) -> _Pending:
    state = _pending.get(book)
    if state is None:
        folder = Path(tempfile.mkdtemp(prefix="auditor-xlsx-rows-"))
        weakref.finalize(book, shutil.rmtree, folder, True)  # also when the save never happens
        state = _pending[book] = _Pending(folder)
    return state


def _text(value: str) -> str:
    if not value.isascii():
        value = _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", value)
    if "&" in value:  # str.replace is many times faster than str.translate with a table
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    return value


def _number(value: float) -> str:
    return f"{value:.16g}"  # as openpyxl's safe_string writes numbers


def write_rows(book: Workbook, sheet: Any, rows: Iterable[Sequence[Any]], kinds: Sequence[Any],
               make_cell: MakeCell, shown: Shown, *, first_row: int = 2) -> int:
    """Render `rows` for `sheet` (whose header row openpyxl has written); return the last row
    number. The rows reach the file when `splice` runs on the saved workbook."""
    state = _state(book)
    letters = [get_column_letter(i) for i in range(1, len(kinds) + 1)]
    columns = list(zip(letters, kinds, strict=True))
    styles = state.styles
    rows_file = _Rows(sheet, state.folder / f"sheet-rows-{len(state.sheets)}.xml", [])
    number = first_row - 1
    # Per column, the markup after the cell reference of each string value seen: most values
    # repeat (checks, statuses, owners, subscriptions) and need no new work.
    seen: list[dict[str, str]] = [{} for _ in columns]
    with rows_file.path.open("w", encoding="utf-8") as out:
        write = out.write
        for row in rows:
            number += 1
            at = str(number)
            cells = [f'<row r="{at}">']
            for (letter, kind), original, known in zip(columns, row, seen, strict=True):
                if original is None:
                    continue
                if type(original) is str and kind != "url":
                    rest = known.get(original)
                    if rest is None:
                        if len(known) >= 50_000:
                            known.clear()
                        rest = known[original] = _rest(sheet, original, kind, styles,
                                                       make_cell, shown)
                    cells.append(f'<c r="{letter}{at}"{rest}')
                    continue
                cells.append(f'<c r="{letter}{at}"'
                             f'{_rest(sheet, original, kind, styles, make_cell, shown)}')
                if kind == "url":
                    value = shown(original)
                    if isinstance(value, str) and value:
                        rows_file.links.append((letter + at, value))
            cells.append("</row>")
            write("".join(cells))
    state.sheets.append(rows_file)
    return number


def _rest(sheet: Any, original: Any, kind: Any, styles: dict[tuple[Any, ...], int],
          make_cell: MakeCell, shown: Shown) -> str:
    """A cell's markup after its reference: style, type and value."""
    value = shown(original)
    if isinstance(value, str):
        quote = is_formula_like(value)
        key: tuple[Any, ...] = (kind, "s", value if kind == "severity" else "", quote)
    elif isinstance(value, datetime | date):
        key = (kind, "d" if isinstance(value, datetime) else "day")
    else:
        key = (kind, type(value))
    style = styles.get(key)
    if style is None:
        style = styles[key] = make_cell(sheet, original, kind).style_id
    if isinstance(value, str):
        if not value:
            return f' s="{style}" t="inlineStr"/>'
        space = ' xml:space="preserve"' if value != value.strip() else ""
        return f' s="{style}" t="inlineStr"><is><t{space}>{_text(value)}</t></is></c>'
    if isinstance(value, bool):
        return f' s="{style}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, datetime | date):
        return f' s="{style}" t="n"><v>{_number(to_excel(value))}</v></c>'
    return f' s="{style}" t="n"><v>{_number(value)}</v></c>'


def splice(book: Workbook, path: Path) -> None:
    """Put the rendered rows into the workbook openpyxl saved at `path` (rewritten in place)."""
    state = _pending.pop(book, None)
    if state is None or not state.sheets:
        return
    try:
        parts = {rows.worksheet.path.lstrip("/"): rows for rows in state.sheets}
        rels = {_rels_part(part): rows for part, rows in parts.items() if rows.links}
        spliced = path.with_name(path.name + ".splice")
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(
                spliced, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as target:
            for info in source.infolist():
                name = info.filename
                if name in parts:
                    _write_sheet(source.read(name).decode("utf-8"), parts[name], target, name)
                elif name in rels:
                    target.writestr(name, _with_links(source.read(name).decode("utf-8"),
                                                      rels.pop(name)))
                else:
                    target.writestr(name, source.read(name))
            for name, rows in rels.items():  # sheets that had no relationships yet
                target.writestr(name, _with_links(
                    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                    'relationships"></Relationships>', rows))
        spliced.replace(path)
    finally:
        shutil.rmtree(state.folder, ignore_errors=True)


def _rels_part(part: str) -> str:
    folder, name = part.rsplit("/", 1)
    return f"{folder}/_rels/{name}.rels"


def _link_id(index: int) -> str:
    return f"auditorLink{index}"


def _write_sheet(markup: str, rows: _Rows, target: zipfile.ZipFile, name: str) -> None:
    end = markup.rfind("</sheetData>")
    if end < 0:  # openpyxl wrote the header row, so sheetData has an end tag
        raise ValueError(f"{name}: worksheet markup without </sheetData>")
    head, tail = markup[:end], markup[end:]
    if rows.links:
        links = "".join(f'<hyperlink ref="{ref}" r:id="{_link_id(i)}"/>'
                        for i, (ref, _target) in enumerate(rows.links, start=1))
        tail = _insert_links(tail, links)
    with target.open(name, "w", force_zip64=True) as out, rows.path.open("rb") as body:
        out.write(head.encode("utf-8"))
        shutil.copyfileobj(body, out, 1 << 20)
        out.write(tail.encode("utf-8"))


def _insert_links(tail: str, links: str) -> str:
    """Hyperlinks go after autoFilter and before printOptions/pageMargins (schema order)."""
    if "</hyperlinks>" in tail:
        return tail.replace("</hyperlinks>", links + "</hyperlinks>", 1)
    element = f'<hyperlinks xmlns:r="{RELATIONSHIPS}">{links}</hyperlinks>'
    for follower in ("<printOptions", "<pageMargins", "<pageSetup", "<headerFooter",
                     "<drawing", "<legacyDrawing", "<tableParts", "<extLst", "</worksheet>"):
        at = tail.find(follower)
        if at >= 0:
            return tail[:at] + element + tail[at:]
    raise ValueError("worksheet markup without an end")  # openpyxl always writes one


def _with_links(markup: str, rows: _Rows) -> str:
    relationships = "".join(
        f'<Relationship Type="{HYPERLINK}" Target="{_text_attribute(target)}" '
        f'TargetMode="External" Id="{_link_id(i)}"/>'
        for i, (_ref, target) in enumerate(rows.links, start=1))
    end = markup.rfind("</Relationships>")
    return markup[:end] + relationships + markup[end:]


def _text_attribute(value: str) -> str:
    if not value.isascii():
        value = _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", value)
    return value.translate(_ESCAPE_ATTRIBUTE)
