"""Settings: `config/default.toml` with the user's `--config` file laid over it, validated.

The default file is the single source of every default; the models below declare only types and
bounds, so a value never has two defaults. Unknown keys and wrong types are errors that name the
file, the key and the expected form.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Collection
from enum import Enum
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditor.errors import InputError


class Severity(Enum):
    """Ordered severities; `rank` orders them for --fail-on."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANKS[self]


# Severity.rank orders hundreds of thousands of results: looked up, not searched for.
_SEVERITY_RANKS = {severity: rank for rank, severity in enumerate(Severity)}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ScanSettings(_Strict):
    fail_on: Severity
    owner_tag: str = Field(min_length=1)
    waivers: str


class TagRule(_Strict):
    """What a required tag's value must look like; entries of the open table [policy.tag_rules]."""

    allowed: tuple[str, ...] = ()
    pattern: str = ""


class Policy(_Strict):
    """Thresholds checks read; checks never see files or flags."""

    max_replica_timeout_seconds: int = Field(gt=0)
    max_replica_retry_limit: int = Field(ge=0)
    required_tags: tuple[str, ...]
    tag_rules: dict[str, TagRule]
    max_event_executions: int = Field(ge=1)
    max_replica_cpu: float = Field(gt=0)
    max_replica_memory_gib: float = Field(gt=0)
    approved_registries: tuple[str, ...]
    require_internal_environment: bool
    job_name_pattern: str
    health_window_days: int = Field(ge=1, le=3650)
    max_failure_rate: float = Field(ge=0, le=1)
    min_executions_for_failure_rate: int = Field(ge=1)
    missed_run_intervals: int = Field(ge=1)
    duration_headroom: float = Field(gt=0, le=1)


class CheckOverride(_Strict):
    """Per-check switches; entries of the open table [checks."CAJ-001"]."""

    enabled: bool = True
    severity: Severity | None = None


AuthMode = Literal["default", "cli", "managed-identity", "workload-identity", "environment"]
CloudName = Literal["AzureCloud", "AzureUSGovernment", "AzureChinaCloud"]


class AzureSettings(_Strict):
    auth: AuthMode
    cloud: CloudName
    arm_endpoint: str
    log_analytics_endpoint: str
    subscriptions: tuple[str, ...]
    management_groups: tuple[str, ...]
    subscriptions_per_request: int = Field(ge=1, le=100)
    page_size: int = Field(ge=1, le=1000)
    resource_graph_api_version: str = Field(min_length=1)
    max_retries: int = Field(ge=0, le=50)
    max_retry_wait_seconds: float = Field(gt=0, le=3600)
    deadline_seconds: float = Field(gt=0, le=7 * 86400)
    connect_timeout_seconds: float = Field(gt=0, le=600)
    read_timeout_seconds: float = Field(gt=0, le=3600)


class HistorySettings(_Strict):
    """Execution history: the window a live scan reads and the Log Analytics query limits."""

    days: int = Field(ge=1, le=3650)
    query: str
    max_rows_per_query: int = Field(ge=1, le=500_000)
    server_timeout_seconds: int = Field(ge=1, le=600)


class RegionRates(_Strict):
    """Active-usage rates for one region; entries of the open table [cost.regions]."""

    vcpu_second: float = Field(gt=0)
    gib_second: float = Field(gt=0)


class CostSettings(_Strict):
    """Consumption rates, the free grant, and what counts as a cost anomaly (CAJ-050)."""

    currency: str = Field(min_length=3, max_length=3)
    vcpu_second: float = Field(gt=0)
    gib_second: float = Field(gt=0)
    free_vcpu_seconds: float = Field(ge=0)
    free_gib_seconds: float = Field(ge=0)
    dedicated_vcpu_hour: float = Field(ge=0)
    dedicated_gib_hour: float = Field(ge=0)
    dedicated_management_hour: float = Field(ge=0)
    regions: dict[str, RegionRates]
    prices_file: str
    anomaly_relative_floor: float = Field(ge=0)
    anomaly_absolute_floor: float = Field(ge=0)
    anomaly_min_history_days: int = Field(ge=1)
    anomaly_lookback_days: int = Field(ge=1)
    anomaly_z_threshold: float = Field(gt=0)


class StoreSettings(_Strict):
    """The history store of scans and findings (see auditor.history)."""

    path: str
    scope_name: str


class Settings(_Strict):
    scan: ScanSettings
    policy: Policy
    azure: AzureSettings
    history: HistorySettings
    cost: CostSettings
    store: StoreSettings
    checks: dict[str, CheckOverride]

    def digest(self) -> str:
        """A hash of the effective settings, recorded in the manifest."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def default_config_text() -> str:
    return files("auditor.defaults").joinpath("default.toml").read_text(encoding="utf-8")


def load_settings(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    known_checks: Collection[str] = (),
) -> Settings:
    """Defaults, then the file at `path`, then `overrides` (from flags, already typed).

    With `known_checks`, a [checks.ID] table naming no known check is an error.
    """
    merged = tomllib.loads(default_config_text())
    source = "built-in defaults"
    if path is not None:
        source = str(path)
        merged = _merge(merged, _read_toml(path), source, path="")
    if overrides:
        merged = _merge(merged, overrides, "command line", path="")
    unknown = sorted(set(merged.get("checks", {})) - set(known_checks)) if known_checks else []
    if unknown:
        raise InputError(source, f"[checks.{unknown[0]}] names no check",
                         "see `auditor checks` for the ids")
    try:
        return _validate(merged)
    except ValidationError as e:
        raise InputError(source, *_describe(e)) from e


def _validate(data: dict[str, Any]) -> Settings:
    """TOML has no enums or tuples: convert those, then validate strictly."""
    return Settings.model_validate(_from_toml(data))


def _from_toml(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (_severity(v) if k in ("fail_on", "severity") else _from_toml(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_from_toml(v) for v in value)
    return value


def _severity(text: Any) -> Any:
    try:
        return Severity(text.lower()) if isinstance(text, str) else text
    except ValueError:
        return text


def _read_toml(path: Path) -> dict[str, Any]:
    from auditor.textfile import read_text

    text = read_text(path, "config file")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(str(path), f"invalid TOML: {e}", _toml_fix(text)) from e


def _toml_fix(text: str) -> str:
    """What to do about a file that is not TOML; YAML and JSON are the usual mix-ups."""
    if text.lstrip().startswith("{"):
        return "this looks like JSON: write it as TOML (see config/sample.toml)"
    lines = [line.split("#")[0].rstrip() for line in text.splitlines()]
    if any(line.endswith(":") or ": " in line for line in lines[:5] if line and "=" not in line):
        return "this looks like YAML: write it as TOML, `key = value` (see config/sample.toml)"
    return "fix the syntax at that place"


def _merge(base: dict[str, Any], top: dict[str, Any], source: str, path: str) -> dict[str, Any]:
    """Lay `top` over `base`; unknown sections and keys are reported here, with their path."""
    result = dict(base)
    for key, value in top.items():
        where = f"{path}.{key}" if path else key
        if not base and isinstance(base, dict) and path:
            result[key] = value  # an open table (empty in the defaults): any key, typed later
            continue
        if key not in base:
            known = ", ".join(sorted(base)) or "none"
            raise InputError(source, f"unknown key '{where}'", f"known keys here: {known}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise InputError(source, f"'{where}' must be a table", f"write it as [{where}]")
            result[key] = _merge(base[key], value, source, where)
        else:
            result[key] = value
    return result


def _describe(error: ValidationError) -> tuple[str, str]:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    expected = _expected(first["loc"])
    problem = "is not allowed" if expected.startswith("expected one of") else (
        f"is invalid: {first['msg'][0].lower()}{first['msg'][1:]}")
    return f"key '{where}' = {first.get('input')!r} {problem}", expected


_FORMS = {int: "a whole number", float: "a number", str: "a string",
          tuple[str, ...]: 'a list of strings, e.g. ["a", "b"]'}


def _expected(loc: tuple[Any, ...]) -> str:
    """The expected form of a key, read from the model's declared type."""
    annotation: Any = Settings
    for part in loc:
        if getattr(annotation, "__origin__", None) is dict:  # an open table: skip its key
            annotation = annotation.__args__[1]
            continue
        fields = getattr(annotation, "model_fields", None)
        if fields is None or str(part) not in fields:
            break
        annotation = fields[str(part)].annotation
    if annotation in (Severity, Severity | None):
        return "expected one of: " + ", ".join(s.value for s in Severity)
    if getattr(annotation, "__origin__", None) is Literal:
        return "expected one of: " + ", ".join(annotation.__args__)
    return f"expected {_FORMS.get(annotation, getattr(annotation, '__name__', 'a table'))}"
