"""owners/<owner>.md: each team receives only its own findings and costs.

One Markdown report per value of the owner tag, plus one for jobs without an owner, rendered by
the same writer as report.md over the owner's slice of the scan (its jobs, their results,
executions and costs; scope, period and coverage stay the scan's, so an incomplete scan says so
in every owner's file too). File names come from tag values, which anyone who can tag a job
controls: they are reduced to a safe alphabet with a hash suffix, so no value can name a path
outside `owners/` or collide with another owner's file.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from auditor.model import Job
from auditor.results import Result, ScanReport
from reports.atomic import write_text
from reports.markdown import escape_text, render

FOLDER = "owners"
UNOWNED = "_unowned"  # the underscore is outside the alphabet of owner file names


def file_name(owner: str | None) -> str:
    """A safe, unique file name for an owner tag value."""
    if owner is None:
        return f"{UNOWNED}.md"
    safe = re.sub(r"[^a-z0-9.@-]+", "-", owner.lower()).strip(".-")[:60] or "owner"
    digest = hashlib.sha256(owner.encode("utf-8")).hexdigest()[:8]
    return f"{safe}-{digest}.md"


def owner_slice(report: ScanReport, jobs: list[Job],
                results: Sequence[Result] | None = None) -> ScanReport:
    """The scan as seen by the owner of `jobs`: everything else about the estate left out.

    `results` are the jobs' results when the caller has them at hand (sliced once for every
    owner); otherwise they are picked out of the report's.
    """
    ids = {j.id.lower() for j in jobs}
    estate = report.estate
    runs = {k: estate.executions_by_job[k] for k in sorted(ids) if k in estate.executions_by_job}
    sliced = replace(
        estate, jobs=tuple(jobs),
        executions=tuple(e for job_runs in runs.values() for e in job_runs),
        executions_by_job=MappingProxyType(runs),
        changes=tuple(c for c in estate.changes if c.resource_id.lower() in ids))
    cost = report.cost.of_jobs(ids) if report.cost is not None else None
    if results is None:
        results = [r for r in report.results if r.job.id.lower() in ids]
    return replace(report, estate=sliced, cost=cost, results=tuple(results),
                   waivers=tuple(w for w in report.waivers if w.matched))


def write_owner_reports(report: ScanReport, folder: Path) -> list[Path]:
    by_owner: dict[str | None, list[Job]] = defaultdict(list)
    owner_of: dict[str, str | None] = {}
    for job in report.estate.jobs:
        owner_of[job.id] = owner = report.owner(job)
        by_owner[owner].append(job)
    results_of: dict[str | None, list[Result]] = defaultdict(list)
    for result in report.results:  # one pass for every owner, in the report's order
        results_of[owner_of[result.job.id]].append(result)
    written = []
    for owner, jobs in sorted(by_owner.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
        tag = escape_text(report.settings.scan.owner_tag)
        who = escape_text(owner) if owner else "no owner tag"
        whose = f"whose `{tag}` tag is **{who}**" if owner else f"without an `{tag}` tag"
        text = render(owner_slice(report, jobs, results_of[owner]))
        title, _, rest = text.partition("\n")
        note = (f"\n\n> This report covers only the {len(jobs)} job(s) {whose}; report.md "
                "covers the whole scan.")
        path = folder / FOLDER / file_name(owner)
        path.parent.mkdir(exist_ok=True)
        write_text(path, f"{title}: {who}{note}\n{rest}")
        written.append(path)
    return written
