"""Reports written partly in a forked worker: the same bytes, and failures never lost."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import auditor.scan
import reports
from auditor.forking import ForkedFailed
from auditor.results import ScanReport
from auditor.scan import ScanRequest, run_scan
from auditor.settings import load_settings
from reports.finops import PricedEstate
from reports.manifest import file_entries

MakeReport = Callable[..., ScanReport]


def _staging(root: Path, name: str) -> Path:
    folder = root / name
    (folder / "snapshot").mkdir(parents=True)
    (folder / "snapshot" / "jobs.json").write_text('{"data": []}\n', encoding="utf-8")
    return folder


def _early(report: ScanReport, folder: Path) -> reports.Worker[reports.Priced] | None:
    return reports.start_early(PricedEstate(report.settings, report.cost), folder, processes=2)


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory: pytest.TempPathFactory) -> ScanReport:
    """The sample estate, priced: the cost export has rows to write."""
    out = tmp_path_factory.mktemp("sample") / "out"
    report = run_scan(ScanRequest(source="sample", out=out, settings=load_settings(),
                                  report_processes=1))
    assert report.cost is not None and report.cost.jobs
    return report


@pytest.mark.parametrize("early", [False, True], ids=["cost-export-later", "cost-export-early"])
def test_a_worker_writes_the_same_files_as_one_process(sample_report: ScanReport,
                                                       tmp_path: Path, early: bool) -> None:
    alone, shared = _staging(tmp_path, "alone"), _staging(tmp_path, "shared")
    written_alone = reports.write_all(sample_report, alone, processes=1)
    written_shared = reports.write_all(
        sample_report, shared, processes=2,
        early=_early(sample_report, shared) if early else None)
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
    with pytest.raises(ForkedFailed, match=r"report-writer process ended .* \(exit code -9\)"):
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


def test_the_early_workers_error_is_raised_by_the_scan(make_report: MakeReport, folder: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports, "EARLY", (_disk_full,))
    report = make_report()
    early = _early(report, folder)
    assert early is not None
    with pytest.raises(OSError, match="No space left"):
        reports.write_all(report, folder, processes=2, early=early)
    assert (folder / "findings.json").exists()  # written while the early worker ended
    assert not (folder / "report.html").exists()  # the second worker was never started
    assert not (folder / "manifest.json").exists()
    assert not multiprocessing.active_children()


def test_the_second_worker_starts_once_the_early_one_is_done(make_report: MakeReport,
                                                             folder: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """Never three processes at once: each would hold its own copy of the pages it touches."""
    def early_writer(report: object, folder: Path) -> Path:
        time.sleep(0.5)  # still writing when the scan's reports begin
        return _touched(folder / "early.done")

    def second_writer(report: ScanReport, folder: Path) -> Path:
        saw = "saw" if (folder / "early.done").exists() else "missed"
        return _touched(folder / f"second-{saw}-early")

    monkeypatch.setattr(reports, "EARLY", (early_writer,))
    monkeypatch.setattr(reports, "SECOND", (second_writer,))
    report = make_report()

    written = reports.write_all(report, folder, processes=2, early=_early(report, folder))

    assert [p.name for p in written] == ["findings.json", "report.xlsx", "second-saw-early",
                                         "early.done", "manifest.json"]


def _touched(path: Path) -> Path:
    path.touch()
    return path


def test_a_scan_failing_in_its_checks_stops_the_early_worker(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    started = tmp_path / "early-started"  # outside the staging folder, which is discarded

    def slow(report: object, folder: Path) -> Path:
        started.touch()
        signal.pause()  # until stopped
        raise AssertionError("unreachable")

    def checks_fail(*args: object, **kwargs: object) -> None:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        raise KeyboardInterrupt

    monkeypatch.setattr(reports, "EARLY", (slow,))
    monkeypatch.setattr(auditor.scan, "evaluate", checks_fail)
    monkeypatch.setattr(reports, "available_processes", lambda: 2)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_scan(ScanRequest(source="sample", out=out, settings=load_settings()))
    assert started.exists(), "the early worker had started"
    assert not multiprocessing.active_children()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["early-started"]  # nothing staged


def test_what_both_processes_read_is_derived_once_before_the_fork(
        sample_report: ScanReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The executions' health per job is read by report.md (the worker) and the workbook (the
    scan): worked out once, before the worker forks."""
    from reports import finops

    calls = tmp_path / "health-calls"
    derive = finops._health

    def counted(of: ScanReport) -> list[finops.Health]:
        if of is report:  # not the owners' reports, each over its own jobs
            with calls.open("a") as log:
                log.write(f"{os.getpid()}\n")
        return derive(of)

    monkeypatch.setattr(finops, "_health", counted)
    report = dataclasses.replace(sample_report)  # a fresh memo

    reports.write_all(report, _staging(tmp_path, "out"), processes=2)

    assert calls.read_text().splitlines() == [str(os.getpid())]
