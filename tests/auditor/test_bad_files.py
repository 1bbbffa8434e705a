"""Config, waivers and snapshots wrong in every way a person gets them wrong: each is one line on
stderr naming the file, the problem and the fix, and exit code 2; never a traceback (exit 4).

Mistakes with harmless readings are accepted instead: a UTF-8 byte order mark (Notepad), an empty
config file (nothing overridden), an empty waivers file (no waivers), a folder named `x.json`
beside real exports (skipped).
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from auditor import cli
from tests.factories import job_row

Make = Callable[[Path], Path]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()


def _file(name: str, content: bytes) -> Make:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content)
        return path
    return make


def _folder(name: str) -> Make:
    def make(folder: Path) -> Path:
        path = folder / name
        path.mkdir()
        return path
    return make


UTF16 = codecs.BOM_UTF16_LE + '[scan]\nfail_on = "low"\n'.encode("utf-16-le")
YAML = b"scan:\n  fail_on: low\n"

CONFIG_MISTAKES = [
    pytest.param(_file("c.toml", UTF16), "not UTF-8 text: it is UTF-16", "save it as UTF-8",
                 id="utf16"),
    pytest.param(_file("c.toml", YAML), "invalid TOML", "looks like YAML", id="yaml"),
    pytest.param(_file("c.toml", b'{"scan": {"fail_on": "low"}}'), "invalid TOML",
                 "looks like JSON", id="json"),
    pytest.param(_folder("c.toml"), "is a folder", "pass the file itself", id="folder"),
    pytest.param(_file("c.toml", b"[scan]\nfail_on = low\n"), "invalid TOML",
                 "fix the syntax", id="unquoted"),
    pytest.param(_file("c.toml", b'[scan]\nfail_on = "urgent"\n'), "scan.fail_on",
                 "expected one of", id="bad-value"),
    pytest.param(_file("c.toml", b'[azure]\ndeadline_seconds = "1h"\n'),
                 "azure.deadline_seconds", "expected a number", id="deadline-as-text"),
    pytest.param(_file("c.toml", b"[azure]\nread_timeout_seconds = 0\n"),
                 "azure.read_timeout_seconds", "greater than 0", id="zero-timeout"),
]


@pytest.mark.parametrize(("make", "problem", "fix"), CONFIG_MISTAKES)
def test_config_mistakes(make: Make, problem: str, fix: str, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    path = make(tmp_path)
    code, err = _run(capsys, "scan", "--sample", "--config", str(path),
                     "--out", str(tmp_path / "out"))
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"auditor: error: {path}") and problem in err[0] and fix in err[0]
    assert not (tmp_path / "out").exists()


WAIVER_MISTAKES = [
    pytest.param(_file("w.toml", UTF16), "not UTF-8 text: it is UTF-16", id="utf16"),
    pytest.param(_folder("w.toml"), "is a folder", id="folder"),
    pytest.param(_file("w.toml", YAML), "invalid TOML", id="yaml"),
    pytest.param(_file("w.toml", b"\xc3\x28 = 1\n"), "not UTF-8 text", id="latin1"),
]


@pytest.mark.parametrize(("make", "problem"), WAIVER_MISTAKES)
def test_waiver_mistakes(make: Make, problem: str, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    path = make(tmp_path)
    code, err = _run(capsys, "scan", "--sample", "--waivers", str(path),
                     "--out", str(tmp_path / "out"))
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"auditor: error: {path}") and problem in err[0] and "; " in err[0]


SNAPSHOT_MISTAKES = [
    pytest.param(_file("jobs.json", b""), "the file is empty", id="empty"),
    pytest.param(_file("jobs.json", b"  \n"), "the file is empty", id="blank"),
    pytest.param(_file("jobs.json", b"- id: /subscriptions/x\n  type: microsoft.app/jobs\n"),
                 "not JSON (it looks like YAML", id="yaml-named-json"),
    pytest.param(_file("jobs.json", b"Name    ResourceGroup\n----    -------------\n"),
                 "not JSON", id="table-output"),
    pytest.param(_file("jobs.json", codecs.BOM_UTF16_LE + "[]".encode("utf-16-le")),
                 "it is UTF-16", id="powershell-utf16"),
    pytest.param(_file("jobs.json", b'[{"id": "/subscriptions/x", '), "invalid JSON at line 1",
                 id="truncated"),
    pytest.param(_folder("only.json"), "holds no .json files", id="only-a-folder-named-json"),
]


@pytest.mark.parametrize(("make", "problem"), SNAPSHOT_MISTAKES)
def test_snapshot_mistakes(make: Make, problem: str, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export"
    export.mkdir()
    make(export)
    code, err = _run(capsys, "scan", "--snapshot", str(export), "--out", str(tmp_path / "out"))
    assert code == 2 and len(err) == 1, err
    assert problem in err[0] and "; " in err[0] and str(export) in err[0]


@pytest.mark.parametrize("kind", ["config", "waivers", "snapshot"])
def test_a_file_that_cannot_be_read_is_named_with_the_fix(
        kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    export = tmp_path / "export"
    export.mkdir()
    denied = {"config": tmp_path / "c.toml", "waivers": tmp_path / "w.toml",
              "snapshot": export / "jobs.json"}[kind]
    denied.write_text("[]" if kind == "snapshot" else "")
    (export / "other.json").write_text(json.dumps([job_row()]))
    if os.geteuid() != 0:
        denied.chmod(0)
    else:  # root reads anything: make this one file refuse like a denied one
        real = Path.read_bytes

        def read_bytes(self: Path) -> bytes:
            if self == denied:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    flag = {"config": ["--config", str(denied)], "waivers": ["--waivers", str(denied)],
            "snapshot": []}[kind]

    code, err = _run(capsys, "scan", "--snapshot", str(export), *flag,
                     "--out", str(tmp_path / "out"))

    assert code == 2 and len(err) == 1, err
    assert str(denied) in err[0] and "permission denied" in err[0] and "read access" in err[0]


def test_harmless_mistakes_are_accepted(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "jobs.json").write_bytes(codecs.BOM_UTF8 + json.dumps([job_row()]).encode())
    (export / "x.json").mkdir()  # a folder named like an export, beside a real one
    config = tmp_path / "c.toml"
    config.write_bytes(codecs.BOM_UTF8 + b'[scan]\nfail_on = "critical"\n')
    empty_waivers = tmp_path / "w.toml"
    empty_waivers.write_text("")
    out = tmp_path / "out"

    code, err = _run(capsys, "scan", "--snapshot", str(export), "--config", str(config),
                     "--waivers", str(empty_waivers), "--out", str(out))

    assert code == 0, err
    assert json.loads((out / "findings.json").read_text())["scan"]["complete"] is True
    assert (out / "snapshot" / "jobs.json").is_file() and not (out / "snapshot" / "x.json").exists()
    empty_config = tmp_path / "empty.toml"
    empty_config.write_text("")
    assert _run(capsys, "scan", "--snapshot", str(export), "--config", str(empty_config),
                "--out", str(out))[0] in (0, 1)
