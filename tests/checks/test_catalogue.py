"""Meta tests over the registry: what every check must carry."""

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
def test_every_check_has_table_driven_tests(check: Check) -> None:
    """A check without a passing and a failing case in its test module is not done."""
    module = check.function.__module__.rsplit(".", 1)[-1]
    from pathlib import Path

    text = (Path(__file__).parent / f"test_{module}.py").read_text()
    assert check.function.__name__ in text
    assert 'id="pass-' in text and 'id="fail-' in text
