"""The Dockerfile: pinned base, non-root, nothing secret, and a build context that builds.

There is no Docker engine here, so the image is not built; the Dockerfile is parsed and its build
stage is replayed: the files it copies (and only those, as .dockerignore allows) must build the
auditor wheel.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from auditor.secret_scan import credential_reason

ROOT = Path(__file__).resolve().parents[2]
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    logical, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(item.split(None, 1)[0].upper(), item.split(None, 1)[1]) for item in logical]


def _stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in instructions:
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _args() -> dict[str, str]:
    found = {}
    for instruction, rest in _instructions():
        if instruction == "ARG" and "=" in rest:
            name, value = rest.split("=", 1)
            found[name] = value
    return found


def test_base_image_is_pinned_by_digest() -> None:
    args = _args()
    for instruction, rest in _instructions():
        if instruction != "FROM":
            continue
        image = rest.split()[0]
        match = re.fullmatch(r"\$\{(\w+)\}", image)
        resolved = args[match.group(1)] if match else image
        assert DIGEST.search(resolved), f"FROM {image} is not pinned by digest"
        assert resolved.startswith("python:3.11-slim@")
        assert ":latest" not in resolved


def test_runs_as_an_unprivileged_user() -> None:
    final = _stages(_instructions())[-1]
    users = [rest for instruction, rest in final if instruction == "USER"]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("0", "root")
    names = [instruction for instruction, _ in final]
    assert names.index("USER") < names.index("ENTRYPOINT")
    assert "RUN" not in names[names.index("USER"):], "nothing runs as root after USER"


def test_entrypoint_and_default_command() -> None:
    final = dict(_stages(_instructions())[-1])
    assert json.loads(final["ENTRYPOINT"]) == ["auditor"]
    command = json.loads(final["CMD"])
    assert command[:3] == ["scan", "--auth", "managed-identity"]


def test_nothing_secret_is_baked_in() -> None:
    for instruction, rest in _instructions():
        if instruction in ("ENV", "ARG", "LABEL"):
            for name, value in re.findall(r"([\w.-]+)=(\"[^\"]*\"|\S+)", rest):
                assert credential_reason(value.strip('"'), name) is None, (name, value)
        assert not re.search(r"(?i)(password|secret|token|accountkey|connectionstring)", rest), \
            rest


def test_build_context_is_an_allow_list_of_what_the_build_copies() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"
    allowed = {p[1:] for p in patterns if p.startswith("!")}
    copied = set()
    for instruction, rest in _stages(_instructions())[0]:
        if instruction == "COPY" and "--from" not in rest:
            copied.update(rest.split()[:-1])
    assert copied == allowed
    assert all((ROOT / path).exists() for path in copied)


def test_the_copied_files_build_the_wheel(tmp_path: Path) -> None:
    """Replay the build stage: only the copied paths, then `pip wheel .` (no dependencies)."""
    context = tmp_path / "src"
    context.mkdir()
    for instruction, rest in _stages(_instructions())[0]:
        if instruction == "COPY":
            *sources, _ = rest.split()
            for source in sources:
                path = ROOT / source
                if path.is_dir():
                    shutil.copytree(path, context / source,
                                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    shutil.copy2(path, context / source)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                            "--no-build-isolation", "--wheel-dir", str(tmp_path / "wheels"),
                            str(context)], capture_output=True, text=True, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheels").glob("auditor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"auditor/cli.py", "auditor/upload.py", "auditor/defaults/default.toml",
            "checks/identity.py"} <= names
