"""The catalogue documentation: generated, complete, and never out of date."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import checks
from auditor.cli import main
from auditor.settings import load_settings
from reports import catalogue

ROOT = Path(__file__).resolve().parents[2]


def test_docs_checks_md_is_up_to_date() -> None:
    expected = catalogue.as_markdown(catalogue.entries(checks.catalogue(), load_settings()))
    current = (ROOT / "docs" / "checks.md").read_text()
    assert current == expected, "run: auditor checks --format markdown > docs/checks.md"


def test_every_check_is_documented_with_fix_and_references() -> None:
    text = (ROOT / "docs" / "checks.md").read_text()
    for item in checks.catalogue():
        section = text.split(f"## {item.id}\n", 1)[1].split("\n## ", 1)[0]
        assert item.title in section and "*Fix:*" in section
        assert "az " in section or "bicep" in section.lower()
        assert "https://learn.microsoft.com/" in section


def test_checks_command_shows_effective_values(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[policy]\nmax_replica_timeout_seconds = 600\n'
                      '[checks.CAJ-011]\nenabled = false\n[checks.CAJ-030]\nseverity = "high"\n')
    assert main(["checks", "--format", "json", "--config", str(config)]) == 0
    listed = {c["id"]: c for c in json.loads(capsys.readouterr().out)}
    assert listed["CAJ-010"]["settings"] == {"max_replica_timeout_seconds": 600}
    assert listed["CAJ-011"]["enabled"] is False
    assert listed["CAJ-030"]["severity"] == "high"
    assert listed["CAJ-042"]["enabled"] is False


def test_checks_table_lists_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["checks"]) == 0
    out = capsys.readouterr().out
    assert all(f"{c.id} " in out for c in checks.catalogue())
