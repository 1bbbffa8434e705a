"""Write some of a scan's reports in a second process while this one writes the rest.

Report writing is CPU-bound Python, so one process uses one core however many the machine has:
on a large estate the reports take longer than everything before them. A forked worker shares
the finished scan (copy-on-write, nothing pickled), writes its reports into the same staging
folder and sends back the paths it wrote and their digests, or the exception that stopped it
(auditor.forking.Forked). The scan process stays in charge: it waits for the worker before the
manifest hashes the folder, and stops it if anything fails, so nothing is half-written when the
staging folder is discarded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

from auditor.forking import Forked
from reports.manifest import Digests, digests

R = TypeVar("R")  # what writers read: a ScanReport, or (reports.EARLY) the priced estate
Writer = Callable[[R, Path], Path | list[Path]]


def write_each(writers: Sequence[Writer[R]], report: R, folder: Path) -> list[Path]:
    """Run `writers` in turn; the paths they wrote, in order."""
    written: list[Path] = []
    for write in writers:
        paths = write(report, folder)
        written.extend(paths if isinstance(paths, list) else [paths])
    return written


class Worker(Forked[tuple[list[Path], Digests]], Generic[R]):
    """`writers` over `report` in a forked process; `result()` waits for the paths they wrote
    and their digests (the worker hashes its own files while the scan writes the rest)."""

    def __init__(self, writers: Sequence[Writer[R]], report: R, folder: Path) -> None:
        super().__init__("auditor-report-writer", _write_and_hash, writers, report, folder)


def _write_and_hash(writers: Sequence[Writer[R]], report: R,
                    folder: Path) -> tuple[list[Path], Digests]:
    paths = write_each(writers, report, folder)
    return paths, digests(paths, folder)
