from __future__ import annotations

from pathlib import Path

import pytest

import checks
from auditor.check import Check, Context, Outcome, Status, check, passed
from auditor.engine import active_checks, evaluate
from auditor.errors import InputError
from auditor.model import Estate, Job
from auditor.settings import Severity, load_settings
from tests.factories import AS_OF, make_job


@check(id="CAJ-900", title="t", severity=Severity.LOW, rationale="r", remediation="m")
def explodes(job: Job, context: Context) -> Outcome:
    raise KeyError("secret-value-must-not-leak")


@check(id="CAJ-901", title="t", severity=Severity.LOW, rationale="r", remediation="m")
def always_passes(job: Job, context: Context) -> Outcome:
    return passed("fine")


def test_a_raising_check_yields_error_and_the_scan_goes_on() -> None:
    estate = Estate(jobs=(make_job(name="a"), make_job(name="b")))
    results = evaluate(estate, [explodes, always_passes], load_settings().policy, AS_OF)
    assert [(r.job.name, r.check.id, r.status) for r in results] == [
        ("a", "CAJ-900", Status.ERROR), ("a", "CAJ-901", Status.PASS),
        ("b", "CAJ-900", Status.ERROR), ("b", "CAJ-901", Status.PASS)]
    assert "secret-value" not in results[0].outcome.message
    assert "KeyError" in results[0].outcome.message


def by_id(items: tuple[Check, ...]) -> dict[str, Check]:
    return {c.id: c for c in items}


def test_default_run_leaves_out_checks_that_need_a_policy_setting() -> None:
    active = by_id(active_checks(checks.catalogue(), load_settings()))
    assert "CAJ-042" not in active
    assert "CAJ-001" in active


def test_overrides_disable_and_change_severity(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[checks.CAJ-011]\nenabled = false\n[checks.CAJ-030]\nseverity = "high"\n'
                      '[policy]\njob_name_pattern = "caj-.*"\n')
    known = [c.id for c in checks.catalogue()]
    active = by_id(active_checks(checks.catalogue(), load_settings(config, known_checks=known)))
    assert "CAJ-011" not in active
    assert active["CAJ-030"].severity is Severity.HIGH
    assert "CAJ-042" in active
    assert by_id(checks.catalogue())["CAJ-030"].severity is Severity.MEDIUM, "catalogue untouched"


@pytest.mark.parametrize(("text", "message"), [
    pytest.param('[checks.CAJ-999]\nenabled = false\n', "[checks.CAJ-999] names no check",
                 id="unknown-id"),
    pytest.param('[checks.CAJ-011]\nenabeld = false\n', "checks.CAJ-011.enabeld",
                 id="typo-in-override"),
    pytest.param('[checks.CAJ-011]\nseverity = "huge"\n', "expected one of", id="bad-severity"),
])
def test_bad_overrides(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(InputError) as raised:
        load_settings(config, known_checks=[c.id for c in checks.catalogue()])
    assert message in str(raised.value) and str(config) in str(raised.value)
