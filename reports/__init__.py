"""Report writers; `write_all` writes every report of a scan into a folder."""

from __future__ import annotations

import gc
from pathlib import Path

from auditor.forking import available_processes
from auditor.results import ScanReport
from reports.csv_report import write_csv
from reports.focus import write_focus
from reports.html_report import write_html
from reports.json_report import write_findings_json
from reports.manifest import Digests, write_manifest
from reports.markdown import write_markdown
from reports.owners import write_owner_reports
from reports.sarif import write_sarif
from reports.tables import finding_records
from reports.workbook import write_workbook
from reports.workers import Worker, Writer, write_each

# The writers, in two groups of about equal work on a large estate: with a second CPU the
# second group runs in a worker process while the scan writes the first.
FIRST: tuple[Writer, ...] = (write_findings_json, write_markdown, write_workbook, write_csv,
                             write_owner_reports)
SECOND: tuple[Writer, ...] = (write_html, write_sarif, write_focus)


def write_all(report: ScanReport, folder: Path, *, processes: int | None = None,
              known: Digests | None = None) -> list[Path]:
    """Write findings.json, report.md, report.xlsx, report.html, findings.csv and
    findings.sarif, the FOCUS cost export and the owners' reports, then the manifest that
    hashes them all.

    `folder` is the scan's staging folder and already holds the `snapshot/` evidence (`known`:
    the digests of files already hashed, by path relative to `folder`). `processes` (default:
    the CPUs available) above 1 writes the second group in a worker, which hashes its files.
    """
    _derive_shared(report)
    if (processes or available_processes()) <= 1:
        written = write_each(FIRST, report, folder) + write_each(SECOND, report, folder)
        return [*written, write_manifest(report, folder, known)]
    # Frozen objects are never walked by the garbage collector: neither process then touches
    # (and so copies) the pages of the scan they share while the worker runs.
    gc.freeze()
    try:
        worker = Worker(SECOND, report, folder)
        try:
            written = write_each(FIRST, report, folder)
            theirs, hashed = worker.result()
        except BaseException:
            worker.stop()
            raise
    finally:
        gc.unfreeze()
    return [*written, *theirs, write_manifest(report, folder, {**(known or {}), **hashed})]


def _derive_shared(report: ScanReport) -> None:
    """Work out what several writers read (the findings, their records, the check counts)
    once, before a worker forks, so the two processes do not each derive it."""
    report.check_counts()
    next(finding_records(report), None)
