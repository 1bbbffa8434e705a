"""The CI step around pip-audit: vulnerabilities fail CI, an unreachable service only warns."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "pip_audit.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_pip_audit", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(monkeypatch: pytest.MonkeyPatch, stdout: str, stderr: str = "",
         code: int = 0) -> int:
    module = _load()

    def fake_run(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, code, stdout, stderr)

    monkeypatch.setattr(module.subprocess, "run", fake_run)
    result: int = module.main()
    return result


def _report(*dependencies: dict[str, Any]) -> str:
    return json.dumps({"dependencies": list(dependencies), "fixes": []})


def test_a_known_vulnerability_fails_ci(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    stdout = _report({"name": "requests", "version": "2.0.0", "vulns": [
        {"id": "PYSEC-2023-74", "fix_versions": ["2.31.0"]}]},
        {"name": "idna", "version": "3.7", "vulns": []})
    assert _run(monkeypatch, stdout, code=1) == 1
    assert "requests 2.0.0: PYSEC-2023-74 (fixed in: 2.31.0)" in capsys.readouterr().out


def test_a_clean_audit_passes(monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    stdout = _report({"name": "idna", "version": "3.7", "vulns": []},
                     {"name": "auditor", "version": "0.1.0", "skip_reason": "editable"})
    assert _run(monkeypatch, stdout) == 0
    assert "1 packages audited, no known vulnerabilities" in capsys.readouterr().out


@pytest.mark.parametrize(("stdout", "stderr"), [
    (_report({"name": "idna", "version": "3.7",
              "skip_reason": "Dependency not found on PyPI and could not be audited"}), ""),
    ("", "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org'): "
         "Max retries exceeded (Failed to establish a new connection)"),
])
def test_an_unreachable_service_warns_but_does_not_fail(
        stdout: str, stderr: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(monkeypatch, stdout, stderr, code=1 if stderr else 0) == 0
    assert "WARNING: pip-audit could not audit" in capsys.readouterr().err


def test_pip_audit_failing_for_another_reason_fails_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(monkeypatch, "", "error: unrecognized arguments: --bogus", code=2) == 1
