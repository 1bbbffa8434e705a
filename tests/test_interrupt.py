"""Interrupting a scan, for real: a subprocess `auditor scan` killed mid-collection.

A Container Apps job that reaches its replicaTimeout gets SIGTERM (then SIGKILL); a person presses
Ctrl-C. Either way no half-written report may be left: the report folder keeps the previous
reports untouched, the staging folder is gone, and the output lock is released. A second scan of
the same folder while one runs is refused with one line and exit 2, and cannot corrupt anything.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.cli import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, main
from auditor.output import lock_path
from tests.azure_server import (
    AzureServer,
    Fault,
    environment_row,
    graph_query,
    job_row,
    serve,
    subscription_id,
)

SUB = subscription_id(0x51)
AS_OF = "2025-06-01T00:00:00Z"
OLD = {"report.md": "# the previous reports\n", "findings.json": '{"previous": true}\n'}


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AzureServer]:
    with serve(monkeypatch, tmp_path) as server:
        server.resource_graph.add_subscription(SUB)
        server.resource_graph.add("resources", job_row(SUB, "nightly"), environment_row(SUB))
        yield server


def _previous_reports(out: Path) -> None:
    out.mkdir()
    for name, text in OLD.items():
        (out / name).write_text(text)


def _scan_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "auditor", "scan", "--auth", "cli", "--subscription", SUB,
            "--as-of", AS_OF, "--out", str(out)]


def _start(out: Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(_scan_command(out), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def _wait_for(fault: Fault, process: subprocess.Popen[str]) -> None:
    """Until the scan is stuck in the slow request (or fails early, which the test reports)."""
    for _ in range(600):
        if fault.arrived.wait(0.1):
            return
        if process.poll() is not None:
            pytest.fail(f"the scan ended before the slow request: {process.communicate()}")
    pytest.fail("the scan never reached the slow request")


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir()
                  if p.name.startswith(f".{out.name}.partial-") or p == lock_path(out))


def test_sigterm_mid_scan_leaves_the_previous_reports_and_a_second_scan_is_refused(
        azure: AzureServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports"
    _previous_reports(out)
    slow = azure.faults.delay(graph_query("microsoft.app/jobs"), seconds=60)
    process = _start(out, tmp_path)
    try:
        _wait_for(slow, process)
        assert _leftovers(out), "the running scan stages beside the folder and holds its lock"

        # A second scan of the same folder while the first runs: refused, in one line.
        code = main(["scan", "--auth", "cli", "--subscription", SUB, "--as-of", AS_OF,
                     "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == EXIT_USAGE
        assert len(err) == 1 and f"another scan is writing to {out}" in err[0], err
        assert str(lock_path(out)) in err[0]

        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == EXIT_TERMINATED, stderr
    assert "terminated (SIGTERM)" in stderr
    assert "Traceback" not in stderr
    assert {p.name: p.read_text() for p in out.iterdir()} == OLD  # untouched
    assert _leftovers(out) == []  # staging discarded, lock released and removed

    # The folder is free again: the next scan writes complete reports.
    assert main(["scan", "--auth", "cli", "--subscription", SUB, "--as-of", AS_OF,
                 "--out", str(out)]) in (0, 1)
    assert json.loads((out / "findings.json").read_text())["scan"]["complete"] is True
    assert _leftovers(out) == []


def test_ctrl_c_mid_scan_leaves_the_previous_reports(azure: AzureServer,
                                                     tmp_path: Path) -> None:
    out = tmp_path / "reports"
    _previous_reports(out)
    slow = azure.faults.delay(graph_query("microsoft.app/jobs"), seconds=60)
    process = _start(out, tmp_path)
    try:
        _wait_for(slow, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert {p.name: p.read_text() for p in out.iterdir()} == OLD
    assert _leftovers(out) == []


def test_a_killed_scan_leaves_nothing_that_blocks_or_pollutes_the_next(
        azure: AzureServer, tmp_path: Path) -> None:
    """SIGKILL cannot be handled: the staging folder stays, but the kernel drops the lock, and
    the next scan of the folder removes what the killed one left."""
    out = tmp_path / "reports"
    slow = azure.faults.delay(graph_query("microsoft.app/jobs"), seconds=60)
    process = _start(out, tmp_path)
    try:
        _wait_for(slow, process)
        process.kill()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert not out.exists()
    assert any(".partial-" in name for name in _leftovers(out))

    assert main(["scan", "--auth", "cli", "--subscription", SUB, "--as-of", AS_OF,
                 "--out", str(out)]) in (0, 1)
    assert _leftovers(out) == []
    assert (out / "manifest.json").is_file()


def test_sigterm_is_handled_only_while_main_runs() -> None:
    before = signal.getsignal(signal.SIGTERM)
    assert main(["checks", "--format", "json"]) == 0
    assert signal.getsignal(signal.SIGTERM) == before


def test_an_interrupt_while_the_history_store_records_leaves_it_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The store takes a scan and its findings in one transaction: SIGTERM half way through the
    insert rolls all of it back (the reports, already published, stay complete)."""
    import sqlite3

    from auditor import history
    from auditor.cli import Terminated

    store = tmp_path / "history.sqlite"
    assert main(["scan", "--sample", "--history", str(store), "--as-of", AS_OF,
                 "--out", str(tmp_path / "first")]) == 1

    def counts() -> tuple[int, int]:
        with sqlite3.connect(store) as db:
            return (db.execute("SELECT COUNT(*) FROM scans").fetchone()[0],
                    db.execute("SELECT COUNT(*) FROM findings").fetchone()[0])

    before = counts()

    class InterruptedMidInsert:
        def __init__(self, db: sqlite3.Connection) -> None:
            self._db = db

        def __getattr__(self, name: str) -> object:
            return getattr(self._db, name)

        def executemany(self, *args: object) -> object:
            self._db.executemany(*args)  # type: ignore[arg-type]
            raise Terminated()  # the findings are in, the transaction not yet committed

    real_enter = history.HistoryStore.__enter__

    def enter(self: history.HistoryStore) -> history.HistoryStore:
        entered = real_enter(self)
        self._db = InterruptedMidInsert(self._db)  # type: ignore[assignment]
        return entered

    monkeypatch.setattr(history.HistoryStore, "__enter__", enter)
    second = tmp_path / "second"
    assert main(["scan", "--sample", "--history", str(store), "--as-of", AS_OF,
                 "--out", str(second)]) == EXIT_TERMINATED
    monkeypatch.undo()

    assert counts() == before  # nothing of the interrupted scan was recorded
    assert (second / "manifest.json").is_file()  # its reports were published before, complete
    assert "terminated (SIGTERM)" in capsys.readouterr().err
