"""Report writers; `write_all` writes every report of a scan into a folder."""

from __future__ import annotations

import gc
from pathlib import Path

from auditor.forking import available_processes
from auditor.results import ScanReport
from reports.csv_report import write_csv
from reports.finops import Priced, health
from reports.finops import PricedEstate as PricedEstate  # what scan passes to start_early
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

# The writers, in groups of about equal work on a large estate. With a second CPU, EARLY (it
# reads only the priced estate) is written by a worker from the moment the scan has priced,
# while the scan runs its checks (`start_early`); then a second worker writes SECOND while the
# scan writes FIRST. With one CPU the scan writes them all, FIRST, SECOND, then EARLY.
EARLY: tuple[Writer[Priced], ...] = (write_focus,)
FIRST: tuple[Writer[ScanReport], ...] = (write_findings_json, write_workbook)
SECOND: tuple[Writer[ScanReport], ...] = (write_html, write_sarif, write_markdown, write_csv,
                                          write_owner_reports)


def start_early(priced: Priced, folder: Path, *,
                processes: int | None = None) -> Worker[Priced] | None:
    """Start writing the EARLY reports into `folder` in a worker, when a second CPU is free
    (`processes`, default: the CPUs available); None when not (write_all then writes them).
    Hand the worker to write_all, which waits for it; stop it if the scan fails before."""
    if (processes or available_processes()) <= 1:
        return None
    # Frozen objects are never walked by the garbage collector: neither process then touches
    # (and so copies) the pages it shares with the other (write_all unfreezes them).
    gc.freeze()
    return Worker(EARLY, priced, folder)


def write_all(report: ScanReport, folder: Path, *, processes: int | None = None,
              known: Digests | None = None, early: Worker[Priced] | None = None) -> list[Path]:
    """Write findings.json, report.md, report.xlsx, report.html, findings.csv and
    findings.sarif, the FOCUS cost export and the owners' reports, then the manifest that
    hashes them all.

    `folder` is the scan's staging folder and already holds the `snapshot/` evidence (`known`:
    the digests of files already hashed, by path relative to `folder`). `processes` (default:
    the CPUs available) above 1 writes SECOND in a worker, which hashes its files; `early`,
    the worker `start_early` gave, is waited for (and stopped if anything fails).
    """
    try:
        _derive_shared(report)
        if early is None and (processes or available_processes()) <= 1:
            written = (write_each(FIRST, report, folder) + write_each(SECOND, report, folder)
                       + write_each(EARLY, report, folder))
            return [*written, write_manifest(report, folder, known)]
        written, hashed = _in_two_processes(report, folder, early)
    except BaseException:
        if early is not None:
            early.stop()
        raise
    return [*written, write_manifest(report, folder, {**(known or {}), **hashed})]


def _in_two_processes(report: ScanReport, folder: Path,
                      early: Worker[Priced] | None) -> tuple[list[Path], Digests]:
    """FIRST here while a worker writes SECOND (and EARLY, unless `early` writes them): the
    paths written and the digests the workers took.

    When `early` is still writing, the second worker is forked only once it is done, after the
    first of FIRST: three processes at once would each hold their own copy of the pages of the
    scan they touch (a 20,000-job scan's peak passed 2 GiB that way), and two CPUs run only two.
    """
    ours = FIRST
    written: list[Path] = []
    costs: list[Path] = []
    hashed: Digests = {}
    if early is not None:
        written = write_each(FIRST[:1], report, folder)
        costs, hashed = early.result()
        ours = FIRST[1:]
    gc.freeze()
    try:
        worker = Worker(SECOND if early is not None else (*SECOND, *EARLY), report, folder)
        try:
            written += write_each(ours, report, folder)
            theirs, more = worker.result()
        except BaseException:
            worker.stop()
            raise
    finally:
        gc.unfreeze()
    return [*written, *theirs, *costs], {**hashed, **more}


def _derive_shared(report: ScanReport) -> None:
    """Work out what several writers read (the findings, their records, the check counts, the
    executions' health per job: report.md and the workbook are written by different processes)
    once, before a worker forks, so the two processes do not each derive it."""
    report.check_counts()
    next(finding_records(report), None)
    health(report)
