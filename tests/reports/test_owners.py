"""owners/<owner>.md: each owner gets only their part, under a safe file name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.cli import main
from reports.owners import file_name


@pytest.mark.parametrize("owner", ["../../etc/passwd", "/abs/path", "..", "a\\b", "CON",
                                   "x" * 500, "=HYPERLINK(\"x\")", "team a", "team/a", ""])
def test_file_names_stay_inside_the_folder(owner: str) -> None:
    name = file_name(owner)
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    assert name.endswith(".md") and len(name) < 90
    assert (Path("/tmp/owners") / name).resolve().parent == Path("/tmp/owners")


def test_names_do_not_collide() -> None:
    owners = ["team a", "team/a", "team-a", "TEAM A", None, "_unowned"]
    assert len({file_name(o) for o in owners}) == len(owners)


def test_each_owner_file_holds_only_its_jobs(tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert main(["scan", "--sample", "--no-history", "--out", str(out),
                 "--as-of", "2026-11-20T00:00:00Z"]) == 1
    findings = json.loads((out / "findings.json").read_text())["findings"]
    by_owner: dict[str | None, set[str]] = {}
    for f in findings:
        by_owner.setdefault(f["owner"], set()).add(f["resource_name"])
    files = {p.name for p in (out / "owners").iterdir()}
    assert {file_name(owner) for owner in by_owner} <= files, "every owner has a file"
    ml = (out / "owners" / file_name("ml-team@contoso.com")).read_text()
    assert "ml-batch-inference" in ml and "payment-reconciliation" not in ml
    assert "### Top spenders" in ml, "owners see their own costs"
    unowned = (out / "owners" / "_unowned.md").read_text()
    assert "without an `owner` tag" in unowned
    for name in by_owner.get(None, set()):
        assert name in unowned
    manifest = json.loads((out / "manifest.json").read_text())
    assert any(f["path"].startswith("owners/") for f in manifest["files"])
