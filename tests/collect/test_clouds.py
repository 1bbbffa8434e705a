"""Clouds: endpoints, their overrides (environment over config over cloud), and audiences."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from auditor.collect.clouds import CLOUDS, resolve
from auditor.collect.live import collect
from auditor.coverage import Coverage
from auditor.errors import CollectionError, InputError
from tests.azure_server import AzureServer
from tests.collect.helpers import SUB_A, FakeTime, azure_settings, collection_record

Run = Callable[..., Coverage]


@pytest.mark.parametrize(("cloud", "arm", "audience", "logs", "authority"), [
    ("AzureCloud", "https://management.azure.com", "https://management.azure.com",
     "https://api.loganalytics.io", "login.microsoftonline.com"),
    ("AzureUSGovernment", "https://management.usgovcloudapi.net",
     "https://management.core.usgovcloudapi.net", "https://api.loganalytics.us",
     "login.microsoftonline.us"),
    ("AzureChinaCloud", "https://management.chinacloudapi.cn",
     "https://management.chinacloudapi.cn", "https://api.loganalytics.azure.cn",
     "login.chinacloudapi.cn"),
])
def test_each_cloud_has_its_own_endpoints_and_audiences(
        cloud: str, arm: str, audience: str, logs: str, authority: str) -> None:
    endpoints = resolve(azure_settings(cloud=cloud), environ={})
    assert (endpoints.arm, endpoints.log_analytics) == (arm, logs)
    assert endpoints.arm_source == f"cloud {cloud}"
    assert endpoints.cloud.arm_scope == f"{audience}/.default"
    assert endpoints.cloud.log_analytics_scope == f"{logs}/.default"
    assert endpoints.cloud.authority_host == authority


def test_config_overrides_the_cloud_and_the_environment_overrides_config() -> None:
    settings = azure_settings(arm_endpoint="https://arm.config.example/",
                              log_analytics_endpoint="https://logs.config.example")
    from_config = resolve(settings, environ={})
    assert from_config.arm == "https://arm.config.example"
    assert from_config.arm_source == "config azure.arm_endpoint"
    assert from_config.log_analytics == "https://logs.config.example"

    from_env = resolve(settings, environ={"AUDITOR_ARM_ENDPOINT": "https://arm.env.example",
                                          "AUDITOR_LOG_ANALYTICS_ENDPOINT": "https://l.env"})
    assert (from_env.arm, from_env.log_analytics) == ("https://arm.env.example", "https://l.env")
    assert from_env.arm_source == "environment AUDITOR_ARM_ENDPOINT"
    assert from_env.log_analytics_source == "environment AUDITOR_LOG_ANALYTICS_ENDPOINT"

    blank = resolve(settings, environ={"AUDITOR_ARM_ENDPOINT": "  "})
    assert blank.arm == "https://arm.config.example"


def test_overriding_an_endpoint_never_changes_the_token_audience() -> None:
    settings = azure_settings(cloud="AzureUSGovernment", arm_endpoint="https://proxy.example")
    endpoints = resolve(settings, environ={"AUDITOR_ARM_ENDPOINT": "https://other.example"})
    assert endpoints.cloud == CLOUDS["AzureUSGovernment"]
    assert endpoints.cloud.arm_scope == "https://management.core.usgovcloudapi.net/.default"


@pytest.mark.parametrize(("variable", "value"), [
    ("AUDITOR_ARM_ENDPOINT", "http://127.0.0.1:8080"),
    ("AUDITOR_LOG_ANALYTICS_ENDPOINT", "management.azure.com"),
])
def test_an_endpoint_that_is_not_https_is_refused(variable: str, value: str) -> None:
    with pytest.raises(InputError, match=variable):
        resolve(azure_settings(), environ={variable: value})


@pytest.mark.parametrize(("cloud", "resource"), [
    ("AzureCloud", "https://management.azure.com"),
    ("AzureUSGovernment", "https://management.core.usgovcloudapi.net"),
    ("AzureChinaCloud", "https://management.chinacloudapi.cn"),
])
def test_the_token_is_asked_for_the_clouds_audience_even_at_another_endpoint(
        azure: AzureServer, run: Run, cloud: str, resource: str) -> None:
    azure.resource_graph.add_subscription(SUB_A)
    assert run(subscriptions=[SUB_A], cloud=cloud).complete
    assert azure.az is not None
    assert azure.az.resources_asked() == [resource]  # one token, cached for every request


def test_the_environment_endpoint_wins_over_a_configured_one(
        azure: AzureServer, run: Run, snapshot_dir: Path) -> None:
    azure.resource_graph.add_subscription(SUB_A)
    # Were config used, the request would go to an address that does not resolve.
    run(subscriptions=[SUB_A], arm_endpoint="https://arm.invalid")
    assert collection_record(snapshot_dir)["arm_endpoint"] == azure.url
    assert azure.requests


def test_a_configured_endpoint_is_used_without_the_environment_variable(
        azure: AzureServer, monkeypatch: pytest.MonkeyPatch, fake_time: FakeTime,
        tmp_path: Path) -> None:
    azure.resource_graph.add_subscription(SUB_A)
    monkeypatch.delenv("AUDITOR_ARM_ENDPOINT")
    settings = azure_settings(subscriptions=[SUB_A], arm_endpoint=azure.url)
    collect(settings, tmp_path / "out", sleep=fake_time.sleep, clock=fake_time.clock)
    record = collection_record(tmp_path / "out")
    assert (record["arm_endpoint"], record["arm_endpoint_source"]) == (
        azure.url, "config azure.arm_endpoint")


def test_tls_is_verified_against_requests_ca_bundle(
        azure: AzureServer, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the test CA no longer trusted, the self-signed server is refused, not accepted."""
    azure.resource_graph.add_subscription(SUB_A)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    with pytest.raises(CollectionError,
                       match=r"CERTIFICATE_VERIFY_FAILED.*REQUESTS_CA_BUNDLE"):
        run(subscriptions=[SUB_A])
    assert azure.requests == []
