"""manifest.json, written last by write_all: it hashes every file, so later edits show."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import reports
from auditor.results import ScanReport
from reports.manifest import digests, file_entries

MakeReport = Callable[..., ScanReport]


def manifest(folder: Path) -> Any:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def test_write_all_writes_every_report_then_the_manifest(make_report: MakeReport,
                                                             folder: Path) -> None:
    written = reports.write_all(make_report(), folder)
    assert [p.name for p in written if p.parent.name != "owners"] == [
        "findings.json", "report.xlsx", "report.html", "findings.sarif", "report.md",
        "findings.csv", "cost.csv", "cost.parquet", "manifest.json"]
    assert {p.name for p in written if p.parent.name == "owners"} == {
        p.name for p in (folder / "owners").iterdir()}
    assert not [p for p in folder.rglob(".*")]  # no temporary files left behind


def test_manifest_lists_every_file_with_its_hash(make_report: MakeReport,
                                                 folder: Path) -> None:
    reports.write_all(make_report(), folder)
    files = manifest(folder)["files"]
    owners = sorted(f"owners/{p.name}" for p in (folder / "owners").iterdir())
    assert owners, "one Markdown file per owner"
    assert [f["path"] for f in files] == ["cost.csv", "cost.parquet", "findings.csv",
                                          "findings.json", "findings.sarif", *owners,
                                          "report.html", "report.md", "report.xlsx",
                                          "snapshot/jobs.json"]
    assert files == file_entries(folder)
    evidence = b'{"data": []}\n'
    assert files[-1] == {"path": "snapshot/jobs.json", "bytes": len(evidence),
                         "sha256": hashlib.sha256(evidence).hexdigest()}


def test_a_file_edited_afterwards_no_longer_matches(make_report: MakeReport,
                                                    folder: Path) -> None:
    reports.write_all(make_report(), folder)
    recorded = {f["path"]: f for f in manifest(folder)["files"]}
    with (folder / "report.md").open("a", encoding="utf-8") as handle:
        handle.write("All clear.\n")
    now = {f["path"]: f for f in file_entries(folder)}
    changed = [path for path in recorded if recorded[path] != now[path]]
    assert changed == ["report.md"]
    assert recorded["report.md"]["sha256"] != now["report.md"]["sha256"]


def test_manifest_states_the_scan(make_report: MakeReport, folder: Path) -> None:
    report = make_report()
    reports.write_all(report, folder)
    document = manifest(folder)
    findings = json.loads((folder / "findings.json").read_text(encoding="utf-8"))
    assert document["scan_id"] == "scan-1"
    assert document["tool_version"] == "0.1.0"
    assert document["finished"] == "2024-05-01T10:00:07Z"
    assert document["settings_digest"] == report.settings.digest()
    assert document["complete"] is True
    assert document["counts"] == findings["scan"]["counts"]


def test_files_hashed_as_they_were_written_are_not_read_again(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"first")
    (tmp_path / "b.txt").write_bytes(b"second")
    hashed = digests([tmp_path / "a.txt", tmp_path / "b.txt"], tmp_path)
    assert hashed["a.txt"] == (5, hashlib.sha256(b"first").hexdigest())

    (tmp_path / "b.txt").write_bytes(b"changed size")
    entries = {e["path"]: e for e in file_entries(tmp_path, {**hashed, "a.txt": (5, "kept")})}

    assert entries["a.txt"]["sha256"] == "kept"  # known at its size: taken as hashed
    assert entries["b.txt"] == {"path": "b.txt", "bytes": 12,
                                "sha256": hashlib.sha256(b"changed size").hexdigest()}
