from __future__ import annotations

from pathlib import Path

import pytest

from auditor.errors import InputError
from auditor.settings import Severity, load_settings


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "auditor.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert settings.scan.fail_on is Severity.HIGH
    assert settings.policy.max_replica_timeout_seconds == 14400
    assert settings.policy.max_replica_retry_limit == 3
    assert settings.policy.required_tags == ("owner", "cost-center", "environment")
    assert settings.azure.page_size == 1000 and settings.azure.subscriptions_per_request == 100


def test_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path, '[policy]\nmax_replica_timeout_seconds = 600\n'
                                              '[scan]\nfail_on = "Medium"\n'))
    assert settings.policy.max_replica_timeout_seconds == 600
    assert settings.policy.max_replica_retry_limit == 3
    assert settings.scan.fail_on is Severity.MEDIUM


def test_flags_win_over_the_file(tmp_path: Path) -> None:
    path = config(tmp_path, '[azure]\nsubscriptions = ["a"]\nauth = "cli"\n')
    settings = load_settings(path, {"azure": {"subscriptions": ["b", "c"]}})
    assert settings.azure.subscriptions == ("b", "c") and settings.azure.auth == "cli"


def test_sample_config_is_valid() -> None:
    sample = Path(__file__).resolve().parents[2] / "config" / "sample.toml"
    assert load_settings(sample).scan.fail_on is Severity.MEDIUM


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("[polcy]\nx = 1\n", "unknown key 'polcy'", id="unknown-section"),
    pytest.param("[policy]\nmax_replica_timeout = 1\n",
                 "unknown key 'policy.max_replica_timeout'", id="unknown-key"),
    pytest.param('[policy]\nmax_replica_timeout_seconds = "1h"\n',
                 "policy.max_replica_timeout_seconds", id="wrong-type"),
    pytest.param("[policy]\nmax_replica_retry_limit = -1\n", "policy.max_replica_retry_limit",
                 id="out-of-range"),
    pytest.param('[scan]\nfail_on = "urgent"\n', "expected one of: info, low", id="bad-enum"),
    pytest.param('[azure]\nauth = "password"\n', "azure.auth", id="bad-literal"),
    pytest.param('policy = 3\n', "'policy' must be a table", id="not-a-table"),
    pytest.param('[policy\n', "invalid TOML", id="syntax"),
    pytest.param('[policy]\nrequired_tags = "owner"\n', "policy.required_tags",
                 id="string-for-list"),
])
def test_bad_config_names_file_key_and_form(tmp_path: Path, text: str, expected: str) -> None:
    path = config(tmp_path, text)
    with pytest.raises(InputError) as raised:
        load_settings(path)
    message = str(raised.value)
    assert message.startswith(str(path)) and expected in message
    assert "\n" not in message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
