"""Credential detection: every planted kind is found, and the near misses are not."""

from __future__ import annotations

import pytest

from auditor.secret_scan import credential_reason, is_credential_name, mask

KEY = "q3Zx9LmP2vTb7RkW4nYc8HsJ1dFg6AeU0oQiK5tXzBvNmLpRsTuVwXyZaBcDeFgHiJkLmNoPqRsTuVwXyZ01234=="


@pytest.mark.parametrize(("value", "name", "reason"), [
    (f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY}", None,
     "storage or service bus key"),
    ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey="
     "AbCdEf0123456789AbCdEf0123456789AbCdEf01234=", None, "storage or service bus key"),
    ("https://acct.blob.core.windows.net/c?sv=2022-11-02&sp=r&sig=AbCdEf0123456789AbCd%3D",
     None, "SAS signature"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow...", None, "private key"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     None, "JSON web token"),
    ("ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8", None, "GitHub token"),
    ("AKIAIOSFODNN7EXAMPLE", None, "AWS access key"),
    ("xoxb-123456789012-abcdefghijkl", None, "Slack token"),
    ("postgres://app:S3cretPass@db.contoso.com:5432/orders", None, "password in a URL"),
    ("amqps://user:pa55word@mq.contoso.com", None, "password in a URL"),
    ("Tr0ub4dor&3", "DB_PASSWORD", "credential-like name"),
    ("s3cr3t-value", "clientSecret", "credential-like name"),
    ("abcdef123456", "STRIPE_API_KEY", "credential-like name"),
    ("abcdef123456", "SMTP_PASS", "credential-like name"),
    ("--password=Tr0ub4dor3", None, "credential-like name 'password' in the text"),
    ("aZ3kP9qL2mX7vB4nR8tY1wE6uI0oS5dF", None, "high-entropy string"),
])
def test_credentials_are_found(value: str, name: str | None, reason: str) -> None:
    assert credential_reason(value, name) == reason


@pytest.mark.parametrize(("value", "name"), [
    ("kv-contoso-prod", "KEY_VAULT_NAME"),
    ("12", "PASSWORD_MIN_LENGTH"),
    ("info", "LOG_LEVEL"),
    ("https://api.contoso.com/v2/orders?page=2", "API_URL"),
    ("https://login.microsoftonline.com/tenant/oauth2/v2.0/token", "TOKEN_URL"),
    ("true", "API_TOKEN"),
    ("false", "USE_PASSWORD"),
    ("12345678", "API_KEY"),
    ("${DB_PASSWORD}", "DB_PASSWORD"),
    ("<your-password-here>", "DB_PASSWORD"),
    ("https://kv.vault.azure.net/secrets/db", "DB_PASSWORD"),
    ("8f14e45f-ceea-4e7a-9a3b-1c2d3e4f5a6b", "AZURE_CLIENT_ID"),
    ("/mnt/secrets/db", "SECRETS_DIR"),
    ("contosoacr.azurecr.io/etl/loader:1.2.3", None),
    ("sha256:" + "a" * 64, None),
    ("/subscriptions/6f1e3c2a-0b7d-4c55-9a3e-2d8f0c1b7a10/resourceGroups/rg/providers/x", None),
    ("0 2 * * *", "SCHEDULE"),
    ("The quick brown fox jumps over the lazy dog", "MESSAGE"),
    ("https://user@example.com/path", None),
    ("", "PASSWORD"),
    ("managed-identity", "auth"),  # `auditor scan --auth managed-identity` in a job's args
    ("workload-identity", "AUTH"),
])
def test_near_misses_are_not_flagged(value: str, name: str | None) -> None:
    assert credential_reason(value, name) is None


@pytest.mark.parametrize(("name", "expected"), [
    ("DB_PASSWORD", True), ("apiKey", True), ("STORAGE_CONNECTION_STRING", True),
    ("AZURE_CLIENT_SECRET", True), ("SAS", True), ("ACCESS_KEY", True),
    ("KEY_VAULT_NAME", False), ("PASSWORD_MIN_LENGTH", False), ("TOKEN_URL", False),
    ("SECRET_NAME", False), ("LOG_LEVEL", False), ("KEY", False), ("MONKEY", False),
])
def test_credential_names(name: str, expected: bool) -> None:
    assert is_credential_name(name) is expected


@pytest.mark.parametrize("value", [KEY, "hunter2", "abc", "x" * 200])
def test_mask_shows_at_most_four_leading_characters(value: str) -> None:
    masked = mask(value)
    shown = masked.split("*", 1)[0]
    assert len(shown) <= 4 and value.startswith(shown)
    assert f"({len(value)} chars)" in masked
    for start in range(len(value) - 4):
        assert value[start:start + 5] not in masked
