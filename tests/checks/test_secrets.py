import pytest

from auditor.check import Status
from checks.secrets import credential_literals, key_vault_secrets
from tests.factories import DELETE, make_context, make_job

KV = {"name": "api-key", "keyVaultUrl": "https://kv.vault.azure.net/secrets/api",
      "identity": "system"}


SECRETS = "properties.configuration.secrets"


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({SECRETS: [KV]}, Status.PASS, id="pass-key-vault-reference"),
    pytest.param({SECRETS: [KV, {"name": "stored", "value": None}]}, Status.FAIL,
                 id="fail-one-stored"),
    pytest.param({SECRETS: [{"name": "stored"}]}, Status.FAIL, id="fail-platform-stored"),
    pytest.param({SECRETS: []}, Status.NOT_APPLICABLE, id="na-no-secrets"),
    pytest.param({SECRETS: DELETE}, Status.NOT_APPLICABLE, id="na-secrets-absent"),
    pytest.param({"properties.configuration": DELETE}, Status.UNKNOWN,
                 id="unknown-no-configuration"),
])
def test_key_vault_secrets(changes: dict, expected: Status) -> None:
    outcome = key_vault_secrets(make_job(**changes), make_context())
    assert outcome.status is expected


def test_failure_names_stored_secrets_in_evidence() -> None:
    job = make_job(**{"properties.configuration.secrets": [KV, {"name": "stored-pw"}]})
    outcome = key_vault_secrets(job, make_context())
    assert outcome.subject == "stored-pw"
    assert any("stored-pw" in line for line in outcome.evidence)
    assert not any("api-key" in line for line in outcome.evidence)


# --- CAJ-004 -------------------------------------------------------------------------------

STORAGE_KEY = "Zm9vYmFyYmF6cXV4" * 5 + "AbCdEfGh=="
CONNECTION = (f"DefaultEndpointsProtocol=https;AccountName=contosodata;AccountKey={STORAGE_KEY};"
              "EndpointSuffix=core.windows.net")
CONTAINERS = "properties.template.containers"


def container(env: list | None = None, **fields: object) -> list[dict]:
    return [{"name": "worker", "image": "contosoacr.azurecr.io/worker:2.1.0",
             "resources": {"cpu": 0.5, "memory": "1Gi"}, "env": env or [], **fields}]


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({CONTAINERS: container([{"name": "STORAGE", "value": CONNECTION}])},
                 Status.FAIL, id="fail-storage-connection-string"),
    pytest.param({CONTAINERS: container([{"name": "DB_PASSWORD", "value": "Tr0ub4dor&3x"}])},
                 Status.FAIL, id="fail-password-by-name"),
    pytest.param({CONTAINERS: container(args=["--db", "postgres://app:S3cr3tP4ss@db:5432/x"])},
                 Status.FAIL, id="fail-password-in-url-arg"),
    pytest.param({CONTAINERS: container(args=["--api-token", "q9X2mV7pL4kR8sT1"])},
                 Status.FAIL, id="fail-token-after-flag"),
    pytest.param({CONTAINERS: container(command=["/bin/sh", "-c",
                                                 "export API_KEY=q9X2mV7pL4kR8 && run"])},
                 Status.FAIL, id="fail-assignment-in-command"),
    pytest.param({"properties.template.initContainers": container(
        [{"name": "SAS_URL", "value": "https://acct.blob.core.windows.net/c?sv=2022-11-02&sig="
                                      "Ab12Cd34Ef56Gh78Ij90Kl%3D"}])},
                 Status.FAIL, id="fail-sas-in-init-container"),
    pytest.param({"properties.configuration.triggerType": "Event",
                  "properties.configuration.eventTriggerConfig": {"scale": {"rules": [
                      {"name": "q", "type": "azure-queue",
                       "metadata": {"connection": CONNECTION}}]}}},
                 Status.FAIL, id="fail-scale-rule-metadata"),
    pytest.param({CONTAINERS: container([
        {"name": "KEY_VAULT_NAME", "value": "kv-contoso-prod"},
        {"name": "PASSWORD_MIN_LENGTH", "value": "12"},
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "API_URL", "value": "https://api.contoso.com/v2/orders"},
        {"name": "FEATURE_TOKEN_ENABLED", "value": "true"},
        {"name": "DB_PASSWORD", "secretRef": "db-password"},
        {"name": "AZURE_CLIENT_ID", "value": "0c9e2d4b-1f3a-4b6c-9e8d-7a5b3c1d2e0f"},
        {"name": "RETRIES", "value": "5"}])},
                 Status.PASS, id="pass-near-misses"),
    pytest.param({}, Status.PASS, id="pass-secret-refs-only"),
    pytest.param({"properties.template": DELETE}, Status.UNKNOWN, id="unknown-no-template"),
])
def test_credential_literals(changes: dict, expected: Status) -> None:
    outcome = credential_literals(make_job(**changes), make_context())
    assert outcome.status is expected


def test_credential_evidence_is_masked_and_names_the_place() -> None:
    job = make_job(**{CONTAINERS: container([{"name": "STORAGE", "value": CONNECTION}])})
    outcome = credential_literals(job, make_context())
    (line,) = outcome.evidence
    assert line.startswith("container 'worker' env 'STORAGE': Defa****")
    assert outcome.subject == "container 'worker' env 'STORAGE'"
    for start in range(len(CONNECTION) - 4):
        assert CONNECTION[start:start + 5] not in line + outcome.message
