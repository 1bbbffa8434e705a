"""Sign-in: one azure-identity credential per `--auth` mode, and sign-in failures as one line.

The credential is handed to the SDK clients, which ask it for tokens themselves; this module never
sees a token and never logs one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from azure.core.credentials import TokenCredential
from azure.identity import (
    AzureCliCredential,
    DefaultAzureCredential,
    EnvironmentCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from auditor.collect.clouds import Cloud
from auditor.errors import CollectionError
from auditor.settings import AuthMode

# What a person does to make each mode work.
FIX_HINTS: Mapping[str, str] = {
    "default": "run `az login`, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and a secret, "
               "certificate or federated token file, or run where a managed identity exists",
    "cli": "install the Azure CLI if needed and run `az login` (with `--tenant` for the "
           "tenant to audit)",
    "managed-identity": "run on an Azure host with a managed identity; for a user-assigned "
                        "identity set AZURE_CLIENT_ID to its client id",
    "workload-identity": "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE "
                         "(AKS workload identity sets them in the pod)",
    "environment": "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET "
                   "(or AZURE_CLIENT_CERTIFICATE_PATH)",
}


def build_credential(mode: AuthMode, cloud: Cloud,
                     environ: Mapping[str, str] | None = None) -> TokenCredential:
    """The credential for `mode`, signing in at the cloud's authority.

    AZURE_AUTHORITY_HOST, the variable azure-identity itself reads, still wins: it is how
    people already point every Azure tool at a private authority.
    """
    env = os.environ if environ is None else environ
    authority = env.get("AZURE_AUTHORITY_HOST") or cloud.authority_host
    try:
        return _create(mode, authority, env)
    except ValueError as e:  # azure-identity's way of saying required settings are missing
        raise sign_in_failed(mode, e) from e


def _create(mode: AuthMode, authority: str, env: Mapping[str, str]) -> TokenCredential:
    if mode == "cli":
        return AzureCliCredential()  # az signs in to the cloud `az cloud set` chose
    if mode == "managed-identity":
        return ManagedIdentityCredential(client_id=env.get("AZURE_CLIENT_ID") or None)
    if mode == "workload-identity":
        return WorkloadIdentityCredential(authority=authority)
    if mode == "environment":
        return EnvironmentCredential(authority=authority)
    return DefaultAzureCredential(authority=authority)


def sign_in_failed(mode: str, error: Exception) -> CollectionError:
    """One line naming the mode, Azure's reason and the fix (for errors getting a token, and
    for a token the service refused).

    azure-identity's messages can span many lines (DefaultAzureCredential lists every credential
    it tried); the first line carries the reason.
    """
    reason = (_first_line(error) or type(error).__name__).rstrip(".")
    hint = FIX_HINTS.get(mode, FIX_HINTS["default"])
    if getattr(error, "status_code", None) == 401:  # a token was issued, Azure refused it
        return CollectionError(f"Azure rejected the token from --auth {mode} (HTTP 401): "
                               f"{reason}; {hint}")
    return CollectionError(f"sign-in failed (--auth {mode}): {reason}; {hint}")


def _first_line(error: Exception) -> str:
    text = getattr(error, "message", None) or str(error)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return first if len(first) <= 300 else first[:297] + "..."
