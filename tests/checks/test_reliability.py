import pytest

from auditor.check import Status
from checks.reliability import (
    event_concurrency,
    provisioned,
    replica_resources,
    replica_timeout,
    retry_limit,
    schedule_overlap,
)
from tests.factories import DELETE, make_context, make_job

TIMEOUT = "properties.configuration.replicaTimeout"
RETRIES = "properties.configuration.replicaRetryLimit"


NO_CONFIGURATION = {"properties.configuration": DELETE}


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({TIMEOUT: 1800}, Status.PASS, id="pass-1800"),
    pytest.param({TIMEOUT: 14400}, Status.PASS, id="pass-at-limit"),
    pytest.param({TIMEOUT: "3600"}, Status.PASS, id="pass-numeric-string"),
    pytest.param({TIMEOUT: 14401}, Status.FAIL, id="fail-over-limit"),
    pytest.param({TIMEOUT: 0}, Status.FAIL, id="fail-zero"),
    pytest.param({TIMEOUT: DELETE}, Status.FAIL, id="fail-absent"),
    pytest.param({TIMEOUT: "forever"}, Status.FAIL, id="fail-unreadable"),
    pytest.param(NO_CONFIGURATION, Status.UNKNOWN, id="unknown-no-configuration"),
])
def test_replica_timeout(changes: dict, expected: Status) -> None:
    outcome = replica_timeout(make_job(**changes), make_context())
    assert outcome.status is expected


def test_replica_timeout_follows_policy() -> None:
    job = make_job(**{TIMEOUT: 7200})
    strict, loose = (make_context(max_replica_timeout_seconds=s) for s in (3600, 7200))
    assert replica_timeout(job, strict).status is Status.FAIL
    assert replica_timeout(job, loose).status is Status.PASS



@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({RETRIES: 0}, Status.PASS, id="pass-zero"),
    pytest.param({RETRIES: 3}, Status.PASS, id="pass-at-cap"),
    pytest.param({RETRIES: DELETE}, Status.PASS, id="pass-absent-means-zero"),
    pytest.param({RETRIES: 4}, Status.FAIL, id="fail-over-cap"),
    pytest.param({RETRIES: 10}, Status.FAIL, id="fail-ten"),
    pytest.param(NO_CONFIGURATION, Status.UNKNOWN, id="unknown-no-configuration"),
])
def test_retry_limit(changes: dict, expected: Status) -> None:
    outcome = retry_limit(make_job(**changes), make_context())
    assert outcome.status is expected


# --- CAJ-012 -------------------------------------------------------------------------------
def scheduled(cron: object, timeout: object = 1800) -> dict:
    return {"properties.configuration.scheduleTriggerConfig.cronExpression": cron,
            TIMEOUT: timeout}


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param(scheduled("*/5 * * * *", 1800), Status.FAIL, id="fail-every-5-min-30-min-run"),
    pytest.param(scheduled("0,10 3 * * *", 900), Status.FAIL, id="fail-two-firings-10-min-apart"),
    pytest.param(scheduled("0 * * * *", 3000), Status.PASS, id="pass-hourly-50-min-run"),
    pytest.param(scheduled("0 * * * *", 3600), Status.FAIL, id="fail-timeout-equals-gap"),
    pytest.param(scheduled("0 2 * * *", 14400), Status.PASS, id="pass-nightly"),
    pytest.param(scheduled("30 23 * * 1-5", 3600), Status.PASS, id="pass-weekdays"),
    pytest.param(scheduled("0 9-17 * * *", 3000), Status.PASS, id="pass-office-hours"),
    pytest.param(scheduled("61 * * * *"), Status.FAIL, id="fail-invalid-minute"),
    pytest.param(scheduled("every day"), Status.FAIL, id="fail-not-cron"),
    pytest.param({"properties.configuration.triggerType": "Manual"}, Status.NOT_APPLICABLE,
                 id="na-manual"),
    pytest.param({"properties.configuration": DELETE}, Status.UNKNOWN, id="unknown-no-config"),
    pytest.param(scheduled("0 2 * * *", DELETE), Status.UNKNOWN, id="unknown-no-timeout"),
])
def test_schedule_overlap(changes: dict, expected: Status) -> None:
    outcome = schedule_overlap(make_job(**changes), make_context())
    assert outcome.status is expected


def test_invalid_cron_says_why() -> None:
    outcome = schedule_overlap(make_job(**scheduled("61 * * * *")), make_context())
    assert "invalid" in outcome.message and "minute" in outcome.message


def test_scheduled_quirk_is_a_schedule() -> None:
    job = make_job(**{"properties.configuration.triggerType": "Scheduled",
                      **scheduled("*/5 * * * *", 1800)})
    assert schedule_overlap(job, make_context()).status is Status.FAIL


# --- CAJ-013 -------------------------------------------------------------------------------
def event(scale: object) -> dict:
    return {"properties.configuration.triggerType": "Event",
            "properties.configuration.eventTriggerConfig": {"parallelism": 1, "scale": scale}}


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param(event({"maxExecutions": 10}), Status.PASS, id="pass-10"),
    pytest.param(event({"maxExecutions": 25}), Status.PASS, id="pass-at-cap"),
    pytest.param(event({"maxExecutions": 100}), Status.FAIL, id="fail-100"),
    pytest.param(event({"minExecutions": 0}), Status.FAIL, id="fail-absent-means-100"),
    pytest.param(event(DELETE), Status.FAIL, id="fail-no-scale-block"),
    pytest.param({}, Status.NOT_APPLICABLE, id="na-schedule"),
    pytest.param({"properties.configuration": DELETE}, Status.UNKNOWN, id="unknown-no-config"),
])
def test_event_concurrency(changes: dict, expected: Status) -> None:
    assert event_concurrency(make_job(**changes), make_context()).status is expected


def test_event_concurrency_follows_policy() -> None:
    job = make_job(**event({"maxExecutions": 100}))
    assert event_concurrency(job, make_context(max_event_executions=100)).status is Status.PASS


# --- CAJ-014 -------------------------------------------------------------------------------
@pytest.mark.parametrize(("state", "expected"), [
    pytest.param("Succeeded", Status.PASS, id="pass-succeeded"),
    pytest.param("succeeded", Status.PASS, id="pass-lower-case"),
    pytest.param("Failed", Status.FAIL, id="fail-failed"),
    pytest.param("InProgress", Status.FAIL, id="fail-in-progress"),
    pytest.param(DELETE, Status.UNKNOWN, id="unknown-absent"),
])
def test_provisioned(state: object, expected: Status) -> None:
    job = make_job(**{"properties.provisioningState": state})
    assert provisioned(job, make_context()).status is expected


# --- CAJ-015 -------------------------------------------------------------------------------
def sized(*containers: tuple[float, str], init: tuple[float, str] | None = None) -> dict:
    main = [{"name": f"c{i}", "image": "contosoacr.azurecr.io/x:1",
             "resources": {"cpu": cpu, "memory": memory}}
            for i, (cpu, memory) in enumerate(containers)]
    changes: dict = {"properties.template.containers": main}
    if init:
        changes["properties.template.initContainers"] = [{
            "name": "init", "image": "contosoacr.azurecr.io/init:1",
            "resources": {"cpu": init[0], "memory": init[1]}}]
    return changes


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param(sized((0.5, "1Gi")), Status.PASS, id="pass-small"),
    pytest.param(sized((2, "4Gi")), Status.PASS, id="pass-at-caps"),
    pytest.param(sized((1, "2Gi"), (1, "2048Mi")), Status.PASS, id="pass-two-containers-sum"),
    pytest.param(sized((4, "8Gi")), Status.FAIL, id="fail-large"),
    pytest.param(sized((1.5, "3Gi"), (1, "2Gi")), Status.FAIL, id="fail-sum-over-caps"),
    pytest.param(sized((0.5, "1Gi"), init=(2.5, "1Gi")), Status.FAIL, id="fail-init-over-cpu"),
    pytest.param(sized((1, "2Gi"), init=(1, "2Gi")), Status.PASS,
                 id="pass-init-runs-before-main"),
    pytest.param(sized((0.25, "250Mb")), Status.PASS, id="pass-decimal-megabytes"),
    pytest.param(sized((0.5, "lots")), Status.UNKNOWN, id="unknown-unreadable-memory"),
    pytest.param({"properties.template": DELETE}, Status.UNKNOWN, id="unknown-no-template"),
])
def test_replica_resources(changes: dict, expected: Status) -> None:
    assert replica_resources(make_job(**changes), make_context()).status is expected
