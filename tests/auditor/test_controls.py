from __future__ import annotations

from datetime import date

import pytest

import checks
from auditor.check import Check, failed, not_applicable, passed
from auditor.controls import control_rows, frameworks
from auditor.results import Result
from auditor.waivers import Waiver
from checks.identity import managed_identity, registry_identity
from tests.factories import make_job

FRAMEWORKS = {"MCSB", "CIS-v8", "NIST-800-53", "ISO-27001-2022", "SOC2"}


@pytest.mark.parametrize("check", checks.catalogue(), ids=lambda c: c.id)
def test_every_mapping_names_a_known_control_in_every_framework(check: Check) -> None:
    catalogue = frameworks()
    assert set(check.controls) == FRAMEWORKS
    for framework, ids in check.controls.items():
        unknown = set(ids) - set(catalogue[framework].controls)
        assert not unknown, f"{check.id} maps to unknown {framework} controls {unknown}"


def test_pass_rate_per_control_counts_jobs_not_results() -> None:
    a, b, c = (make_job(name=n) for n in ("a", "b", "c"))
    waiver = Waiver("CAJ-001", "*", "j", "x", "t", date(2099, 1, 1), "w")
    results = [
        Result(managed_identity, a, passed("ok")), Result(registry_identity, a, passed("ok")),
        Result(managed_identity, b, passed("ok")), Result(registry_identity, b, failed("pw")),
        Result(managed_identity, c, failed("none"), waiver=waiver),
        Result(registry_identity, c, not_applicable("none")),
    ]
    rows = {(r.framework, r.control_id): r
            for r in control_rows([managed_identity, registry_identity], results)}
    both = rows[("MCSB", "IM-3")]  # both checks map here
    assert both.check_ids == ("CAJ-001", "CAJ-002")
    assert (both.tested, both.passed, both.failed, both.waived) == (3, 1, 1, 1)
    assert both.pass_rate == pytest.approx(1 / 3)
    only_registry = rows[("MCSB", "PA-7")]
    assert (only_registry.tested, only_registry.passed, only_registry.failed) == (2, 1, 1)
    assert both.title == "Manage application identities securely and automatically"


def test_controls_are_in_natural_order() -> None:
    rows = control_rows(checks.catalogue(), [])
    iso = [r.control_id for r in rows if r.framework == "ISO-27001-2022"]
    assert iso.index("A.8.2") < iso.index("A.8.15")
    assert rows[0].framework == "MCSB"
