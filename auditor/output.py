"""Reports appear all at once or not at all: written to a staging folder, then moved into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from auditor.errors import InputError


def staging_folder(out: Path) -> Path:
    """A fresh folder beside `out` (same file system, so the final move is a rename)."""
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(str(out), f"cannot create the output folder ({e.strerror})",
                         "pass a writable --out") from e
    if out.exists() and not out.is_dir():
        raise InputError(str(out), "output path exists and is not a folder", "pass a folder")
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))


def publish(staging: Path, out: Path) -> None:
    """Move the staged files into `out`; an existing `out` has its files replaced one by one."""
    if not out.exists():
        os.replace(staging, out)
        return
    for item in sorted(staging.iterdir()):
        target = out / item.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(item, target)
    staging.rmdir()


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
