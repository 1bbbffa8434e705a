import pytest

from auditor.check import Status
from checks.governance import required_tags
from tests.factories import DELETE, make_context, make_job

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
])
def test_required_tags(tags: object, expected: Status, missing: str) -> None:
    outcome = required_tags(make_job(tags=tags), make_context())
    assert outcome.status is expected
    assert outcome.subject == missing


def test_required_tags_follow_policy() -> None:
    job = make_job(tags={"owner": "x"})
    assert required_tags(job, make_context(required_tags=["owner"])).status is Status.PASS
