"""The snapshot: a folder of JSON files as Azure and its CLIs return them.

It is both the offline input (`auditor scan --snapshot DIR`) and the audit evidence a live scan
keeps (`OUT/snapshot/`). Files may hold any of the export shapes people produce; items are told
apart by their `type`, never by file name. A live collection adds `collection.json`, the record
of what was queried and what could not be read, so an incomplete collection stays incomplete
when the snapshot is evaluated again.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from auditor.coverage import Coverage, Gap, Read
from auditor.errors import InputError
from auditor.forking import Forked, available_processes

JOBS = "microsoft.app/jobs"
ENVIRONMENTS = "microsoft.app/managedenvironments"
EXECUTIONS = "microsoft.app/jobs/executions"
ROLE_ASSIGNMENTS = "microsoft.authorization/roleassignments"
ROLE_DEFINITIONS = "microsoft.authorization/roledefinitions"
# Rows of Resource Graph's `resourcechanges` table (and of the ARM changes API).
CHANGES = "microsoft.resources/changes"
KNOWN_TYPES = (JOBS, ENVIRONMENTS, EXECUTIONS, ROLE_ASSIGNMENTS, ROLE_DEFINITIONS, CHANGES)

COLLECTION_FILE = "collection.json"
COLLECTION_KEY = "auditor_collection"
SNAPSHOT_FORMAT = 1


@dataclass(frozen=True, slots=True)
class RawItem:
    """One row as Azure returned it, with the file it came from (for evidence)."""

    row: dict[str, Any]
    source: str


# Turns a row of one type into its record as the row is read; see `read_snapshot`.
Convert = Callable[[dict[str, Any], str], Any]


@dataclass(slots=True)
class RawSnapshot:
    items: dict[str, list[RawItem]] = field(default_factory=lambda: {t: [] for t in KNOWN_TYPES})
    other_types: Counter[str] = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)
    coverage: Coverage = field(default_factory=Coverage)
    collection: dict[str, Any] | None = None
    convert: Mapping[str, Convert] = field(default_factory=dict)
    records: dict[str, list[Any]] = field(default_factory=dict)  # what `convert` made, by type

    def add(self, row: Any, source: str) -> None:
        if not isinstance(row, dict):
            self.other_types["(not an object)"] += 1
            return
        kind = _item_type(row)
        convert = self.convert.get(kind or "")
        if convert is not None:
            self.records.setdefault(kind or "", []).append(convert(row, source))
        elif kind in self.items:
            self.items[kind].append(RawItem(row, source))
        else:
            self.other_types[kind or "(no type)"] += 1

    def count(self) -> int:
        return sum(map(len, self.items.values())) + sum(map(len, self.records.values())) + \
            sum(self.other_types.values())

    def mark(self) -> tuple[dict[str, int], dict[str, int], Counter[str]]:
        return ({k: len(v) for k, v in self.items.items()},
                {k: len(v) for k, v in self.records.items()}, self.other_types.copy())

    def rollback(self, mark: tuple[dict[str, int], dict[str, int], Counter[str]]) -> None:
        """Forget what was added since `mark`: a file that turned out not to be in the layout
        read a line at a time is read again whole."""
        items, records, self.other_types = mark
        for kind, rows in self.items.items():
            del rows[items.get(kind, 0):]
        for kind, made in self.records.items():
            del made[records.get(kind, 0):]


def _item_type(row: dict[str, Any]) -> str | None:
    kind = row.get("type")
    if isinstance(kind, str) and kind:
        return kind.lower()
    # The executions list of the REST API carries neither id nor type on its items.
    props = row.get("properties")
    if isinstance(props, dict) and "status" in props and "startTime" in props:
        return EXECUTIONS
    return None


def read_snapshot(folder: Path, *, convert: Mapping[str, Convert] | None = None) -> RawSnapshot:
    """Read every `*.json` below `folder` (sorted, so scans are reproducible).

    Rows of a type in `convert` are kept as what it returns, in `records`, not as rows: a large
    estate's execution rows are a gigabyte of dicts, their records a fraction of it.
    """
    if not folder.exists():
        raise InputError(str(folder), "snapshot folder does not exist", "pass an existing folder")
    if not folder.is_dir():
        raise InputError(str(folder), "snapshot path is not a folder",
                         "pass a folder of JSON files")
    paths = sorted(p for p in folder.rglob("*.json") if p.is_file())
    if not paths:
        raise InputError(
            str(folder), "snapshot folder holds no .json files",
            "export jobs with `az graph query` or `az containerapp job list` into it",
        )
    snapshot = RawSnapshot(convert=convert or {})
    for path in paths:
        name = path.relative_to(folder).as_posix()
        snapshot.files.append(name)
        _read_file(path, name, snapshot)
    return snapshot


def _read_file(path: Path, name: str, snapshot: RawSnapshot) -> None:
    before = snapshot.count()
    document = _rows_by_line(path, name, snapshot)
    if document is None:
        document = _parsed_whole(path)
    for row in _rows(document, path, name, snapshot):  # none left when read a line at a time
        snapshot.add(row, name)
    if not (isinstance(document, dict) and COLLECTION_KEY in document):
        snapshot.coverage.reads.append(Read(f"file {name}", "snapshot",
                                            snapshot.count() - before))


_ROWS_START = b'"data": [\n'
_LINES_PER_PARSE = 4096
# A file of rows in the line layout at least this large, whose rows are converted as they are
# read (a large estate's executions), is read by two processes when two CPUs are free: this one
# reads the first part and a forked one the rest. OWN_SHARE is this process's part: it also
# takes in what the other sends back.
SPLIT_BYTES = 32 * 1024 * 1024
_OWN_SHARE = 0.6


def _rows_by_line(path: Path, name: str, snapshot: RawSnapshot) -> Any:
    """Add the rows of a file in the layout `write_rows` writes (one row per line) to
    `snapshot` a chunk of lines at a time, so that neither the text of a large snapshot nor all
    its rows are ever held at once; return the document without its rows (`data` empty).

    None, with nothing added, for a file in any other layout or with anything wrong in it, which
    `_parsed_whole` then reads (and explains).
    """
    mark = snapshot.mark()
    other: _OtherPart | None = None
    try:
        with path.open("rb") as lines:
            if lines.readline() != b"{\n":
                return None
            head = list(itertools.takewhile(lambda line: line != _ROWS_START, lines))
            position = lines.tell()
            other = _OtherPart.start(path, name, snapshot, position)
            tail = _add_rows(lines, name, snapshot, position,
                             other.split if other is not None else -1)
            if tail is None:
                if other is None:
                    raise ValueError("no end of the rows: truncated")
                tail = other.add_into(snapshot)
            text = b"{" + b"".join(head) + b'"data": []' + tail[1:]
            document = json.loads(text.decode("utf-8"))
        if not isinstance(document, dict) or document.get("data") != []:
            raise ValueError("not the layout write_rows writes")
    except (OSError, ValueError):  # ValueError: JSON or UTF-8 that does not decode
        snapshot.rollback(mark)
        return None
    finally:
        if other is not None:
            other.stop()
    return document


def _add_rows(lines: BinaryIO, name: str, snapshot: RawSnapshot, position: int = 0,
              split: int = -1) -> bytes | None:
    """Add the rows that follow in `lines` (at byte `position`) a chunk at a time, up to the
    end of the rows; return the text after them. None when the file ended first, or at byte
    `split` (where the other process reads on)."""
    tail = None
    chunk: list[bytes] = []
    for line in lines:
        if position == split:
            break
        position += len(line)
        if line.startswith(b"]"):
            tail = line + lines.read()
            break
        chunk.append(line)
        if len(chunk) == _LINES_PER_PARSE:
            _add_lines(chunk, name, snapshot)
            chunk = []
    _add_lines(chunk, name, snapshot)
    return tail


def _add_lines(lines: list[bytes], name: str, snapshot: RawSnapshot) -> None:
    for row in _parsed_lines(lines):
        snapshot.add(row, name)


def _parsed_lines(lines: list[bytes]) -> list[Any]:
    """Rows written one per line (`{...},`), parsed as one array."""
    if not lines:
        return []
    text = b"".join(lines).decode("utf-8").rstrip()
    parsed = json.loads("[" + (text[:-1] if text.endswith(",") else text) + "]")
    if "\\u" in text and _ESCAPED_SURROGATE.search(text):
        parsed = _without_lone_surrogates(parsed)
    if len(parsed) != len(lines):
        raise ValueError("a line holds more or less than one row")
    return list(parsed)


class _OtherPart:
    """The rows of a large file from `split` on, read by a forked process into a snapshot of
    its own and sent back (records pickle as their fields), with the text after the rows."""

    def __init__(self, path: Path, name: str, snapshot: RawSnapshot, split: int) -> None:
        self.split = split
        self._reader = Forked("auditor-snapshot-reader", _read_part, path, name,
                              snapshot.convert, split)

    @classmethod
    def start(cls, path: Path, name: str, snapshot: RawSnapshot,
              rows_start: int) -> _OtherPart | None:
        """The other process, when the file is large, its first row is of a converted type and
        a second CPU and fork are available; else None (this process reads it all)."""
        size = path.stat().st_size
        if size - rows_start < SPLIT_BYTES or not snapshot.convert or available_processes() < 2:
            return None
        with path.open("rb") as lines:
            lines.seek(rows_start)
            first = lines.readline().rstrip().removesuffix(b",")
            lines.seek(rows_start + int((size - rows_start) * _OWN_SHARE))
            lines.readline()  # to the start of the next line
            split = lines.tell()
        try:
            row = json.loads(first)
        except ValueError:
            return None
        if not isinstance(row, dict) or (_item_type(row) or "") not in snapshot.convert:
            return None
        return cls(path, name, snapshot, split)

    def add_into(self, snapshot: RawSnapshot) -> bytes:
        """Add what the other process read to `snapshot`; return the text after the rows.
        ValueError when it could not read its part (the whole file is then read here)."""
        try:
            items, records, other_types, tail = self._reader.result()
        except Exception as e:  # not in the layout, damaged, or the reader died
            raise ValueError(f"the second reader could not read its part: {e}") from None
        for kind, rows in items.items():
            snapshot.items.setdefault(kind, []).extend(rows)
        for kind, made in records.items():
            snapshot.records.setdefault(kind, []).extend(made)
        snapshot.other_types.update(other_types)
        return tail

    def stop(self) -> None:
        """End the other process (done, or no longer needed) and reap it."""
        self._reader.stop()


_Part = tuple[dict[str, list[Any]], dict[str, list[Any]], dict[str, int], bytes]


def _read_part(path: Path, name: str, convert: Mapping[str, Convert], split: int) -> _Part:
    """In the forked process: the rows from `split` to the end of the rows, and the text after
    them; ValueError when they are not in the layout (or truncated)."""
    part = RawSnapshot(convert=convert)
    with path.open("rb") as lines:
        lines.seek(split)
        tail = _add_rows(lines, name, part)
    if tail is None:
        raise ValueError("no end of the rows: truncated")
    return part.items, part.records, part.other_types, bytes(tail)


def _parsed_whole(path: Path) -> Any:
    from auditor.textfile import read_text

    text = read_text(path, "export")
    if not text.strip():
        raise InputError(str(path), "the file is empty",
                         "re-export it (`az ... --output json > FILE`), or remove it")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        if text.lstrip()[:1] not in ("{", "["):
            raise InputError(str(path), "not JSON (it looks like YAML, a table or text)",
                             "export with `--output json`") from e
        raise InputError(
            str(path), f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}",
            "re-export the file; it may be truncated",
        ) from e
    if _ESCAPED_SURROGATE.search(text):
        document = _without_lone_surrogates(document)
    return document


# JSON may escape half of a surrogate pair on its own (`"\ud800"`): valid JSON, but no text
# encoding can write it, so every report writer would fail. Such halves become U+FFFD.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\N{REPLACEMENT CHARACTER}", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v)
                for k, v in value.items()}
    return value


def _rows(document: Any, path: Path, name: str, snapshot: RawSnapshot) -> Iterator[Any]:
    """Yield the items of one export, whatever its shape; note pages that were left behind."""
    if isinstance(document, list):
        yield from document
        return
    if not isinstance(document, dict):
        raise InputError(str(path), "top level is neither a JSON object nor an array",
                         "export with `az ... --output json`")
    if COLLECTION_KEY in document:
        _read_collection(document[COLLECTION_KEY], path, snapshot)
        return
    if "data" in document:  # Resource Graph: REST response or `az graph query` output
        yield from _resource_graph_rows(document, path)
        token = next((document[k] for k in ("$skipToken", "skipToken", "skip_token")
                      if document.get(k)), None)
        truncated = str(document.get("resultTruncated", "false")).lower() == "true"
        if token:
            snapshot.coverage.gaps.append(Gap(
                f"file {name}", "snapshot",
                "holds one page of a larger Resource Graph result (a skip token is present); "
                "export every page (`az graph query --first 1000` and follow --skip-token)"))
        elif truncated:
            snapshot.coverage.gaps.append(Gap(
                f"file {name}", "snapshot", "Resource Graph marked this result truncated"))
        return
    if "value" in document:  # ARM list
        value = document["value"]
        if not isinstance(value, list):
            raise InputError(str(path), "field 'value' is not an array", "export an ARM list")
        yield from value
        if document.get("nextLink"):
            snapshot.coverage.gaps.append(Gap(
                f"file {name}", "snapshot",
                "holds one page of an ARM list (nextLink is set); export every page"))
        return
    if "type" in document or "id" in document or "properties" in document:
        yield document  # a single resource (`az containerapp job show`)
        return
    raise InputError(
        str(path), "not a recognised export shape (expected a Resource Graph result, an ARM list "
        "with 'value', a JSON array or a single resource)",
        "export with `az graph query`, `az containerapp job list` or `... execution list`")


def _resource_graph_rows(document: dict[str, Any], path: Path) -> Iterable[Any]:
    data = document["data"]
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and isinstance(data.get("columns"), list):
        columns = [c.get("name") if isinstance(c, dict) else None for c in data["columns"]]
        rows = data.get("rows")
        if not isinstance(rows, list) or not all(isinstance(c, str) for c in columns):
            raise InputError(str(path), "table-format 'data' needs 'columns' names and 'rows'",
                             "re-export with resultFormat objectArray")
        return [dict(zip(columns, r, strict=False)) for r in rows if isinstance(r, list)]
    raise InputError(str(path), "field 'data' is neither an array nor a table",
                     "export with `az graph query -q ...`")


def _read_collection(record: Any, path: Path, snapshot: RawSnapshot) -> None:
    try:
        if record["format"] != SNAPSHOT_FORMAT:
            raise InputError(str(path), f"snapshot format {record['format']!r} is not supported",
                             f"use a snapshot written with format {SNAPSHOT_FORMAT}")
        snapshot.coverage.merge(Coverage.from_dict(record["coverage"]))
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(str(path), f"collection record is malformed ({e!r})",
                         "remove the file or restore it from the original scan") from e
    snapshot.collection = record if snapshot.collection is None else \
        _combined(snapshot.collection, record)


def _combined(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two collection records in one snapshot (merged shards): the execution history of both,
    sources united and the window spanning both; everything else from the first."""
    histories = [h for h in (first.get("history"), second.get("history")) if isinstance(h, dict)]
    if len(histories) < 2:
        return {**first, "history": histories[0]} if histories else first
    a, b = histories
    sources: dict[str, Any] = {}
    for history in (a, b):
        if isinstance(history.get("sources"), dict):
            sources.update(history["sources"])
    window = a.get("window")
    try:
        ends = [(datetime.fromisoformat(str(w["since"]).replace("Z", "+00:00")),
                 datetime.fromisoformat(str(w["until"]).replace("Z", "+00:00")))
                for w in (a["window"], b["window"])]
        window = {"since": min(s for s, _ in ends).isoformat(),
                  "until": max(u for _, u in ends).isoformat()}
    except (KeyError, TypeError, ValueError):
        pass
    return {**first, "history": {**a, "sources": sources, "window": window}}


def write_json_atomic(path: Path, document: Any, *, private: bool = False,
                      texts: Iterable[bytes | memoryview] | None = None) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file. `texts`:
    the rows of `document["data"]`, already encoded (`write_row_texts`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            _dump(document, out, texts)
            out.write(b"\n")
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# orjson writes what `json.dump(..., default=str)` would, twenty times faster: datetimes and
# dataclasses still go through str(), keys that are not strings are converted as json does
# (`_encoded`).
_ORJSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _dump(document: Any, out: BinaryIO, texts: Iterable[bytes | memoryview] | None = None
          ) -> None:
    """Indented JSON, except that rows (a `data` array) are written one per line, the layout
    `_rows_by_line` reads back a chunk at a time. `texts`: the rows already encoded, each text
    one row or several joined by ROW_SEPARATOR (`data` then only holds their place)."""
    rows = document.get("data") if isinstance(document, dict) else None
    if texts is None:
        if not isinstance(rows, list) or not rows:
            out.write(_encoded(document, orjson.OPT_INDENT_2))
            return
        texts = _row_texts(rows)
    out.write(b"{")
    for index, (key, value) in enumerate(document.items()):
        out.write(b"%s\n%s: " % (b"," if index else b"", _encoded(str(key), 0)))
        if value is not rows:
            out.write(_encoded(value, 0))
            continue
        out.write(b"[")
        separator = b"\n"
        for text in texts:
            out.write(separator)
            out.write(text)
            separator = ROW_SEPARATOR
        out.write(b"\n]")
    out.write(b"\n}")


# Between two rows of a `data` array as the snapshot writes it: one row per line.
ROW_SEPARATOR = b",\n"


def _row_texts(rows: list[Any]) -> Iterator[bytes]:
    """The rows encoded, a chunk at a time: the whole text would double memory."""
    for start in range(0, len(rows), 1024):
        yield ROW_SEPARATOR.join(_encoded(row, 0) for row in rows[start:start + 1024])


def encoded_row(row: Any) -> bytes:
    """One row as the snapshot writes it, for a collector that encodes its rows itself."""
    return _encoded(row, 0)


def _encoded(value: Any, option: int) -> bytes:
    """`value` as UTF-8 JSON. Keys that are not strings (orjson's option for them makes every
    call slower, and rows never have them) get a second try with it; what orjson refuses even
    then (integers beyond 64 bits, a lone surrogate, valid in JSON from Azure but not encodable)
    goes through the json module, which writes the surrogate as its escape `\\udxxx`, so the
    file reads back exactly as Azure sent it."""
    try:
        return orjson.dumps(value, default=str, option=option | _ORJSON)
    except orjson.JSONEncodeError:
        pass
    try:
        return orjson.dumps(value, default=str, option=option | _ORJSON | orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        text = json.dumps(value, indent=2 if option & orjson.OPT_INDENT_2 else None,
                          ensure_ascii=False, default=str)
        return text.encode("utf-8", errors="backslashreplace")


def write_rows(folder: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    """Write collected rows as an `az graph query` result, the shape `read_snapshot` reads.

    The snapshot holds what Azure returned, so it is written owner-only.
    """
    return _write_rows(folder, name, len(rows), rows, None)


def write_row_texts(folder: Path, name: str, count: int,
                    texts: Iterable[bytes | memoryview]) -> Path:
    """`write_rows` for `count` rows already encoded (`encoded_row`), in order: each text one
    row or several joined by ROW_SEPARATOR. The same bytes as `write_rows`."""
    if not count:
        return write_rows(folder, name, [])
    return _write_rows(folder, name, count, [], texts)


def _write_rows(folder: Path, name: str, count: int, rows: list[dict[str, Any]],
                texts: Iterable[bytes | memoryview] | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / f"{name}.json"
    write_json_atomic(
        path, {"count": count, "data": rows, "skip_token": None, "total_records": count},
        private=True, texts=texts,
    )
    return path


def write_collection(folder: Path, record: dict[str, Any], coverage: Coverage) -> Path:
    """Record what a live collection asked for and what it could not read."""
    path = folder / COLLECTION_FILE
    write_json_atomic(
        path,
        {COLLECTION_KEY: {"format": SNAPSHOT_FORMAT, **record, "coverage": coverage.to_dict()}},
        private=True,
    )
    return path
