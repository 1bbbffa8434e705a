"""Reports written partly in a forked worker: the same bytes, and failures never lost."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import reports
from auditor.results import ScanReport
from reports.manifest import file_entries
from reports.workers import WorkerFailed

MakeReport = Callable[..., ScanReport]


def _staging(root: Path, name: str) -> Path:
    folder = root / name
    (folder / "snapshot").mkdir(parents=True)
    (folder / "snapshot" / "jobs.json").write_text('{"data": []}\n', encoding="utf-8")
    return folder


def test_a_worker_writes_the_same_files_as_one_process(make_report: MakeReport,
                                                       tmp_path: Path) -> None:
    alone, shared = _staging(tmp_path, "alone"), _staging(tmp_path, "shared")
    written_alone = reports.write_all(make_report(), alone, processes=1)
    written_shared = reports.write_all(make_report(), shared, processes=2)
    assert [p.relative_to(alone) for p in written_alone] == [
        p.relative_to(shared) for p in written_shared]
    entries = {e["path"]: e["sha256"] for e in file_entries(alone)}
    assert entries.keys() == {e["path"] for e in file_entries(shared)}
    assert len(entries) > 10  # every report, the owners' and the evidence
    for entry in file_entries(shared):
        if entry["path"] == "report.xlsx":  # stamped with the time it was saved
            assert _xlsx_parts(alone / "report.xlsx") == _xlsx_parts(shared / "report.xlsx")
        else:
            assert entry["sha256"] == entries[entry["path"]], entry["path"]
    assert not multiprocessing.active_children()


def _xlsx_parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as book:
        return {name: book.read(name) for name in book.namelist() if name != "docProps/core.xml"}


def _disk_full(report: ScanReport, folder: Path) -> Path:
    raise OSError(28, "No space left on device")


def _killed(report: ScanReport, folder: Path) -> Path:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def test_the_workers_error_is_raised_by_the_scan(make_report: MakeReport, folder: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports, "SECOND", (reports.write_sarif, _disk_full))
    with pytest.raises(OSError, match="No space left") as raised:
        reports.write_all(make_report(), folder, processes=2)
    assert raised.value.errno == 28
    assert not (folder / "manifest.json").exists()
    assert not multiprocessing.active_children()


def test_a_worker_that_dies_fails_the_scan(make_report: MakeReport, folder: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports, "SECOND", (_killed,))
    with pytest.raises(WorkerFailed, match="exit code -9"):
        reports.write_all(make_report(), folder, processes=2)
    assert not (folder / "manifest.json").exists()


def _slow(report: ScanReport, folder: Path) -> Path:
    (folder / "started").touch()
    signal.pause()  # until stopped
    raise AssertionError("unreachable")


def test_a_failing_scan_stops_its_worker(make_report: MakeReport, folder: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def first_fails(report: ScanReport, folder: Path) -> Path:
        deadline = time.monotonic() + 30
        while not (folder / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        raise KeyboardInterrupt

    monkeypatch.setattr(reports, "FIRST", (first_fails,))
    monkeypatch.setattr(reports, "SECOND", (_slow,))
    with pytest.raises(KeyboardInterrupt):
        reports.write_all(make_report(), folder, processes=2)
    assert not multiprocessing.active_children()
