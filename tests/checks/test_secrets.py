import pytest

from auditor.check import Status
from checks.secrets import key_vault_secrets
from tests.factories import DELETE, make_context, make_job

KV = {"name": "api-key", "keyVaultUrl": "https://kv.vault.azure.net/secrets/api",
      "identity": "system"}


@pytest.mark.parametrize(("secrets", "expected"), [
    pytest.param([KV], Status.PASS, id="pass-key-vault-reference"),
    pytest.param([KV, {"name": "stored", "value": None}], Status.FAIL, id="fail-one-stored"),
    pytest.param([{"name": "stored"}], Status.FAIL, id="fail-platform-stored"),
    pytest.param([], Status.NOT_APPLICABLE, id="na-no-secrets"),
    pytest.param(DELETE, Status.NOT_APPLICABLE, id="na-secrets-absent"),
])
def test_key_vault_secrets(secrets: object, expected: Status) -> None:
    job = make_job(**{"properties.configuration.secrets": secrets})
    outcome = key_vault_secrets(job, make_context())
    assert outcome.status is expected


def test_unknown_without_configuration() -> None:
    job = make_job(**{"properties.configuration": DELETE})
    assert key_vault_secrets(job, make_context()).status is Status.UNKNOWN


def test_failure_names_stored_secrets_in_evidence() -> None:
    job = make_job(**{"properties.configuration.secrets": [KV, {"name": "stored-pw"}]})
    outcome = key_vault_secrets(job, make_context())
    assert outcome.subject == "stored-pw"
    assert any("stored-pw" in line for line in outcome.evidence)
    assert not any("api-key" in line for line in outcome.evidence)
