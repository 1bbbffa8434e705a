"""Azure clouds: where each one's services live and which token audience each service accepts.

Endpoints may be overridden (a private endpoint, a proxy, a test server), but a token is always
asked for the cloud's own audience: Entra issues tokens for the audience, not for the address the
request happens to go to.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from auditor.errors import InputError
from auditor.settings import AzureSettings

ARM_ENDPOINT_VARIABLE = "AUDITOR_ARM_ENDPOINT"
LOG_ANALYTICS_ENDPOINT_VARIABLE = "AUDITOR_LOG_ANALYTICS_ENDPOINT"


@dataclass(frozen=True, slots=True)
class Cloud:
    """One Azure cloud's public endpoints and audiences (as azure-mgmt-core and az know them)."""

    name: str
    arm_endpoint: str
    arm_audience: str
    log_analytics_endpoint: str
    log_analytics_audience: str
    authority_host: str

    @property
    def arm_scope(self) -> str:
        return _scope(self.arm_audience)

    @property
    def log_analytics_scope(self) -> str:
        return _scope(self.log_analytics_audience)


CLOUDS: Mapping[str, Cloud] = {
    "AzureCloud": Cloud(
        name="AzureCloud",
        arm_endpoint="https://management.azure.com",
        arm_audience="https://management.azure.com",
        log_analytics_endpoint="https://api.loganalytics.io",
        log_analytics_audience="https://api.loganalytics.io",
        authority_host="login.microsoftonline.com",
    ),
    "AzureUSGovernment": Cloud(
        name="AzureUSGovernment",
        arm_endpoint="https://management.usgovcloudapi.net",
        arm_audience="https://management.core.usgovcloudapi.net",
        log_analytics_endpoint="https://api.loganalytics.us",
        log_analytics_audience="https://api.loganalytics.us",
        authority_host="login.microsoftonline.us",
    ),
    "AzureChinaCloud": Cloud(
        name="AzureChinaCloud",
        arm_endpoint="https://management.chinacloudapi.cn",
        arm_audience="https://management.chinacloudapi.cn",
        log_analytics_endpoint="https://api.loganalytics.azure.cn",
        log_analytics_audience="https://api.loganalytics.azure.cn",
        authority_host="login.chinacloudapi.cn",
    ),
}


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where this scan sends requests, and where each address came from (for the record)."""

    cloud: Cloud
    arm: str
    arm_source: str
    log_analytics: str
    log_analytics_source: str


def resolve(settings: AzureSettings, environ: Mapping[str, str] | None = None) -> Endpoints:
    """The cloud's endpoints, overridden by config, overridden in turn by environment variables.

    The environment wins so that one config file serves both real runs and a redirected run
    (a proxy or a test server) without editing it.
    """
    env = os.environ if environ is None else environ
    cloud = CLOUDS[settings.cloud]
    arm, arm_source = _pick(env, ARM_ENDPOINT_VARIABLE, settings.arm_endpoint,
                            "azure.arm_endpoint", cloud.arm_endpoint, cloud.name)
    logs, logs_source = _pick(env, LOG_ANALYTICS_ENDPOINT_VARIABLE,
                              settings.log_analytics_endpoint, "azure.log_analytics_endpoint",
                              cloud.log_analytics_endpoint, cloud.name)
    return Endpoints(cloud, arm, arm_source, logs, logs_source)


def _pick(env: Mapping[str, str], variable: str, configured: str, key: str, default: str,
          cloud: str) -> tuple[str, str]:
    if env.get(variable, "").strip():
        return _checked(env[variable].strip(), variable), f"environment {variable}"
    if configured.strip():
        return _checked(configured.strip(), key), f"config {key}"
    return default, f"cloud {cloud}"


def _checked(url: str, where: str) -> str:
    """Only https: a bearer token must never travel in the clear, so there is no http escape."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.netloc:
        raise InputError(where, f"endpoint {url!r} is not an https:// URL",
                         "give the full https address, e.g. https://management.azure.com")
    return url.rstrip("/")


def _scope(audience: str) -> str:
    return audience.rstrip("/") + "/.default"
