"""The sample estate's configuration changes (resource-changes.graph.json), end to end.

The change records are pinned here (see auditor/sample_estate/README.md, "Planted configuration
changes"): every new value is what the job exports hold now, the deleted job is in no export, and
no report of the sample scan shows five characters in a row of a planted secret.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

import auditor.sample_estate
from auditor.cli import main

SAMPLE = Path(auditor.sample_estate.__file__).parent
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
AS_OF = "2026-11-20T00:00:00Z"
DELETED = "invoice-archive-legacy"


def _planted() -> dict[str, str]:
    sys.path.insert(0, str(SCRIPTS))
    try:
        import make_sample_estate as sample
    finally:
        sys.path.remove(str(SCRIPTS))
    return {"storage account key": sample.FAKE_ACCOUNT_KEY, "SAS signature": sample.FAKE_SAS_SIG,
            "Flyway password": "Hn3vQ8zTm5Kw2Ys", "Postgres password": "Wq7tZ2vK9pLx4Rj"}


def _rows(name: str) -> list[dict[str, Any]]:
    document = json.loads((SAMPLE / name).read_text(encoding="utf-8"))
    if isinstance(document, list):
        return document
    data = document.get("data", document.get("value", document))
    return data if isinstance(data, list) else [data]


def _jobs() -> dict[str, dict[str, Any]]:
    rows = [row for path in SAMPLE.glob("*.json") for row in _rows(path.name)
            if str(row.get("type", "")).lower() == "microsoft.app/jobs"]
    return {row["id"].lower(): row for row in rows}


def _at(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        if index:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) \
                else None
        else:
            value = value.get(key) if isinstance(value, dict) else None
    return value


def test_the_change_records_are_pinned() -> None:
    rows = _rows("resource-changes.graph.json")
    assert len(rows) == 15
    assert {r["type"] for r in rows} == {"microsoft.resources/changes"}
    assert [r["id"].lower() for r in rows] == sorted(r["id"].lower() for r in rows)
    assert Counter(r["properties"]["changeType"] for r in rows) == {
        "Update": 13, "Create": 1, "Delete": 1}
    targets = {r["properties"]["targetResourceId"].lower() for r in rows}
    assert len(targets) == 13
    jobs = _jobs()
    missing = {t.rsplit("/", 1)[-1] for t in targets if t not in jobs}
    assert missing == {DELETED}  # deleted in the period: no export holds it
    for row in rows:
        props = row["properties"]
        assert row["id"].startswith(props["targetResourceId"] +
                                    "/providers/Microsoft.Resources/changes/")
        assert props["changeAttributes"]["changesCount"] == len(props["changes"])
        assert "2026-11-06" <= props["changeAttributes"]["timestamp"] < AS_OF


def test_every_new_value_is_what_the_exports_hold() -> None:
    jobs = _jobs()
    for row in _rows("resource-changes.graph.json"):
        job = jobs.get(row["properties"]["targetResourceId"].lower())
        for path, change in row["properties"]["changes"].items():
            assert job is not None
            now = _at(job, path)
            expected = change["newValue"]
            assert (None if now is None else str(now)) == expected, (job["name"], path)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample-changes") / "reports"
    assert main(["scan", "--sample", "--out", str(folder), "--as-of", AS_OF]) == 1
    return folder


def test_the_reports_show_the_changes(out: Path) -> None:
    sheet = load_workbook(out / "report.xlsx")["Changes"]
    table = list(sheet.iter_rows(values_only=True))
    rows = [dict(zip(table[0], row, strict=True)) for row in table[1:]]
    assert len(rows) == 19  # 17 property changes, and one row each for the Create and Delete
    assert {r["Job"] for r in rows if r["Job in this scan"] != "yes"} == {DELETED}
    image = next(r for r in rows if r["Job"] == "cert-expiry-scanner")
    assert (image["Before"], image["After"]) == ("mcr.microsoft.com/azure-cli:2.67.0",
                                                 "mcr.microsoft.com/azure-cli:latest")
    document = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    assert len(document["changes"]) == 15
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "**15 changes to 13 jobs** between 2026-11-06T09:12:44Z and 2026-11-19T16:30:05Z" \
        in markdown


def test_no_report_shows_a_planted_secret(out: Path) -> None:
    """Five characters in a row of a planted secret in any report is a leak (the snapshot folder
    is the evidence itself and is kept owner-only; the Parquet file is compressed binary)."""
    texts: dict[str, str] = {}
    for path in out.iterdir():
        if path.is_dir() or path.suffix == ".parquet":
            continue
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as archive:
                texts[path.name] = "".join(archive.read(n).decode("utf-8", "replace")
                                           for n in archive.namelist())
        else:
            texts[path.name] = path.read_text(encoding="utf-8")
    assert {"report.xlsx", "report.md", "findings.json"} <= set(texts)
    leaks = {(label, name) for label, secret in _planted().items()
             for name, text in texts.items()
             if any(secret[i:i + 5] in text for i in range(len(secret) - 4))}
    assert not leaks
