"""`pip install .` (not only editable) gives a working tool: checks, reports, config and the
sample estate travel inside the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(out), str(ROOT)],
                   check=True, capture_output=True, cwd=out)
    (built,) = out.glob("auditor-*.whl")
    return built


def test_wheel_carries_every_part(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("auditor/cli.py", "auditor/collect/resource_graph.py",
                     "auditor/defaults/default.toml", "auditor/defaults/frameworks.toml",
                     "auditor/defaults/waivers.toml", "auditor/sample_estate/waivers.toml",
                     "auditor/sample_estate/jobs-prod-data.graph.json",
                     "checks/__init__.py", "checks/identity.py", "reports/workbook.py"):
        assert required in names, required
    assert not any(n.startswith("tests/") for n in names)


def test_installed_wheel_scans_the_sample(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import auditor, checks; "
                            "print(auditor.__file__); print(checks.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert all(line.startswith(str(target)) for line in where.stdout.splitlines())
    scan = subprocess.run([sys.executable, "-m", "auditor", "scan", "--sample", "--out", "r"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert scan.returncode == 1, scan.stderr
    assert {p.name for p in (tmp_path / "r").iterdir()} >= {
        "report.xlsx", "report.md", "findings.json", "manifest.json", "snapshot"}
