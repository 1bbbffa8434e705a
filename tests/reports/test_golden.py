"""Reproducible reports: one snapshot, settings, waivers and --as-of give the same bytes.

The golden files in tests/reports/golden/expected/ are what a person reviewed; a change to any
report shows up here as a diff to review again. After an intended change, regenerate them with

    AUDITOR_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/reports/test_golden.py

and read the diff (`git diff tests/reports/golden/`) before committing it. The fixture is
tests/reports/golden/snapshot/jobs.json (three jobs, one named like a spreadsheet formula) with
tests/reports/golden/waivers.toml (one waiver that applies).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditor.scan import ScanRequest, run_scan
from auditor.settings import load_settings

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = GOLDEN / "expected"
FILES = ("report.md", "findings.json", "findings.sarif", "findings.csv")
AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
CLOCK = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)
VERSION = "0.0.0+golden"


def scan(out: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fixture scanned with paths relative to golden/ (reports name the paths they read)."""
    monkeypatch.chdir(GOLDEN)
    request = ScanRequest(source="snapshot", out=out, settings=load_settings(),
                          snapshot=Path("snapshot"), as_of=AS_OF, waivers=Path("waivers.toml"))
    run_scan(request, clock=lambda: CLOCK, tool_version=VERSION)
    return out


def test_two_scans_of_one_input_give_identical_bytes(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    first = scan(tmp_path / "first", monkeypatch)
    second = scan(tmp_path / "second", monkeypatch)
    for name in FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_a_different_start_time_is_a_different_scan(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan id derives from the clock too: two real runs are never the same scan."""
    monkeypatch.chdir(GOLDEN)
    ids = []
    for minute in (30, 31):
        request = ScanRequest(source="snapshot", out=tmp_path / str(minute),
                              settings=load_settings(), snapshot=Path("snapshot"), as_of=AS_OF)
        moment = CLOCK.replace(minute=minute)
        ids.append(run_scan(request, clock=lambda m=moment: m, tool_version=VERSION).info.id)
    assert ids[0] != ids[1]


@pytest.mark.parametrize("name", FILES)
def test_reports_match_the_reviewed_golden_files(name: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = scan(tmp_path / "out", monkeypatch)
    written = (out / name).read_bytes()
    if os.environ.get("AUDITOR_UPDATE_GOLDEN") == "1":
        EXPECTED.mkdir(exist_ok=True)
        (EXPECTED / name).write_bytes(written)
        pytest.skip(f"rewrote {EXPECTED / name}: review the diff")
    assert (EXPECTED / name).exists(), "run with AUDITOR_UPDATE_GOLDEN=1 to create it"
    assert written == (EXPECTED / name).read_bytes(), (
        f"{name} differs from tests/reports/golden/expected/{name}; if the change is intended, "
        "regenerate with AUDITOR_UPDATE_GOLDEN=1 (see this module's docstring) and review it")
