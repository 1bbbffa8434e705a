"""The command line: one test per exit code, and bad input as one clear line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from auditor import cli
from tests.factories import job_row


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as e:  # argparse exits for usage errors and --version
        code = int(e.code or 0)
    return code, capsys.readouterr().err


def snapshot(tmp_path: Path, document: object) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "jobs.json").write_text(json.dumps(document))
    return folder


def findings(out: Path) -> dict:
    return json.loads((out / "findings.json").read_text())


def test_exit_0_when_nothing_fails_at_or_above_fail_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = snapshot(tmp_path, [job_row()])
    code, err = run(capsys, "scan", "--snapshot", str(folder), "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert findings(tmp_path / "out")["scan"]["complete"] is True


def test_exit_1_on_failing_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = snapshot(tmp_path, [job_row(identity=None)])  # CAJ-001 is high
    code, err = run(capsys, "scan", "--snapshot", str(folder), "--out", str(tmp_path / "out"))
    assert code == 1, err
    listed = findings(tmp_path / "out")["findings"]
    assert [f["check_id"] for f in listed if f["status"] == "fail"] == ["CAJ-001"]


def test_fail_on_threshold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = snapshot(tmp_path, [job_row(tags={})])  # CAJ-030 is medium
    out = str(tmp_path / "out")
    assert run(capsys, "scan", "--snapshot", str(folder), "--out", out)[0] == 0
    assert run(capsys, "scan", "--snapshot", str(folder), "--out", out,
               "--fail-on", "medium")[0] == 1


def test_exit_1_on_the_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "scan", "--sample", "--out", str(tmp_path / "out"))
    assert code == 1, err
    assert "43 jobs" in err


def test_exit_3_when_the_export_is_partial(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    folder = snapshot(tmp_path, {"count": 1, "data": [job_row()], "skip_token": "ew0KICAi",
                                 "total_records": 2})
    out = tmp_path / "out"
    code, err = run(capsys, "scan", "--snapshot", str(folder), "--out", str(out))
    assert code == 3, err
    assert "INCOMPLETE" in err
    scan = findings(out)["scan"]
    assert scan["complete"] is False
    assert scan["coverage"]["gaps"][0]["scope"] == "file jobs.json"
    assert "INCOMPLETE" in (out / "report.md").read_text().upper()


def test_waived_failures_do_not_fail_the_scan(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    folder = snapshot(tmp_path, [job_row(identity=None)])
    waivers = tmp_path / "w.toml"
    waivers.write_text('[[waiver]]\ncheck = "CAJ-001"\nresource = "*/jobs/nightly-export"\n'
                       'justification = "j"\napprover = "a"\nticket = "T-1"\n'
                       'expires = 2999-01-01\n')
    code, err = run(capsys, "scan", "--snapshot", str(folder), "--out", str(tmp_path / "o"),
                    "--waivers", str(waivers))
    assert code == 0, err


@pytest.mark.parametrize(("argv", "expected"), [
    pytest.param(["scan", "--bogus"], "unrecognized arguments: --bogus", id="unknown-flag"),
    pytest.param(["scan", "--snapshot"], "expected one argument", id="missing-value"),
    pytest.param(["scan", "--sample", "--snapshot", "x"], "not allowed with", id="both-sources"),
    pytest.param(["scan", "--sample", "--as-of", "yesterday"], "not an ISO 8601 time",
                 id="bad-as-of"),
    pytest.param(["scan", "--snapshot", "/nonexistent/folder"], "does not exist",
                 id="missing-folder"),
    pytest.param(["scan", "--sample", "--config", "/nonexistent.toml"],
                 "config file does not exist", id="missing-config"),
])
def test_exit_2_with_one_line(argv: list[str], expected: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, *argv, "--out", str(tmp_path / "out"))
    assert code == 2
    assert expected in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists(), "no reports for a scan that never ran"


def test_exit_2_on_truncated_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "jobs.json").write_text('{"value": [{"id": "/subscriptions/x"')
    code, err = run(capsys, "scan", "--snapshot", str(folder), "--out", str(tmp_path / "o"))
    assert code == 2
    assert str(folder / "jobs.json") in err and "invalid JSON at line 1" in err
    assert err.count("\n") == 1


def test_exit_2_on_broken_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "auditor.toml"
    config.write_text("[policy]\nmax_replica_timeout_seconds = 'soon'\n")
    code, err = run(capsys, "scan", "--sample", "--config", str(config), "--out",
                    str(tmp_path / "o"))
    assert code == 2
    assert err.startswith(f"auditor: error: {config}: key 'policy.max_replica_timeout_seconds'")
    assert "expected a whole number" in err and err.count("\n") == 1


def test_exit_4_on_internal_error_without_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import auditor.scan

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(auditor.scan, "normalize", broken)
    code, err = run(capsys, "scan", "--sample", "--out", str(tmp_path / "o"))
    assert code == 4
    assert "internal error: RuntimeError: boom" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists(), "a failed scan leaves no half-written reports"
    assert not list(tmp_path.glob(".o.partial-*")), "the staging folder is cleaned up"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("auditor ")


def test_existing_output_folder_gets_new_reports(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("kept")
    folder = snapshot(tmp_path, [job_row()])
    assert run(capsys, "scan", "--snapshot", str(folder), "--out", str(out))[0] == 0
    assert (out / "notes.txt").read_text() == "kept"
    assert (out / "report.xlsx").exists() and (out / "snapshot" / "jobs.json").exists()


def test_exit_zero_on_findings_for_scheduled_runs(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = snapshot(tmp_path, [job_row(identity=None)])
    code, err = run(capsys, "scan", "--snapshot", str(folder), "--out", str(tmp_path / "o"),
                    "--exit-zero-on-findings")
    assert code == 0, err
    assert "1 failing" in err, "the findings are still reported"
    (tmp_path / "p").mkdir()
    partial = snapshot(tmp_path / "p", {"count": 1, "data": [job_row(identity=None)],
                                        "skip_token": "x", "total_records": 2})
    code, _ = run(capsys, "scan", "--snapshot", str(partial), "--out", str(tmp_path / "o2"),
                  "--exit-zero-on-findings")
    assert code == 3, "an incomplete scan still fails the run"


@pytest.mark.parametrize(("asked", "workers"), [("1", 0), ("2", 2)])
def test_report_processes_decides_whether_workers_write(
        asked: str, workers: int, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import reports

    started: list[object] = []

    class Counted(reports.Worker):
        def __init__(self, *args: Any) -> None:
            started.append(args)
            super().__init__(*args)

    monkeypatch.setattr(reports, "Worker", Counted)
    code, _ = run(capsys, "scan", "--sample", "--no-history", "--out", str(tmp_path / "out"),
                  "--report-processes", asked)
    assert code == 1 and (tmp_path / "out" / "cost.csv").is_file()
    assert len(started) == workers  # with 2: the cost export's, then the other reports'
    if workers:
        assert [w for w, *_ in started] == [reports.EARLY, reports.SECOND]
