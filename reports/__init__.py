"""Report writers; `write_all` writes every report of a scan into a folder."""

from __future__ import annotations

from pathlib import Path

from auditor.results import ScanReport
from reports.csv_report import write_csv
from reports.focus import write_focus
from reports.html_report import write_html
from reports.json_report import write_findings_json
from reports.manifest import write_manifest
from reports.markdown import write_markdown
from reports.owners import write_owner_reports
from reports.sarif import write_sarif
from reports.workbook import write_workbook


def write_all(report: ScanReport, folder: Path) -> list[Path]:
    """Write findings.json, report.md, report.xlsx, report.html, findings.csv and
    findings.sarif, the FOCUS cost export, then the manifest that hashes them all.

    `folder` is the scan's staging folder and already holds the `snapshot/` evidence.
    """
    written = [
        write_findings_json(report, folder),
        write_markdown(report, folder),
        write_workbook(report, folder),
        write_html(report, folder),
        write_csv(report, folder),
        write_sarif(report, folder),
        *write_focus(report, folder),
        *write_owner_reports(report, folder),
    ]
    return [*written, write_manifest(report, folder)]
