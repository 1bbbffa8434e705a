import pytest

from auditor.check import Status
from checks.reliability import replica_timeout, retry_limit
from tests.factories import DELETE, make_context, make_job

TIMEOUT = "properties.configuration.replicaTimeout"
RETRIES = "properties.configuration.replicaRetryLimit"


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(1800, Status.PASS, id="pass-1800"),
    pytest.param(14400, Status.PASS, id="pass-at-limit"),
    pytest.param("3600", Status.PASS, id="pass-numeric-string"),
    pytest.param(14401, Status.FAIL, id="fail-over-limit"),
    pytest.param(0, Status.FAIL, id="fail-zero"),
    pytest.param(DELETE, Status.FAIL, id="fail-absent"),
    pytest.param("forever", Status.FAIL, id="fail-unreadable"),
])
def test_replica_timeout(value: object, expected: Status) -> None:
    outcome = replica_timeout(make_job(**{TIMEOUT: value}), make_context())
    assert outcome.status is expected


def test_replica_timeout_follows_policy() -> None:
    job = make_job(**{TIMEOUT: 7200})
    strict, loose = (make_context(max_replica_timeout_seconds=s) for s in (3600, 7200))
    assert replica_timeout(job, strict).status is Status.FAIL
    assert replica_timeout(job, loose).status is Status.PASS


def test_replica_timeout_unknown_without_configuration() -> None:
    job = make_job(**{"properties.configuration": DELETE})
    assert replica_timeout(job, make_context()).status is Status.UNKNOWN


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(0, Status.PASS, id="pass-zero"),
    pytest.param(3, Status.PASS, id="pass-at-cap"),
    pytest.param(DELETE, Status.PASS, id="pass-absent-means-zero"),
    pytest.param(4, Status.FAIL, id="fail-over-cap"),
    pytest.param(10, Status.FAIL, id="fail-ten"),
])
def test_retry_limit(value: object, expected: Status) -> None:
    outcome = retry_limit(make_job(**{RETRIES: value}), make_context())
    assert outcome.status is expected


def test_retry_limit_unknown_without_configuration() -> None:
    job = make_job(**{"properties.configuration": DELETE})
    assert retry_limit(job, make_context()).status is Status.UNKNOWN
