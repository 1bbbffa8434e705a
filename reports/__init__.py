"""Report writers; `write_all` writes every report of a scan into a folder."""

from __future__ import annotations

from pathlib import Path

from auditor.results import ScanReport


def write_all(report: ScanReport, folder: Path) -> list[Path]:
    raise NotImplementedError("being written")
