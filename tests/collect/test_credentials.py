"""Sign-in: the credential each --auth mode builds, and sign-in failures as one clear line."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auditor.collect import credentials
from auditor.collect.clouds import CLOUDS
from auditor.coverage import Coverage
from auditor.errors import CollectionError
from tests.azure_server import AzureServer, job_row
from tests.collect.helpers import SUB_A

Run = Callable[..., Coverage]


class _Recorder:
    """Stands in for one azure-identity class and remembers how it was built."""

    def __init__(self, name: str, built: list[tuple[str, dict[str, Any]]]) -> None:
        self.name, self.built = name, built

    def __call__(self, **kwargs: Any) -> str:
        self.built.append((self.name, kwargs))
        return self.name


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    for name in ("DefaultAzureCredential", "AzureCliCredential", "ManagedIdentityCredential",
                 "WorkloadIdentityCredential", "EnvironmentCredential"):
        monkeypatch.setattr(credentials, name, _Recorder(name, calls))
    return calls


@pytest.mark.parametrize(("mode", "expected"), [
    ("default", ("DefaultAzureCredential", {"authority": "login.chinacloudapi.cn"})),
    ("cli", ("AzureCliCredential", {})),
    ("managed-identity", ("ManagedIdentityCredential", {"client_id": None})),
    ("workload-identity", ("WorkloadIdentityCredential", {"authority": "login.chinacloudapi.cn"})),
    ("environment", ("EnvironmentCredential", {"authority": "login.chinacloudapi.cn"})),
])
def test_each_mode_builds_its_credential_at_the_clouds_authority(
        built: list[tuple[str, dict[str, Any]]], mode: Any,
        expected: tuple[str, dict[str, Any]]) -> None:
    credentials.build_credential(mode, CLOUDS["AzureChinaCloud"], environ={})
    assert built == [expected]


def test_azure_authority_host_and_client_id_from_the_environment_are_honoured(
        built: list[tuple[str, dict[str, Any]]]) -> None:
    env = {"AZURE_AUTHORITY_HOST": "login.private.example", "AZURE_CLIENT_ID": "c1d2"}
    credentials.build_credential("environment", CLOUDS["AzureCloud"], environ=env)
    credentials.build_credential("managed-identity", CLOUDS["AzureCloud"], environ=env)
    assert built == [("EnvironmentCredential", {"authority": "login.private.example"}),
                     ("ManagedIdentityCredential", {"client_id": "c1d2"})]


def test_missing_workload_identity_settings_are_a_collection_error_with_the_fix(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CollectionError, match="AZURE_FEDERATED_TOKEN_FILE") as caught:
        credentials.build_credential("workload-identity", CLOUDS["AzureCloud"])
    assert "--auth workload-identity" in str(caught.value)


def test_az_not_logged_in_is_a_collection_error_saying_az_login(
        azure: AzureServer, run: Run) -> None:
    azure.resource_graph.add_subscription(SUB_A)
    assert azure.az is not None
    azure.az.write(logged_in=False)

    with pytest.raises(CollectionError) as caught:
        run(subscriptions=[SUB_A])
    message = str(caught.value)
    assert "sign-in failed (--auth cli)" in message and "az login" in message
    assert "\n" not in message
    assert azure.requests == []  # no request went out without a token


def test_az_missing_from_path_is_a_collection_error(
        azure: AzureServer, run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(CollectionError, match=r"Azure CLI not found.*az login"):
        run(subscriptions=[SUB_A])


def test_a_token_the_service_rejects_is_a_collection_error(
        azure: AzureServer, run: Run) -> None:
    azure.resource_graph.add_subscription(SUB_A)
    azure.token = "a-different-token"  # the server no longer accepts what az hands out

    with pytest.raises(CollectionError, match=r"rejected the token.*InvalidAuthenticationToken"):
        run(subscriptions=[SUB_A])


def test_the_token_is_never_logged_or_written(
        azure: AzureServer, run: Run, caplog: pytest.LogCaptureFixture,
        snapshot_dir: Path) -> None:
    azure.resource_graph.add_subscription(SUB_A)
    azure.resource_graph.add("resources", job_row(SUB_A, "job"))
    with caplog.at_level(logging.DEBUG):
        run(subscriptions=[SUB_A])
    assert caplog.records  # the SDKs did log at debug level
    assert azure.token not in caplog.text
    for path in snapshot_dir.rglob("*"):
        assert azure.token not in path.read_text()
