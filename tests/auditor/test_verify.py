"""`auditor verify DIR`: a fresh report folder is intact; an edit, a deletion, an addition or a
broken evidence chain is named, one line each, with exit 1."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from auditor import cli
from tests.factories import job_row

AS_OF = "2026-11-20T00:00:00Z"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as e:
        code = int(e.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def periods(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three monthly scans of one estate into one history store (kept pristine: copy to edit)."""
    tmp = tmp_path_factory.mktemp("verify")
    export = tmp / "export"
    export.mkdir()
    (export / "jobs.json").write_text(json.dumps([job_row(identity=None), job_row("second")]))
    store = tmp / "audit.sqlite"
    folders = {"store": store}
    for month in ("09", "10", "11"):
        out = tmp / f"2026-{month}"
        assert cli.main(["scan", "--snapshot", str(export), "--out", str(out), "--history",
                         str(store), "--as-of", f"2026-{month}-20T00:00:00Z"]) == 1
        folders[month] = out
    return folders


@pytest.fixture
def copy(periods: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """The periods and their store, copied so a test may damage them."""
    copied = {}
    for key, path in periods.items():
        target = tmp_path / path.name
        if path.is_dir():
            shutil.copytree(path, target)
        else:
            shutil.copy2(path, target)
        copied[key] = target
    return copied


def test_a_fresh_folder_is_intact(periods: dict[str, Path],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    for month in ("09", "10", "11"):
        code, out, err = run(capsys, "verify", str(periods[month]))
        assert (code, out) == (0, ""), err
        manifest = json.loads((periods[month] / "manifest.json").read_text())
        assert f"intact: {len(manifest['files'])} files" in err
        code, out, err = run(capsys, "verify", str(periods[month]), "--history",
                             str(periods["store"]))
        assert (code, out) == (0, ""), out
        assert "and the evidence chain" in err


def test_edited_deleted_and_added_files_are_named(copy: dict[str, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = copy["11"]
    with (folder / "report.md").open("a", encoding="utf-8") as handle:
        handle.write("\nAll findings were fixed.\n")
    (folder / "findings.csv").unlink()
    (folder / "snapshot" / "extra.json").write_text("{}")
    (folder / "notes.txt").write_text("added later")
    code, out, err = run(capsys, "verify", str(folder))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 4, out
    assert any(line.startswith("changed: report.md: recorded ") for line in lines)
    assert "missing: findings.csv: listed in the manifest, not found" in lines
    assert "not in manifest: notes.txt: the scan did not write this file" in lines
    assert "not in manifest: snapshot/extra.json: the scan did not write this file" in lines
    assert "4 problem(s)" in err


def test_an_edit_that_keeps_the_size_is_caught(copy: dict[str, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = copy["11"] / "findings.json"
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"fail"', b'"pass"', 1))
    assert path.stat().st_size == len(data)
    code, out, _ = run(capsys, "verify", str(copy["11"]))
    assert code == 1 and out.startswith("changed: findings.json: recorded")


def test_an_edited_manifest_is_caught_only_with_the_history_store(
        copy: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """Rewriting a report and its hash in the manifest fools the folder alone, not the store."""
    folder = copy["11"]
    report = folder / "report.md"
    report.write_text(report.read_text(encoding="utf-8") + "\nNothing to see.\n",
                      encoding="utf-8")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    entry = next(f for f in manifest["files"] if f["path"] == "report.md")
    entry["bytes"] = report.stat().st_size
    entry["sha256"] = hashlib.sha256(report.read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    assert run(capsys, "verify", str(folder))[0] == 0  # the documented limit
    code, out, _ = run(capsys, "verify", str(folder), "--history", str(copy["store"]))
    assert code == 1
    assert out.startswith("chain: manifest.json: sha256 ")
    assert "the history store recorded for scan" in out


def test_the_chain_links_each_period_to_the_previous(periods: dict[str, Path]) -> None:
    def sha(month: str) -> str:
        return hashlib.sha256((periods[month] / "manifest.json").read_bytes()).hexdigest()

    def manifest(month: str) -> dict[str, str]:
        return json.loads((periods[month] / "manifest.json").read_text(encoding="utf-8"))

    assert manifest("09")["previous_manifest_sha256"] is None
    assert manifest("10")["previous_manifest_sha256"] == sha("09")
    assert manifest("11")["previous_manifest_sha256"] == sha("10")


def test_a_removed_period_breaks_the_chain(copy: dict[str, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """October is taken out of the store: November's link and September's successor break."""
    october = json.loads((copy["10"] / "manifest.json").read_text())["scan_id"]
    db = sqlite3.connect(copy["store"])
    db.execute("DELETE FROM findings WHERE scan_id = ?", (october,))
    db.execute("DELETE FROM scans WHERE id = ?", (october,))
    db.commit()
    db.close()
    code, out, _ = run(capsys, "verify", str(copy["11"]), "--history", str(copy["store"]))
    assert code == 1
    assert out.startswith("chain: manifest.json: names previous manifest ")
    assert "but the history store has scan" in out
    code, out, _ = run(capsys, "verify", str(copy["09"]), "--history", str(copy["store"]))
    assert code == 1 and "the next scan of this scope" in out
    code, out, _ = run(capsys, "verify", str(copy["10"]), "--history", str(copy["store"]))
    assert code == 1 and f"scan {october} is not recorded in" in out


def test_invalid_manifest_entries_are_problems(copy: dict[str, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = copy["11"]
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"].append({"path": "../outside.txt", "bytes": 1, "sha256": "00"})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    code, out, _ = run(capsys, "verify", str(folder))
    assert code == 1
    assert out.splitlines() == [
        "invalid entry: ../outside.txt: not a relative path with bytes and sha256"]


@pytest.mark.parametrize("damage", ["no-folder", "no-manifest", "bad-json"])
def test_what_cannot_be_verified_is_exit_2(damage: str, copy: dict[str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    folder = copy["11"]
    if damage == "no-folder":
        folder = tmp_path / "nowhere"
    elif damage == "no-manifest":
        (folder / "manifest.json").unlink()
    else:
        (folder / "manifest.json").write_text("{ not json")
    code, out, err = run(capsys, "verify", str(folder))
    assert code == 2 and out == "" and err.count("\n") == 1
