"""findings.csv: the Findings sheet's columns, UTF-8 with a BOM, and no cell a spreadsheet runs."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pytest

from auditor.model import Job
from auditor.results import ScanReport
from auditor.waivers import Waiver
from reports.csv_report import cell, write_csv
from reports.tables import findings

MakeJob = Callable[..., Job]
MakeReport = Callable[..., ScanReport]
MakeWaiver = Callable[..., Waiver]

HOSTILE = ['=HYPERLINK("http://evil.example","click")', "+1+1", "-2+3", "@SUM(A1:A2)",
           "\t=1+1", "\r=1+1"]


def read(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))


def test_columns_are_the_findings_sheet(make_report: MakeReport, tmp_path: Path) -> None:
    report = make_report()
    path = write_csv(report, tmp_path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "a BOM, so Excel reads UTF-8"
    assert raw.endswith(b'"\r\n')  # RFC 4180 line ends; newlines inside a cell stay quoted
    header = next(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert header == [c.header for c in findings(report).columns]
    rows = read(path)
    assert [(r["Check"], r["Resource name"], r["Status"]) for r in rows] == [
        (r.check.id, r.job.name, r.status.value) for r in report.findings]


def test_values_waiver_and_multiline_evidence(make_report: MakeReport, make_waiver: MakeWaiver,
                                              tmp_path: Path) -> None:
    rows = read(write_csv(make_report(waivers=[make_waiver()]), tmp_path))
    waived = next(r for r in rows if r["Check"] == "T-001")
    assert waived["Waiver"].startswith("Waived until 2024-12-31 (CHG-1")
    assert waived["Owner"] == "alice"
    owner = next(r for r in rows if r["Check"] == "T-003")
    assert owner["Evidence"] == "tag 'owner' = alice\nowners must start with 'team-'"
    assert owner["Since last scan"] == "not tracked"
    assert len(owner["Fingerprint"]) == 32


@pytest.mark.parametrize("name", HOSTILE)
def test_formula_cells_get_a_leading_quote(name: str, make_job: MakeJob,
                                           make_report: MakeReport, tmp_path: Path) -> None:
    job = make_job(name=name, identity=None, tags={"owner": name})
    rows = read(write_csv(make_report([job]), tmp_path))
    first = rows[0]
    assert first["Resource name"] == "'" + name
    assert first["Owner"] == "'" + name.strip()  # the report strips owner values
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


def test_a_hidden_character_cannot_hide_a_trigger(make_job: MakeJob, make_report: MakeReport,
                                                  tmp_path: Path) -> None:
    """A bidi override is shown as U+FFFD, so the cell does not start with `=` in disguise."""
    job = make_job(name="\u202e=1+1", identity=None)
    row = read(write_csv(make_report([job]), tmp_path))[0]
    assert row["Resource name"] == "\ufffd=1+1"


def test_cell_forms() -> None:
    assert cell(None) == ""
    assert cell(3) == "3"
    assert cell("plain") == "plain"
    assert cell("-x") == "'-x"
    assert cell("a=b") == "a=b"  # only a leading trigger counts


def test_written_atomically(make_report: MakeReport, tmp_path: Path) -> None:
    (tmp_path / "findings.csv").write_text("old", encoding="utf-8")
    write_csv(make_report(), tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert (tmp_path / "findings.csv").read_bytes().startswith(b'\xef\xbb\xbf"Severity"')
