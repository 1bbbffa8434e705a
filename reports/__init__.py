"""Report writers; `write_all` writes every report of a scan into a folder."""

from __future__ import annotations

import gc
from functools import partial
from pathlib import Path

from auditor.cost import CostView
from auditor.results import ScanReport
from auditor.settings import Settings
from reports.csv_report import write_csv
from reports.focus import write_cost_export, write_focus
from reports.html_report import write_html
from reports.json_report import write_findings_json
from reports.manifest import write_manifest
from reports.markdown import write_markdown
from reports.owners import write_owner_reports
from reports.sarif import write_sarif
from reports.tables import finding_records
from reports.workbook import write_workbook
from reports.workers import Worker, Writer, available_processes, write_each

# The writers, in groups of about equal work on a large estate: with a second CPU the FOCUS
# cost export is written by a worker process from the moment the scan has priced (it needs
# nothing else), the second group by another while the scan writes the first.
FIRST: tuple[Writer, ...] = (write_findings_json, write_markdown, write_workbook, write_csv)
SECOND: tuple[Writer, ...] = (write_html, write_sarif, write_owner_reports)


def start_cost_export(view: CostView | None, settings: Settings, folder: Path, *,
                      processes: int | None = None) -> Worker | None:
    """Start writing the FOCUS cost export into `folder` in a worker, while the checks run;
    None with one process (default: the CPUs available), when `write_all` writes it."""
    if (processes or available_processes()) <= 1:
        return None
    return Worker(partial(write_cost_export, view, settings.cost, folder))


def write_all(report: ScanReport, folder: Path, *, processes: int | None = None,
              cost_export: Worker | None = None) -> list[Path]:
    """Write findings.json, report.md, report.xlsx, report.html, findings.csv and
    findings.sarif, the FOCUS cost export (unless `cost_export` is writing it) and the owners'
    reports, then the manifest that hashes them all.

    `folder` is the scan's staging folder and already holds the `snapshot/` evidence.
    `processes` (default: the CPUs available) above 1 writes the second group in a worker.
    """
    _derive_shared(report)
    later = SECOND if cost_export is not None else (*SECOND, write_focus)
    if (processes or available_processes()) <= 1 and cost_export is None:
        written = write_each((*FIRST, *later), report, folder)
        return [*written, write_manifest(report, folder)]
    workers = [] if cost_export is None else [cost_export]
    try:
        workers.insert(0, Worker(partial(write_each, later, report, folder)))
        written = write_each(FIRST, report, folder)
        for worker in workers:
            written += worker.result()
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    finally:
        gc.unfreeze()
    return [*written, write_manifest(report, folder)]


def _derive_shared(report: ScanReport) -> None:
    """Work out what several writers read (the findings, their records, the check counts)
    once, before a worker forks, so the two processes do not each derive it."""
    report.check_counts()
    next(finding_records(report), None)
