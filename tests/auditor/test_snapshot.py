from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import signal
from pathlib import Path
from typing import Any

import pytest

from auditor import snapshot
from auditor.coverage import Coverage, Gap
from auditor.errors import InputError
from auditor.normalize import NORMALIZED_WHILE_READING
from auditor.snapshot import (
    ENVIRONMENTS,
    EXECUTIONS,
    JOBS,
    read_snapshot,
    write_collection,
    write_rows,
)
from tests.factories import job_row


def write(folder: Path, name: str, document: object) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


def test_items_are_told_apart_by_type_not_file_name(tmp_path: Path) -> None:
    env = {"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.App/managedEnvironments/e",
           "type": "Microsoft.App/managedEnvironments", "properties": {}}
    write(tmp_path, "environments.json", [job_row("a")])
    write(tmp_path, "nested/jobs.json", {"value": [env, job_row("b")], "nextLink": None})
    write(tmp_path, "other.json", [{"id": "/x", "type": "Microsoft.Storage/storageAccounts"},
                                   {"id": "/y", "type": "MICROSOFT.STORAGE/STORAGEACCOUNTS"},
                                   {"name": "no type at all"}])
    snapshot = read_snapshot(tmp_path)
    assert [i.row["name"] for i in snapshot.items[JOBS]] == ["a", "b"]
    assert len(snapshot.items[ENVIRONMENTS]) == 1
    assert snapshot.other_types == {"microsoft.storage/storageaccounts": 2, "(no type)": 1}
    assert snapshot.files == ["environments.json", "nested/jobs.json", "other.json"]
    assert snapshot.coverage.complete


def test_type_is_case_insensitive(tmp_path: Path) -> None:
    write(tmp_path, "x.json", [job_row("a", type="MICROSOFT.APP/JOBS"),
                               job_row("b", type="microsoft.app/jobs")])
    assert len(read_snapshot(tmp_path).items[JOBS]) == 2


def test_source_file_is_kept_for_evidence(tmp_path: Path) -> None:
    write(tmp_path, "prod/jobs.json", [job_row()])
    assert read_snapshot(tmp_path).items[JOBS][0].source == "prod/jobs.json"


@pytest.mark.parametrize("document", [
    pytest.param({"count": 1, "data": [job_row()], "skip_token": "abc", "total_records": 9},
                 id="az-graph-query-with-skip-token"),
    pytest.param({"count": 1, "data": [job_row()], "$skipToken": "abc", "totalRecords": 9,
                  "resultTruncated": "false"}, id="rest-with-skip-token"),
    pytest.param({"count": 1, "data": [job_row()], "resultTruncated": "true"},
                 id="rest-truncated"),
    pytest.param({"value": [job_row()], "nextLink": "https://management.azure.com/next"},
                 id="arm-list-with-next-link"),
])
def test_partial_exports_make_the_scan_incomplete(tmp_path: Path, document: object) -> None:
    write(tmp_path, "page1.json", document)
    snapshot = read_snapshot(tmp_path)
    assert len(snapshot.items[JOBS]) == 1, "the rows that are there are still read"
    assert not snapshot.coverage.complete
    (gap,) = snapshot.coverage.gaps
    assert gap.scope == "file page1.json"


def test_execution_list_from_rest_has_no_type(tmp_path: Path) -> None:
    write(tmp_path, "x.json", {"value": [{"name": "e1", "properties": {
        "status": "Succeeded", "startTime": "2026-01-01T00:00:00Z"}}], "nextLink": None})
    assert len(read_snapshot(tmp_path).items[EXECUTIONS]) == 1


@pytest.mark.parametrize(("content", "message"), [
    pytest.param('{"value": [', "invalid JSON at line 1", id="truncated"),
    pytest.param('"just a string"', "neither a JSON object nor an array", id="scalar"),
    pytest.param('{"hello": 1}', "not a recognised export shape", id="unknown-object"),
    pytest.param('{"value": 3}', "'value' is not an array", id="value-not-list"),
    pytest.param('{"data": 3}', "neither an array nor a table", id="data-not-list"),
    pytest.param(b"\xff\xfe\x00bad", "not UTF-8", id="binary"),
])
def test_bad_files_name_the_file_and_a_fix(tmp_path: Path, content: str | bytes,
                                           message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError) as raised:
        read_snapshot(tmp_path)
    assert str(path) in str(raised.value) and message in str(raised.value)
    assert raised.value.fix


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_snapshot(tmp_path / "nope")
    with pytest.raises(InputError, match=r"no \.json files"):
        read_snapshot(tmp_path)
    write(tmp_path, "f.json", [])
    with pytest.raises(InputError, match="not a folder"):
        read_snapshot(tmp_path / "f.json")


def test_written_snapshot_reads_back_with_its_coverage(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "snap", "resource-graph-jobs", [job_row("a"), job_row("b")])
    assert path.stat().st_mode & 0o077 == 0, "raw evidence is owner-only"
    coverage = Coverage(gaps=[Gap("subscription 123", "resource-graph:jobs", "403")])
    write_collection(tmp_path / "snap", {"cloud": "AzureCloud"}, coverage)
    snapshot = read_snapshot(tmp_path / "snap")
    assert len(snapshot.items[JOBS]) == 2
    assert snapshot.collection is not None and snapshot.collection["cloud"] == "AzureCloud"
    assert snapshot.coverage.gaps == coverage.gaps
    assert not snapshot.coverage.complete


def test_malformed_collection_record(tmp_path: Path) -> None:
    write(tmp_path, "collection.json", {"auditor_collection": {"format": 1}})
    with pytest.raises(InputError, match="collection record is malformed"):
        read_snapshot(tmp_path)


def _rows_read(folder: Path) -> list[object]:
    return [item.row for items in read_snapshot(folder).items.values() for item in items]


@pytest.mark.parametrize("count", [1, 2, 4097])
def test_rows_written_one_per_line_read_back_as_written(tmp_path: Path, count: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The line-at-a-time reader gives exactly what parsing the whole file gives."""
    rows = [job_row(f"job-{i}", tags={"note": f"é, \"quoted\" ]\n{i}", "lone": "\ud800"})
            for i in range(count)]
    path = write_rows(tmp_path / "snap", "resource-graph-jobs", rows)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == count + 7, "one row per line, the layout the fast reader takes"
    with monkeypatch.context() as patched:
        patched.setattr(snapshot, "_parsed_whole", None)  # the file is not parsed whole
        read = _rows_read(tmp_path / "snap")
    whole = json.loads(path.read_text(encoding="utf-8"))["data"]
    assert len(read) == count
    replaced = "\N{REPLACEMENT CHARACTER}"
    assert read[0] == {**whole[0], "tags": {**whole[0]["tags"], "lone": replaced}}
    assert [r["name"] for r in read] == [r["name"] for r in whole]  # type: ignore[index]


def test_rows_orjson_refuses_are_written_as_the_json_module_writes_them(tmp_path: Path) -> None:
    rows = [job_row("a"), job_row("b", tags={"lone": "\ud800", "big": 2**70}), {1: "x", None: 2}]

    written = json.loads(write_rows(tmp_path, "r", rows).read_text(encoding="utf-8"))["data"]

    assert written == json.loads(json.dumps(rows))  # keys that are not strings as json has them


@pytest.mark.parametrize(("edit", "message"), [
    pytest.param(lambda text: text.replace('"name":"job-1"', '"name":job-1', 1),
                 "invalid JSON at line 5", id="bad-row"),
    pytest.param(lambda text: text[:text.rindex("]")], "invalid JSON", id="truncated"),
    pytest.param(lambda text: text.replace('"data": [\n', '"data": 7, "x": [\n'),
                 "neither an array nor a table", id="data-not-rows"),
])
def test_a_damaged_row_file_gets_the_whole_file_error(tmp_path: Path, edit: Any,
                                                       message: str) -> None:
    path = write_rows(tmp_path, "rows", [job_row("job-0"), job_row("job-1"), job_row("job-2")])
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(InputError, match=message) as raised:
        read_snapshot(tmp_path)
    assert str(path) in str(raised.value)


def test_two_rows_on_one_line_are_both_read(tmp_path: Path) -> None:
    path = write_rows(tmp_path, "rows", [job_row("a"), job_row("b"), job_row("c")])
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("},\n{", "}, {", 1), encoding="utf-8")
    assert [r["name"] for r in _rows_read(tmp_path)] == ["a", "b", "c"]  # type: ignore[index]


def _names_and_files(row: dict[str, Any], source: str) -> tuple[str, str]:
    return row["name"], source


@pytest.mark.parametrize("lines_per_parse", [1, 2, 4096])
def test_rows_of_a_converted_type_are_kept_as_records(tmp_path: Path, lines_per_parse: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot, "_LINES_PER_PARSE", lines_per_parse)
    write_rows(tmp_path, "rows", [job_row("a"), job_row("b"), job_row("c")])
    write(tmp_path, "more.json", [job_row("d")])  # a file read whole is converted alike
    read = read_snapshot(tmp_path, convert={JOBS: _names_and_files})
    assert read.records[JOBS] == [("d", "more.json"), ("a", "rows.json"), ("b", "rows.json"),
                                  ("c", "rows.json")]
    assert read.items[JOBS] == []
    assert [r.rows for r in read.coverage.reads] == [1, 3]


def test_a_file_found_in_another_layout_midway_is_not_counted_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows converted from the first chunks are dropped when a later chunk sends the file to
    the whole-file reader."""
    monkeypatch.setattr(snapshot, "_LINES_PER_PARSE", 1)
    path = write_rows(tmp_path, "rows", [job_row(n) for n in "abcd"])
    text = path.read_text(encoding="utf-8")
    path.write_text(text[:text.rindex("},\n{")] + "}, {" + text[text.rindex("},\n{") + 4:],
                    encoding="utf-8")  # the last two rows on one line
    read = read_snapshot(tmp_path, convert={JOBS: _names_and_files})
    assert [name for name, _ in read.records[JOBS]] == ["a", "b", "c", "d"]
    assert [r.rows for r in read.coverage.reads] == [4]


def _execution_row(number: int) -> dict[str, Any]:
    job = f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/jobs/job-{number % 7}"
    return {"id": f"{job}/executions/run-{number}", "name": f"run-{number}",
            "type": "Microsoft.App/jobs/executions",
            "properties": {"status": "Failed" if number % 5 else "Succeeded",
                           "startTime": f"2025-05-{1 + number % 28:02}T02:00:00+00:00",
                           "endTime": None, "reason": "é \\ \" ]\n" if number % 3 else None}}


def _read_by_two(monkeypatch: pytest.MonkeyPatch, share: float) -> list[int]:
    """Have every large-enough file read by two processes; the splits made, as a list."""
    if snapshot.available_processes() < 2:
        pytest.skip("the second reader needs fork and a second CPU")
    monkeypatch.setattr(snapshot, "SPLIT_BYTES", 1)
    monkeypatch.setattr(snapshot, "_OWN_SHARE", share)
    monkeypatch.setattr(snapshot, "_LINES_PER_PARSE", 7)
    splits: list[int] = []
    start = snapshot._OtherPart.start.__func__  # type: ignore[attr-defined]

    def spied(cls: type, *args: Any) -> Any:
        other = start(cls, *args)
        splits.extend([other.split] if other else [])
        return other

    monkeypatch.setattr(snapshot._OtherPart, "start", classmethod(spied))
    return splits


@pytest.mark.parametrize("share", [0.0, 0.3, 0.55, 0.999])
def test_a_large_file_read_by_two_processes_reads_as_read_by_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, share: float) -> None:
    rows = [_execution_row(n) for n in range(300)]
    path = write_rows(tmp_path, "executions", rows)
    one = read_snapshot(tmp_path, convert=NORMALIZED_WHILE_READING)

    splits = _read_by_two(monkeypatch, share)
    two = read_snapshot(tmp_path, convert=NORMALIZED_WHILE_READING)

    assert len(splits) == 1 and 0 < splits[0] < path.stat().st_size
    assert two.records[EXECUTIONS] == one.records[EXECUTIONS]
    assert [e.name for e in two.records[EXECUTIONS]] == [f"run-{n}" for n in range(300)]
    assert two.coverage.reads == one.coverage.reads
    assert pickle.loads(pickle.dumps(one.records[EXECUTIONS][1])) == one.records[EXECUTIONS][1]


@pytest.mark.parametrize("damaged", [3, 290], ids=["in-this-part", "in-the-other-part"])
def test_a_damaged_row_in_either_part_gets_the_whole_file_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damaged: int) -> None:
    path = write_rows(tmp_path, "executions", [_execution_row(n) for n in range(300)])
    path.write_text(path.read_text(encoding="utf-8").replace(
        f'"name":"run-{damaged}"', f'"name":run-{damaged}', 1), encoding="utf-8")
    with pytest.raises(InputError) as by_one:
        read_snapshot(tmp_path, convert=NORMALIZED_WHILE_READING)

    splits = _read_by_two(monkeypatch, 0.5)
    with pytest.raises(InputError) as by_two:
        read_snapshot(tmp_path, convert=NORMALIZED_WHILE_READING)

    assert splits and str(by_two.value) == str(by_one.value)
    assert f"invalid JSON at line {damaged + 4}" in str(by_two.value)


def _killed(*args: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_second_reader_that_dies_leaves_the_file_to_this_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_rows(tmp_path, "executions", [_execution_row(n) for n in range(300)])
    one = read_snapshot(tmp_path, convert=NORMALIZED_WHILE_READING)

    splits = _read_by_two(monkeypatch, 0.5)
    monkeypatch.setattr(snapshot, "_read_part", _killed)
    two = read_snapshot(tmp_path, convert=NORMALIZED_WHILE_READING)

    assert splits and two.records[EXECUTIONS] == one.records[EXECUTIONS]
    assert two.coverage.reads == one.coverage.reads
    assert not multiprocessing.active_children()


def test_rows_that_are_not_converted_are_read_by_one_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows kept as rows would cost as much to send back as to read."""
    write_rows(tmp_path, "executions", [_execution_row(n) for n in range(50)])
    splits = _read_by_two(monkeypatch, 0.5)

    read = read_snapshot(tmp_path, convert={JOBS: _names_and_files})

    assert splits == [] and len(read.items[EXECUTIONS]) == 50
