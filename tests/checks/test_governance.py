import pytest

from auditor.check import Status
from checks.governance import naming_convention, required_tags
from tests.factories import DELETE, make_context, make_job

TRIMMED = object()  # a row projected without tags or properties
ALL = {"owner": "team-data@contoso.com", "cost-center": "CC-1", "environment": "prod"}


@pytest.mark.parametrize(("tags", "expected", "missing"), [
    pytest.param(ALL, Status.PASS, "", id="pass-all-present"),
    pytest.param({"Owner": "a", "COST-CENTER": "b", "Environment": "c"}, Status.PASS, "",
                 id="pass-names-case-insensitive"),
    pytest.param({"owner": "a", "cost-center": "b"}, Status.FAIL, "environment",
                 id="fail-one-missing"),
    pytest.param({**ALL, "owner": "  "}, Status.FAIL, "owner", id="fail-blank-value"),
    pytest.param({}, Status.FAIL, "owner,cost-center,environment", id="fail-no-tags"),
    pytest.param(DELETE, Status.FAIL, "owner,cost-center,environment", id="fail-tags-absent"),
    pytest.param(None, Status.FAIL, "owner,cost-center,environment", id="fail-tags-null"),
    pytest.param(TRIMMED, Status.UNKNOWN, "", id="unknown-trimmed-row"),
])
def test_required_tags(tags: object, expected: Status, missing: str) -> None:
    job = make_job(tags=DELETE, properties=DELETE) if tags is TRIMMED else make_job(tags=tags)
    outcome = required_tags(job, make_context())
    assert outcome.status is expected
    assert outcome.subject == missing


def test_required_tags_follow_policy() -> None:
    job = make_job(tags={"owner": "x"})
    assert required_tags(job, make_context(required_tags=["owner"])).status is Status.PASS


# --- CAJ-030 value rules -------------------------------------------------------------------
RULES = {"environment": {"allowed": ["dev", "test", "prod"]},
         "owner": {"pattern": r"[^@\s]+@contoso\.com"}}


@pytest.mark.parametrize(("tags", "expected", "subject"), [
    pytest.param(ALL, Status.PASS, "", id="pass-valid-values"),
    pytest.param({**ALL, "environment": "PROD"}, Status.PASS, "",
                 id="pass-allowed-case-insensitive"),
    pytest.param({**ALL, "environment": "staging"}, Status.FAIL, "environment",
                 id="fail-value-not-allowed"),
    pytest.param({**ALL, "owner": "platform-team"}, Status.FAIL, "owner",
                 id="fail-owner-not-email"),
    pytest.param({"owner": "x@contoso.com", "cost-center": "1"}, Status.FAIL, "environment",
                 id="fail-missing-and-rules"),
])
def test_tag_value_rules(tags: dict, expected: Status, subject: str) -> None:
    outcome = required_tags(make_job(tags=tags), make_context(tag_rules=RULES))
    assert outcome.status is expected
    assert outcome.subject == subject


# --- CAJ-042 -------------------------------------------------------------------------------

PATTERN = r"caj-(dev|test|prod)-[a-z0-9-]+"


@pytest.mark.parametrize(("name", "pattern", "expected"), [
    pytest.param("caj-prod-nightly-export", PATTERN, Status.PASS, id="pass-conforming"),
    pytest.param("nightly-export", PATTERN, Status.FAIL, id="fail-no-prefix"),
    pytest.param("caj-prod-Nightly", PATTERN, Status.FAIL, id="fail-upper-case"),
    pytest.param("anything", "", Status.NOT_APPLICABLE, id="na-no-convention"),
])
def test_naming_convention(name: str, pattern: str, expected: Status) -> None:
    outcome = naming_convention(make_job(name=name), make_context(job_name_pattern=pattern))
    assert outcome.status is expected


def test_naming_convention_is_off_until_configured() -> None:
    assert naming_convention.requires_policy == "job_name_pattern"
