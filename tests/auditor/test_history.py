"""The history store: new, persisting and resolved findings between scans of one scope, the
`auditor history` and `auditor diff` commands, and a store that two writers cannot corrupt."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import pytest

from auditor import cli
from auditor.history import HistoryError, HistoryStore, default_path
from auditor.results import ScanReport
from auditor.scan import ScanRequest, run_scan
from auditor.settings import load_settings
from tests.factories import SUB, job_row

T1, T2 = "2026-11-20T00:00:00Z", "2026-11-23T00:00:00Z"
CHURN, INVOICES = "customer-churn-scoring", "nightly-invoice-export"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as e:
        code = int(e.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def load(folder: Path, name: str = "findings.json") -> Any:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def by_key(document: Any) -> dict[tuple[str, str], Any]:
    return {(f["check_id"], f["resource_name"]): f for f in document["findings"]}


def changed_sample(tmp_path: Path) -> Path:
    """The sample with one violation fixed (churn scoring gets its cost-center tag) and one
    added (the invoice export loses its tags)."""
    folder = tmp_path / "export"
    with as_file(files("auditor.sample_estate")) as sample:
        shutil.copytree(sample, folder, ignore=shutil.ignore_patterns("*.py", "*.md",
                                                                      "__pycache__"))
    path = folder / "jobs-prod-data.graph.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    for row in document["data"]:
        if row["name"] == CHURN:
            row["tags"]["cost-center"] = "CC-2001"
        if row["name"] == INVOICES:
            row["tags"] = {}
    path.write_text(json.dumps(document), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def two_scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`auditor scan --sample`, then a scan of the changed copy, into one history store."""
    tmp = tmp_path_factory.mktemp("history")
    store, first, second = tmp / "audit.sqlite", tmp / "first", tmp / "second"
    assert cli.main(["scan", "--sample", "--history", str(store), "--out", str(first),
                     "--as-of", T1]) == 1
    export = changed_sample(tmp)
    assert cli.main(["scan", "--snapshot", str(export), "--waivers",
                     str(export / "waivers.toml"), "--history", str(store), "--out",
                     str(second), "--as-of", T2]) == 1
    return {"store": store, "first": first, "second": second}


def test_first_scan_of_a_scope_has_everything_new(two_scans: dict[str, Path]) -> None:
    document = load(two_scans["first"])
    assert document["history"]["baseline"] is None
    assert document["resolved"] == []
    assert {f["history"]["state"] for f in document["findings"]} == {"new"}
    assert load(two_scans["first"], "manifest.json")["previous_manifest_sha256"] is None
    assert "first complete scan of this scope" in (two_scans["first"] / "report.md").read_text()


def test_second_scan_shows_new_persisting_and_resolved(two_scans: dict[str, Path]) -> None:
    first, second = load(two_scans["first"]), load(two_scans["second"])
    assert second["history"]["baseline"]["id"] == first["scan"]["id"]
    findings = by_key(second)
    assert findings[("CAJ-030", INVOICES)]["history"] == {
        "state": "new", "first_seen": T2, "age_days": 0}
    assert findings[("CAJ-001", CHURN)]["history"] == {
        "state": "persisting", "first_seen": T1, "age_days": 3}
    assert ("CAJ-030", CHURN) not in findings
    resolved = {(r["check_id"], r["resource_id"].rsplit("/", 1)[-1]): r
                for r in second["resolved"]}
    fixed = resolved[("CAJ-030", CHURN)]
    assert fixed["now"] == "pass" and fixed["subject"] == "cost-center"
    assert fixed["first_seen"] == T1 and fixed["last_seen"] == T1
    assert fixed["fingerprint"] == by_key(first)[("CAJ-030", CHURN)]["fingerprint"]
    counts = second["history"]
    assert counts["new"] == sum(f["history"]["state"] == "new" for f in second["findings"])
    assert counts["resolved"] == len(second["resolved"])
    assert counts["persisting"] + counts["new"] == len(second["findings"])


def test_fingerprints_persist_between_the_scans(two_scans: dict[str, Path]) -> None:
    first, second = by_key(load(two_scans["first"])), by_key(load(two_scans["second"]))
    assert first[("CAJ-001", CHURN)]["fingerprint"] == second[("CAJ-001", CHURN)]["fingerprint"]


def test_report_md_says_what_changed(two_scans: dict[str, Path]) -> None:
    text = (two_scans["second"] / "report.md").read_text(encoding="utf-8")
    section = text.split("## What changed since the last scan", 1)[1].split("\n## ", 1)[0]
    second = load(two_scans["second"])
    assert f"**{second['history']['new']} new**" in section
    assert f"**{len(second['resolved'])} resolved**" in section
    new_rows = section.split("New findings:", 1)[1].split("Resolved findings", 1)[0]
    resolved_rows = section.split("Resolved findings", 1)[1]
    assert (f"| medium | CAJ-030 | {INVOICES} (rg-billing-prod) | owner,cost-center,environment "
            "| fail |") in new_rows
    assert (f"| medium | CAJ-030 | {CHURN} (rg-analytics-prod) | cost-center | 2026-11-20 "
            "| pass |") in resolved_rows
    assert "Since last scan: persisting since 2026-11-20 (3 days)" in text


def test_workbook_and_csv_have_the_since_last_scan_column(two_scans: dict[str, Path]) -> None:
    text = (two_scans["second"] / "findings.csv").read_bytes().decode("utf-8-sig")
    assert '"Since last scan"' in text.splitlines()[0]
    assert '"persisting since 2026-11-20 (3 days)"' in text and '"new"' in text


def test_manifest_links_to_the_previous_manifest(two_scans: dict[str, Path]) -> None:
    manifest = load(two_scans["second"], "manifest.json")
    previous = (two_scans["first"] / "manifest.json").read_bytes()
    assert manifest["previous_manifest_sha256"] == hashlib.sha256(previous).hexdigest()
    assert manifest["previous_scan_id"] == load(two_scans["first"])["scan"]["id"]


def test_history_command_lists_the_scans(two_scans: dict[str, Path],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "history", "--history", str(two_scans["store"]))
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split()[:3] == ["SCAN", "ID", "STARTED"]
    assert "SCOPE" in header and "RESOLVED" in header
    first, second = load(two_scans["first"]), load(two_scans["second"])
    assert [line.split()[0] for line in lines] == [first["scan"]["id"], second["scan"]["id"]]
    cells = lines[1].split()
    assert cells[3:8] == ["snapshot", "yes", str(len(second["findings"])),
                          str(second["history"]["new"]), str(len(second["resolved"]))]
    assert lines[0].split()[5:8] == [str(len(first["findings"])), "-", "-"]
    assert cells[8].startswith("subscriptions=") and cells[8] == lines[0].split()[8]
    code, out, _ = run(capsys, "history", "--history", str(two_scans["store"]), "--format",
                       "json")
    listed = json.loads(out)
    assert [s["manifest_sha256"] for s in listed] == [
        hashlib.sha256((two_scans[k] / "manifest.json").read_bytes()).hexdigest()
        for k in ("first", "second")]


def test_diff_command(two_scans: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    first, second = load(two_scans["first"]), load(two_scans["second"])
    a, b = first["scan"]["id"], second["scan"]["id"]
    code, out, err = run(capsys, "diff", a[:8], b, "--history", str(two_scans["store"]))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"from {a}") and lines[1].startswith(f"to   {b}")
    new = [line for line in lines if line.startswith("new ")]
    resolved = [line for line in lines if line.startswith("resolved ")]
    persisting = [line for line in lines if line.startswith("persisting ")]
    assert lines[2] == f"{len(new)} new, {len(resolved)} resolved, {len(persisting)} persisting"
    assert len(new) == second["history"]["new"] and len(resolved) == len(second["resolved"])
    assert any("CAJ-030" in line and line.split()[4].endswith(f"/{INVOICES}") for line in new)
    assert any("CAJ-030" in line and f"/{CHURN}  [cost-center]" in line for line in resolved)
    code, out, _ = run(capsys, "diff", b, a, "--history", str(two_scans["store"]), "--format",
                       "json")
    reverse = json.loads(out)
    assert len(reverse["new"]) == len(resolved) and len(reverse["resolved"]) == len(new)


def test_diff_with_an_unknown_or_ambiguous_id(two_scans: dict[str, Path],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "diff", "nope", "nope", "--history", str(two_scans["store"]))
    assert code == 2 and "names no recorded scan" in err and err.count("\n") == 1
    code, _, err = run(capsys, "diff", "", "x", "--history", str(two_scans["store"]))
    assert code == 2 and "matches 2 scans" in err


# --- the store on its own ----------------------------------------------------------------------

def export(tmp_path: Path, rows: list[dict[str, Any]], name: str = "export",
           **document: Any) -> Path:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    body: Any = {"count": len(rows), "data": rows, **document} if document else rows
    (folder / "jobs.json").write_text(json.dumps(body), encoding="utf-8")
    return folder


def scan(folder: Path, out: Path, store: Path | None, minute: int = 0) -> ScanReport:
    request = ScanRequest(source="snapshot", out=out, settings=load_settings(), snapshot=folder,
                          as_of=datetime(2026, 11, 20, tzinfo=UTC), history=store)
    return run_scan(request, clock=lambda: datetime(2026, 11, 20, 9, minute, tzinfo=UTC))


def test_an_incomplete_scan_is_chained_but_never_a_baseline(tmp_path: Path) -> None:
    store = tmp_path / "h.sqlite"
    complete = scan(export(tmp_path, [job_row(identity=None)]), tmp_path / "a", store, 1)
    partial = export(tmp_path, [job_row(identity=None)], name="partial", skip_token="abc")
    incomplete = scan(partial, tmp_path / "b", store, 2)
    assert not incomplete.complete
    assert incomplete.history is not None and incomplete.history.baseline is not None
    assert incomplete.history.baseline.id == complete.info.id
    third = scan(export(tmp_path, [job_row(identity=None)]), tmp_path / "c", store, 3)
    assert third.history is not None and third.history.baseline is not None
    assert third.history.baseline.id == complete.info.id  # not the incomplete one
    manifest = load(tmp_path / "c", "manifest.json")
    assert manifest["previous_scan_id"] == incomplete.info.id  # but the chain includes it
    assert "incomplete" in (tmp_path / "b" / "report.md").read_text(encoding="utf-8")


def test_a_report_compared_with_the_store_keeps_its_sorted_findings(tmp_path: Path) -> None:
    report = scan(export(tmp_path, [job_row(identity=None)]), tmp_path / "a", None)
    findings = report.findings
    with HistoryStore(tmp_path / "h.sqlite") as store:
        compared = report.with_history(store.compare(report))

    assert compared.history is not None and compared.findings is findings
    assert len(findings) > 0 and compared.memo.keys() == {"findings"}


def test_scans_of_another_scope_are_not_compared(tmp_path: Path) -> None:
    store = tmp_path / "h.sqlite"
    scan(export(tmp_path, [job_row(identity=None)]), tmp_path / "a", store, 1)
    other = job_row(identity=None)
    other["id"] = other["id"].replace(SUB, "00000000-0000-0000-0000-00000000beef")
    report = scan(export(tmp_path, [other], name="other"), tmp_path / "b", store, 2)
    assert report.history is not None and report.history.baseline is None
    assert report.history.scope_key == "subscriptions=00000000-0000-0000-0000-00000000beef"


def test_a_stale_comparison_is_not_recorded(tmp_path: Path) -> None:
    """Two scans of one scope compare at once; the second to record fails and forks nothing."""
    store = tmp_path / "h.sqlite"
    folder = export(tmp_path, [job_row(identity=None)])
    one, two = scan(folder, tmp_path / "one", None, 1), scan(folder, tmp_path / "two", None, 2)
    with HistoryStore(store) as db:
        first, second = db.compare(one), db.compare(two)
        db.record(one, first, manifest_sha256="a" * 64, report_folder=tmp_path / "one",
                  recorded=datetime.now(UTC))
        with pytest.raises(HistoryError, match="was recorded while this scan ran"):
            db.record(two, second, manifest_sha256="b" * 64, report_folder=tmp_path / "two",
                      recorded=datetime.now(UTC))
        assert [s.id for s in db.scans()] == [one.info.id]
        assert len(db.findings(one.info.id)) == len(one.findings)
        assert db.findings(two.info.id) == {}  # nothing of the failed transaction is left


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A store another writer holds locked (as a scan recording at that moment does)."""
    store = tmp_path / "h.sqlite"
    HistoryStore(store).close()
    other = sqlite3.connect(store, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    yield store
    other.execute("ROLLBACK")
    other.close()


def test_a_second_writer_waits_then_fails_cleanly(locked: Path, tmp_path: Path) -> None:
    report = scan(export(tmp_path, [job_row(identity=None)]), tmp_path / "a", None)
    with HistoryStore(locked, timeout=0.2) as db:
        history = db.compare(report)  # reading is not blocked by a writer
        with pytest.raises(HistoryError, match="busy"):
            db.record(report, history, manifest_sha256="a" * 64, report_folder=tmp_path,
                      recorded=datetime.now(UTC))
    check = sqlite3.connect(locked)
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert check.execute("SELECT count(*) FROM scans").fetchone() == (0,)
    check.close()


def test_scan_into_a_busy_store_is_one_line_exit_2(locked: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("auditor.history.BUSY_TIMEOUT_SECONDS", 0.2)
    folder = export(tmp_path, [job_row()])
    out = tmp_path / "out"
    code, _, err = run(capsys, "scan", "--snapshot", str(folder), "--out", str(out),
                       "--history", str(locked))
    assert code == 2 and "busy" in err and err.count("\n") == 1
    assert "rerun" in err


def test_not_a_history_store_is_exit_2_before_any_report(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    bogus = tmp_path / "notes.sqlite"
    bogus.write_text("not a database, just notes\n" * 100)
    out = tmp_path / "out"
    code, _, err = run(capsys, "scan", "--snapshot", str(export(tmp_path, [job_row()])),
                       "--out", str(out), "--history", str(bogus))
    assert code == 2 and str(bogus) in err and "--no-history" in err
    assert not out.exists()
    assert bogus.read_text().startswith("not a database")  # left as it was
    code, _, err = run(capsys, "history", "--history", str(tmp_path / "missing.sqlite"))
    assert code == 2 and "no history store here" in err
    assert not (tmp_path / "missing.sqlite").exists()


def test_default_store_and_no_history(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_path() == tmp_path / "xdg" / "auditor" / "history.sqlite"
    assert default_path({"HOME": "/home/a"}).parts[-4:] == (
        ".local", "share", "auditor", "history.sqlite")
    folder = export(tmp_path, [job_row()])
    assert run(capsys, "scan", "--snapshot", str(folder), "--out", str(tmp_path / "a"),
               "--no-history")[0] == 0
    assert not default_path().exists()
    assert load(tmp_path / "a")["history"] is None
    assert load(tmp_path / "a", "manifest.json")["previous_manifest_sha256"] is None
    assert run(capsys, "scan", "--snapshot", str(folder), "--out", str(tmp_path / "b"))[0] == 0
    assert default_path().exists()
    code, out, _ = run(capsys, "history")
    assert code == 0 and load(tmp_path / "b")["scan"]["id"] in out
    config = tmp_path / "auditor.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "configured.sqlite"}"\n')
    assert run(capsys, "scan", "--snapshot", str(folder), "--out", str(tmp_path / "c"),
               "--config", str(config))[0] == 0
    assert (tmp_path / "configured.sqlite").exists()


def test_scope_name_setting_links_exports_of_changing_subscriptions(tmp_path: Path) -> None:
    settings = load_settings(overrides={"store": {"scope_name": "contoso"}})
    store = tmp_path / "h.sqlite"
    other = job_row(identity=None)
    other["id"] = other["id"].replace(SUB, "00000000-0000-0000-0000-00000000beef")
    reports = []
    for minute, rows in ((1, [job_row(identity=None)]), (2, [job_row(identity=None), other])):
        request = ScanRequest(source="snapshot", out=tmp_path / str(minute), settings=settings,
                              snapshot=export(tmp_path, rows, name=f"e{minute}"),
                              as_of=datetime(2026, 11, 20, tzinfo=UTC), history=store)
        reports.append(run_scan(request,
                                clock=lambda m=minute: datetime(2026, 11, 20, 9, m, tzinfo=UTC)))
    history = reports[1].history
    assert history is not None and history.scope_key == "name=contoso"
    assert history.baseline is not None and history.baseline.id == reports[0].info.id


def test_a_second_writer_waits_for_the_first(tmp_path: Path) -> None:
    """While another writer holds the store for a moment, recording waits, then succeeds."""
    store = tmp_path / "h.sqlite"
    HistoryStore(store).close()
    report = scan(export(tmp_path, [job_row(identity=None)]), tmp_path / "a", None)
    other = sqlite3.connect(store, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    try:
        with HistoryStore(store, timeout=10) as db:
            started = time.monotonic()
            db.record(report, db.compare(report), manifest_sha256="a" * 64,
                      report_folder=tmp_path, recorded=datetime.now(UTC))
            assert time.monotonic() - started >= 0.2
            assert [s.id for s in db.scans()] == [report.info.id]
    finally:
        release.join()
        other.close()


def test_two_first_scans_create_the_store_once(tmp_path: Path) -> None:
    store = tmp_path / "new" / "h.sqlite"
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            HistoryStore(store).close()
        except BaseException as e:  # collected: a thread's exception would be lost
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    with HistoryStore(store, create=False) as db:
        assert db.scans() == []
