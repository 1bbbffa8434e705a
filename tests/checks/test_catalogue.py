"""Meta tests over the registry: what every check must carry."""

import importlib
import re

import pytest

import checks
from auditor.check import Check

CATALOGUE = checks.catalogue()


def test_ids_are_unique_and_well_formed() -> None:
    ids = [c.id for c in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"CAJ-\d{3}", i) for i in ids)


def test_first_issue_checks_exist() -> None:
    assert {"CAJ-001", "CAJ-003", "CAJ-010", "CAJ-011", "CAJ-030"} <= {c.id for c in CATALOGUE}


@pytest.mark.parametrize("check", CATALOGUE, ids=lambda c: c.id)
def test_metadata_is_complete(check: Check) -> None:
    assert check.title and check.rationale and check.remediation and check.category
    assert check.references and all(r.startswith("https://learn.microsoft.com/")
                                    for r in check.references)
    assert check.controls and all(check.controls.values())


@pytest.mark.parametrize("check", CATALOGUE, ids=lambda c: c.id)
def test_every_check_has_a_table_with_pass_fail_and_unknown_or_na(check: Check) -> None:
    """`tests/checks/test_<module>.py::test_<function>` is parametrized with case ids that say
    the expected status; a check is not done without a passing, a failing and a
    not-applicable or unknown case."""
    module = importlib.import_module(
        f"tests.checks.test_{check.function.__module__.rsplit('.', 1)[-1]}")
    test = getattr(module, f"test_{check.function.__name__}")
    ids = [p.id or "" for mark in test.pytestmark if mark.name == "parametrize"
           for p in mark.args[1]]
    prefixes = {i.split("-", 1)[0] for i in ids}
    assert {"pass", "fail"} <= prefixes and prefixes & {"na", "unknown"}, ids
