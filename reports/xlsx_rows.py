"""The workbook's table rows, written as SpreadsheetML text and spliced in after openpyxl saves.

openpyxl spends 25-50 µs on each cell (a Cell object, its style arrays, an element tree per
cell), and a 20,000-job scan has millions of cells: the Results sheet alone holds one row per job
and check. Here the rows become markup, with the same cell styles by index as openpyxl's cells
and hyperlinks as external relationships, in a temporary file per sheet. The sheet itself, with
its layout and header row, is still made by openpyxl; `splice` puts the rows into the saved
file, between the header row and the end of `sheetData`.

Text goes into the shared string table, each distinct text once, where openpyxl writes inline
strings: both read back as the same text cell, and the Results sheet repeats its titles, names,
messages and ids on every row, so this halves the markup to write, copy and deflate.

Cell styles are openpyxl's own: the first cell of each kind is made with the workbook's cell
maker and its style index reused for every cell of that kind, so a spliced cell reads back
exactly as a cell written by openpyxl (value, type, style, quote prefix, number format, link).
"""

from __future__ import annotations

import operator
import re
import shutil
import tempfile
import weakref
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from itertools import chain, islice, repeat
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel

from reports.sanitize import is_formula_like

# workbook._cell(sheet, value, kind): the openpyxl cell a value of that kind becomes.
MakeCell = Callable[[Any, Any, Any], Any]
# workbook._shown(value): the value as a cell holds it (visible text, cut; naive UTC times). It
# leaves a value it has shown as it is: `_Cells._text` relies on that.
Shown = Callable[[Any], Any]

RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
HYPERLINK = f"{RELATIONSHIPS}/hyperlink"
SPREADSHEET = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
STRINGS_PART = "xl/sharedStrings.xml"
STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
# Level 1 deflates several times faster than the default 6 for a few per cent more bytes: the
# spliced sheets are hundreds of megabytes of markup in a large estate.
COMPRESS_LEVEL = 1

# Where cached cell markup has its row number, put in per row. No cell's markup holds it
# otherwise: it has a style index, a type and a number (text is in the shared strings).
_ROW = b"\0"
_KEPT = 50_000  # cached cells per column, at most: a column of unique values must not grow
_BATCH = 2_000  # rows rendered and written at a time, and shared strings too

# What XML text escapes, "&" first; an attribute value escapes '"' too.
_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))
_QUOTE = ('"', "&quot;")
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
    strings: dict[str, int] = field(default_factory=dict)  # text: its shared string index


_pending: weakref.WeakKeyDictionary[Workbook, _Pending] = weakref.WeakKeyDictionary()


def _state(book: Workbook) -> _Pending:
    state = _pending.get(book)
    if state is None:
        folder = Path(tempfile.mkdtemp(prefix="auditor-xlsx-rows-"))
        weakref.finalize(book, shutil.rmtree, folder, True)  # also when the save never happens
        state = _pending[book] = _Pending(folder)
    return state


class _Cells(dict[Any, bytes]):
    """One column's cells by value, as UTF-8 markup with `_ROW` where the row number goes, made
    on first sight: most values repeat (checks, statuses, owners, subscriptions, and a job's
    cells on each of its result rows). Text and None are kept in the dict itself, so a repeat
    costs no Python code; integers (counts, timeouts) apart, as 1, 1.0 and True are one key but
    three different cells, and floats apart by their exact hex form, as -0.0 and 0.0 are one
    key too; times are made each time (nearly every one differs)."""

    def __init__(self, letter: str, kind: Any, sheet: Any, state: _Pending, make_cell: MakeCell,
                 shown: Shown) -> None:
        super().__init__()
        self.letter = letter
        self.kind = kind
        self.sheet = sheet
        self.state = state
        self.make_cell = make_cell
        self.shown = shown
        self.integers: dict[int, bytes] = {}
        self.floats: dict[str, bytes] = {}
        self.starts: dict[tuple[Any, ...], bytes] = {}  # see `_style`

    def __missing__(self, original: Any) -> bytes:
        kept: dict[Any, bytes]
        key: Any
        if original is None or type(original) is str:
            kept, key = self, original
        elif type(original) is int:
            kept, key = self.integers, original
        elif type(original) is float:
            kept, key = self.floats, original.hex()
        else:
            return self._made(original)
        markup = kept.get(key)
        if markup is None:
            if len(kept) >= _KEPT:
                kept.clear()
            markup = kept[key] = (self._text(original) if type(original) is str
                                  else b"" if original is None else self._made(original))
        return markup

    def _text(self, original: str) -> bytes:
        """A text cell: a shared string. A text already shared is its own shown form (`Shown`
        changes nothing twice), so the names and ids that fill a column on several sheets are
        shown once."""
        strings = self.state.strings
        index = strings.get(original)
        value = original
        if index is None:
            value = self.shown(original)
            index = strings.setdefault(value, len(strings)) if value else None
        key = ("s", value if self.kind == "severity" else "", is_formula_like(value))
        start = self.starts.get(key) or self._style(key, original)
        if index is None:
            return start + b' t="inlineStr"/>'  # as openpyxl writes an empty string
        return start + b' t="s"><v>%d</v></c>' % index

    def _made(self, original: Any) -> bytes:
        """A number, truth value, date or time cell."""
        value = self.shown(original)
        key: tuple[Any, ...]
        if isinstance(value, bool):
            key, body = (bool,), b' t="b"><v>%d</v></c>' % value
        elif isinstance(value, datetime | date):
            key = ("d" if isinstance(value, datetime) else "day",)
            body = b' t="n"><v>%s</v></c>' % _number(to_excel(value))
        else:
            key, body = (type(value),), b' t="n"><v>%s</v></c>' % _number(value)
        return (self.starts.get(key) or self._style(key, original)) + body

    def _style(self, key: tuple[Any, ...], original: Any) -> bytes:
        """The markup of a cell with `key` up to its style index: cells of one kind with the
        same key share the style of the cell `make_cell` makes of the first of them."""
        styles, kind_key = self.state.styles, (self.kind, *key)
        style = styles.get(kind_key)
        if style is None:
            style = styles[kind_key] = self.make_cell(self.sheet, original, self.kind).style_id
        start = self.starts[key] = f'<c r="{self.letter}\0" s="{style}"'.encode()
        return start


def _number(value: float) -> bytes:
    return f"{value:.16g}".encode()  # as openpyxl's safe_string writes numbers


def write_rows(book: Workbook, sheet: Any, rows: Iterable[Sequence[Any]], kinds: Sequence[Any],
               make_cell: MakeCell, shown: Shown, *, first_row: int = 2) -> int:
    """Render `rows` for `sheet` (whose header row openpyxl has written); return the last row
    number. The rows reach the file when `splice` runs on the saved workbook.

    Rows go a batch at a time, column by column: each cell is its column's cached markup, each
    row those joined with its number put in, all without Python code per cell or row (a large
    estate has millions of cells)."""
    state = _state(book)
    columns = [_Cells(get_column_letter(index), kind, sheet, state, make_cell, shown)
               for index, kind in enumerate(kinds, start=1)]
    linked = [index for index, kind in enumerate(kinds) if kind == "url"]
    rows_file = _Rows(sheet, state.folder / f"sheet-rows-{len(state.sheets)}.xml", [])
    remaining = iter(rows)
    number = first_row - 1
    with rows_file.path.open("wb") as out:
        while batch := list(islice(remaining, _BATCH)):
            first, number = number + 1, number + len(batch)
            values = list(zip(*batch, strict=True))  # a tuple per column
            cells = [map(column.__getitem__, column_values)
                     for column, column_values in zip(columns, values, strict=True)]
            marked = map(b"".join, zip(repeat(b'<row r="\0">'), *cells, repeat(b"</row>")))
            numbers = map(b"%d".__mod__, range(first, number + 1))
            out.write(b"".join(map(bytes.replace, marked, repeat(_ROW), numbers)))
            for index in linked:
                rows_file.links.extend(_links(columns[index].letter, values[index], first, shown))
    state.sheets.append(rows_file)
    return number


def _links(letter: str, values: Iterable[Any], first: int,
           shown: Shown) -> Iterator[tuple[str, str]]:
    """The hyperlinks of a url column's cells, from row `first` down."""
    for number, original in enumerate(values, start=first):
        target = None if original is None else shown(original)
        if isinstance(target, str) and target:
            yield f"{letter}{number}", target


def splice(book: Workbook, path: Path) -> None:
    """Put the rendered rows into the workbook openpyxl saved at `path` (rewritten in place)."""
    state = _pending.pop(book, None)
    if state is None or not state.sheets:
        return
    try:
        parts = {rows.worksheet.path.lstrip("/"): rows for rows in state.sheets}
        rels = {_rels_part(part): rows for part, rows in parts.items() if rows.links}
        # openpyxl writes no shared strings: the part gets its content type and relationship.
        edits: dict[str, Callable[[str], str]] = {
            "[Content_Types].xml": partial(_insert_before, "</Types>", (
                f'<Override PartName="/{STRINGS_PART}" ContentType="{STRINGS_TYPE}"/>')),
            "xl/_rels/workbook.xml.rels": partial(_insert_before, "</Relationships>", (
                f'<Relationship Type="{RELATIONSHIPS}/sharedStrings" '
                f'Target="/{STRINGS_PART}" Id="auditorStrings"/>')),
        } if state.strings else {}
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
                elif name in edits:
                    target.writestr(name, edits[name](source.read(name).decode("utf-8")))
                else:
                    target.writestr(name, source.read(name))
            for name, rows in rels.items():  # sheets that had no relationships yet
                target.writestr(name, _with_links(
                    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                    'relationships"></Relationships>', rows))
            if state.strings:
                _write_strings(state.strings, target)
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
    targets = _escaped([target for _ref, target in rows.links], _QUOTE)
    relationships = "".join(
        f'<Relationship Type="{HYPERLINK}" Target="{target}" TargetMode="External" '
        f'Id="{_link_id(i)}"/>' for i, target in enumerate(targets, start=1))
    return _insert_before("</Relationships>", relationships, markup)


def _insert_before(end_tag: str, element: str, markup: str) -> str:
    end = markup.rfind(end_tag)
    return markup[:end] + element + markup[end:]


def _write_strings(strings: dict[str, int], target: zipfile.ZipFile) -> None:
    """The shared string table: every text of the spliced rows, in index order."""
    remaining = iter(strings)  # a dict keeps the order its texts were given their indexes
    with target.open(STRINGS_PART, "w", force_zip64=True) as out:
        out.write(f'<sst xmlns="{SPREADSHEET}" uniqueCount="{len(strings)}">'.encode())
        while batch := list(islice(remaining, _BATCH)):
            out.write(_string_items(batch).encode("utf-8"))
        out.write(b"</sst>")


def _string_items(texts: list[str]) -> str:
    """The `<si>` elements of `texts`, made by C loops (`map`) rather than Python code per
    text: a large estate has hundreds of thousands. Outer spaces are kept only when told to."""
    spaced = map(operator.ne, texts, map(str.strip, texts))
    starts = map(('<si><t>', '<si><t xml:space="preserve">').__getitem__, spaced)
    return "".join(chain.from_iterable(zip(starts, _escaped(texts), repeat("</t></si>"))))


def _escaped(texts: list[str], *more: tuple[str, str]) -> Iterator[str]:
    """`texts` as XML text, or with `_QUOTE` in `more` as attribute values. Each escape is
    looked for in all the texts at once: most texts need none."""
    joined = "".join(texts)
    escaped: Iterator[str] = iter(texts)
    if not joined.isascii():
        escaped = map(_NOT_XML.sub, repeat("\N{REPLACEMENT CHARACTER}"), escaped)
    for old, new in (*_ESCAPES, *more):
        if old in joined:
            escaped = map(str.replace, escaped, repeat(old), repeat(new))
    return escaped
