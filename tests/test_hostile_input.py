"""Hostile and malformed rows, generated: any field missing, null, of the wrong type, huge, or
full of unicode (lone surrogates, bidirectional overrides, control characters), in every export
shape. Reading, normalising, pricing and every check either produce a result or say `unknown`
(or `error`) for that job; nothing raises, no job is silently dropped.

The direct tests run normalize + evaluate (fast, many examples); one runs the whole CLI over a
generated snapshot folder and reads back every report.
"""

from __future__ import annotations

import copy
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import checks
from auditor.check import Status
from auditor.cli import main
from auditor.engine import active_checks, evaluate
from auditor.normalize import normalize
from auditor.pricing import price
from auditor.settings import load_settings
from auditor.snapshot import read_snapshot
from tests.factories import job_row

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
SETTINGS = load_settings(known_checks=[c.id for c in checks.catalogue()])
ACTIVE = active_checks(checks.catalogue(), SETTINGS)

# Values a field may take instead of what Azure documents.
_TEXT = st.text(st.characters(codec=None), max_size=40)  # any code point, surrogates included
_NASTY = st.sampled_from([
    "", " ", "\x00", "\u202e\u2066evil\u2069", "=cmd|' /C calc'!A0", "+1", "-1", "@SUM(1)",
    "a|b\nc`d`", "<script>alert(1)</script>", "../../etc/passwd", "\ud800", "💥" * 50,
    "A" * 100_000, "null", "NaN", "1e309", "0 0 31 2 *", "* * * * * *", "61 25 * * *",
])
_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), _TEXT, _NASTY,
                    st.just(10**40), st.just(-1))
_JSON = st.recursive(_SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_TEXT, inner, max_size=3)), max_leaves=8)
DELETE = object()
_HOSTILE = st.one_of(_JSON, st.just(DELETE))

# The fields a check or the normaliser reads, as paths into a job row.
PATHS = [
    "id", "name", "type", "location", "tags", "tags.owner", "identity", "identity.type",
    "identity.userAssignedIdentities", "properties", "properties.environmentId",
    "properties.configuration", "properties.configuration.replicaTimeout",
    "properties.configuration.replicaRetryLimit", "properties.configuration.triggerType",
    "properties.configuration.scheduleTriggerConfig",
    "properties.configuration.scheduleTriggerConfig.cronExpression",
    "properties.configuration.scheduleTriggerConfig.parallelism",
    "properties.configuration.secrets", "properties.configuration.registries",
    "properties.template", "properties.template.containers",
    "properties.template.containers.0", "properties.template.containers.0.image",
    "properties.template.containers.0.env", "properties.template.containers.0.command",
    "properties.template.containers.0.args", "properties.template.containers.0.resources",
    "properties.template.containers.0.resources.cpu",
    "properties.template.containers.0.resources.memory", "properties.template.initContainers",
]


def _set(row: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = row
    for part in parents:
        if isinstance(node, list):
            node = node[int(part)] if part.isdigit() and int(part) < len(node) else None
        else:
            node = node.get(part)
        if not isinstance(node, (dict, list)):
            return  # an earlier change replaced the parent: nothing left to change here
    if isinstance(node, list):
        if not last.isdigit():
            return
        index = int(last)
        if index < len(node):
            if value is DELETE:
                node.pop(index)
            else:
                node[index] = value
    elif value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value


@st.composite
def hostile_job(draw: st.DrawFn, n: int = 0) -> dict[str, Any]:
    row = job_row(f"job-{n}")
    trigger = draw(st.sampled_from(["Schedule", "Event", "Manual", "Scheduled", "x"]))
    if trigger == "Event":
        row["properties"]["configuration"]["eventTriggerConfig"] = {
            "scale": {"minExecutions": draw(_SCALAR), "maxExecutions": draw(_SCALAR),
                      "rules": draw(st.one_of(_JSON, st.just([{
                          "name": draw(_SCALAR), "type": "azure-queue",
                          "metadata": draw(st.dictionaries(_TEXT, _SCALAR, max_size=3)),
                          "auth": draw(_JSON)}])))}}
    row["properties"]["configuration"]["triggerType"] = trigger
    for path in draw(st.lists(st.sampled_from(PATHS), max_size=6, unique=True)):
        _set(row, path, draw(_HOSTILE))
    return row


def _execution(draw: st.DrawFn, job: dict[str, Any]) -> dict[str, Any]:
    start = AS_OF - timedelta(days=draw(st.integers(0, 40)))
    return {"id": f"{job.get('id')}/executions/e", "name": draw(_SCALAR),
            "type": "Microsoft.App/jobs/executions",
            "properties": {"status": draw(st.one_of(_SCALAR, st.sampled_from(
                               ["Succeeded", "Failed", "Running"]))),
                           "startTime": draw(st.one_of(_SCALAR, st.just(start.isoformat()))),
                           "endTime": draw(_SCALAR)}}


SHAPES = ["array", "arm-list", "graph", "graph-table", "single"]


def _document(shape: str, rows: list[Any]) -> Any:
    if shape == "array":
        return rows
    if shape == "arm-list":
        return {"value": rows}
    if shape == "graph":
        return {"count": len(rows), "data": rows, "skip_token": None}
    if shape == "graph-table":
        columns = sorted({k for r in rows if isinstance(r, dict) for k in r if isinstance(k, str)})
        return {"totalRecords": len(rows), "count": len(rows), "resultTruncated": "false",
                "data": {"columns": [{"name": c, "type": "object"} for c in columns],
                         "rows": [[r.get(c) if isinstance(r, dict) else None for c in columns]
                                  for r in rows]}}
    return rows[0] if rows else {}


@st.composite
def hostile_snapshot(draw: st.DrawFn, max_jobs: int = 4) -> dict[str, Any]:
    """File name -> document: jobs in one export shape, executions in another."""
    jobs = [draw(hostile_job(n)) for n in range(draw(st.integers(1, max_jobs)))]
    shape = draw(st.sampled_from(SHAPES))
    files: dict[str, Any] = {"jobs.json": _document(shape, jobs if shape != "single"
                                                    else jobs[:1])}
    executions = [_execution(draw, j) for j in jobs if isinstance(j, dict)]
    files["executions.json"] = _document(draw(st.sampled_from(SHAPES[:3])), executions)
    if draw(st.booleans()):
        files["junk.json"] = draw(_JSON)
    return files


def _write(folder: Path, files: dict[str, Any]) -> None:
    for name, document in files.items():
        # ensure_ascii: lone surrogates travel as \\udxxx escapes, as a JSON export may hold them
        (folder / name).write_text(json.dumps(document, ensure_ascii=True, allow_nan=True))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_snapshot())
def test_every_check_answers_for_every_job_whatever_the_rows(files: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _write(Path(folder), files)
        try:
            raw = read_snapshot(Path(folder))
        except Exception as e:  # only a clear InputError may stop reading (e.g. junk shapes)
            from auditor.errors import InputError
            assert isinstance(e, InputError), repr(e)
            return
    estate = normalize(raw)
    read_ids = {str(i.row.get("id")).lower() for i in raw.items["microsoft.app/jobs"]
                if isinstance(i.row.get("id"), (str, int, float))
                and not isinstance(i.row.get("id"), bool) and str(i.row.get("id"))}
    assert {j.id.lower() for j in estate.jobs} == read_ids  # no job with an id is dropped
    cost = price(estate, SETTINGS.cost, AS_OF - timedelta(days=30), AS_OF)
    results = evaluate(estate, ACTIVE, SETTINGS.policy, AS_OF, cost)
    assert len(results) == len(estate.jobs) * len(ACTIVE)
    errors = [(r.check.id, r.outcome.message) for r in results
              if r.outcome.status is Status.ERROR]
    assert errors == [], errors  # a check that raises is a bug: it must say unknown instead
    for result in results:
        assert isinstance(result.outcome.message, str) and result.outcome.message


@pytest.mark.parametrize("shape", SHAPES)
def test_a_job_with_every_field_hostile_still_gets_every_check(shape: str,
                                                               tmp_path: Path) -> None:
    row = job_row("all-wrong")
    broken = [p for p in PATHS if p not in ("id", "type")]  # keep what makes it a job
    for index, path in enumerate(broken):
        _set(row, path, [None, 7, ["x"], {"y": 1}, "\ud800", True][index % 6])
    (tmp_path / "jobs.json").write_text(json.dumps(_document(shape, [row]), ensure_ascii=True))
    estate = normalize(read_snapshot(tmp_path))
    assert len(estate.jobs) == 1
    results = evaluate(estate, ACTIVE, SETTINGS.policy, AS_OF)
    statuses = {r.check.id: r.outcome.status for r in results}
    assert set(statuses) == {c.id for c in ACTIVE}
    assert Status.ERROR not in statuses.values(), statuses


@settings(max_examples=3, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(files=hostile_snapshot(max_jobs=6))
def test_the_cli_scans_a_generated_hostile_snapshot(files: dict[str, Any],
                                                    tmp_path_factory: pytest.TempPathFactory,
                                                    ) -> None:
    base = tmp_path_factory.mktemp("hostile")
    export = base / "export"
    export.mkdir()
    _write(export, files)
    out = base / "out"
    code = main(["scan", "--snapshot", str(export), "--out", str(out),
                 "--as-of", AS_OF.isoformat()])
    assert code in (0, 1, 2, 3)  # never 4: no internal error
    if code == 2:
        assert not out.exists()
        return
    document = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    assert document["scan"]["complete"] is (code != 3)
    for path in out.iterdir():
        if path.is_file():
            assert path.stat().st_size > 0, path
    assert copy.deepcopy(document)  # serialisable and read back


def test_lone_surrogates_from_azure_are_kept_as_evidence_and_shown_as_replacement(
        tmp_path: Path) -> None:
    """JSON may carry half a surrogate pair ("\\ud800"); no text encoding can write it. The
    evidence keeps it exactly (as its JSON escape); the model and reports see U+FFFD."""
    from auditor.snapshot import write_rows

    row = job_row("lone\ud800half", **{"tags": {"owner": "\udfff"}})
    path = write_rows(tmp_path, "resource-graph-jobs", [row])
    assert "\\ud800" in path.read_text(encoding="utf-8")
    assert json.loads(path.read_text(encoding="utf-8"))["data"][0]["name"] == "lone\ud800half"
    [job] = normalize(read_snapshot(tmp_path)).jobs
    assert job.name == "lone\ufffdhalf" and job.tags["owner"] == "\ufffd"
