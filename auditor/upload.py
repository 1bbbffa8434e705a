"""Upload a published report folder to Azure Blob Storage (`auditor scan --upload URL`).

What is uploaded is exactly the scan's file set: every file the manifest lists (reports and the
snapshot evidence), each checked against the SHA-256 the manifest records and stored with it as
blob metadata, then `manifest.json` itself, last. A folder whose manifest is missing, or whose
files differ from it, is not uploaded at all; an upload that fails midway says how far it got,
and since the manifest goes last, a folder without `manifest.json` in storage is an incomplete
upload, never mistaken for a complete one. Existing blobs are never overwritten: reports are
evidence.

Sign-in is the scan's own (`--auth`, `auditor.collect.credentials`). For a storage emulator or a
test, `AUDITOR_BLOB_CONNECTION_STRING` (a connection string with the account key) replaces it;
plain http is accepted only for loopback addresses, where emulators run.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import mimetypes
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from auditor.errors import AuditorError, CollectionError, InputError
from auditor.settings import AzureSettings

CONNECTION_STRING_VARIABLE = "AUDITOR_BLOB_CONNECTION_STRING"
MANIFEST = "manifest.json"  # reports.manifest.FILE_NAME; not imported to keep this module light
_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
_CONTENT_TYPES = {".md": "text/markdown; charset=utf-8", ".json": "application/json",
                  ".sarif": "application/sarif+json", ".csv": "text/csv; charset=utf-8",
                  ".html": "text/html; charset=utf-8", ".parquet": "application/vnd.apache.parquet",
                  ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class UploadError(AuditorError):
    """The reports were written but could not all be uploaded: exit 3."""


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """Where reports go: `account_url` (https://ACCOUNT.blob.core.windows.net, or
    http://127.0.0.1:PORT/ACCOUNT for an emulator), a container and a blob-name prefix."""

    url: str
    account_url: str
    account: str
    container: str
    prefix: str

    def blob_name(self, folder: str, path: str) -> str:
        return "/".join(p for p in (self.prefix, folder, path) if p)


def parse_upload_url(url: str) -> UploadTarget:
    """`https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX...]`; emulators and IP addresses
    use path-style URLs, `http://127.0.0.1:10000/ACCOUNT/CONTAINER[/PREFIX...]`."""
    where = "--upload"
    fix = "give https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX"
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise InputError(where, f"{url!r} is not an http(s) URL", fix)
    if parts.query or parts.fragment:
        raise InputError(where, "the URL carries a query string (a SAS token?)",
                         "sign in with --auth instead: a token in the command line is disclosed "
                         "to anyone who can read the job or the process list")
    if parts.scheme == "http" and not _loopback(host):
        raise InputError(where, f"plain http to {host} would send credentials in the clear",
                         "use https (http is accepted only for a local emulator on loopback)")
    segments = [unquote(s) for s in parts.path.split("/") if s]
    path_style = _is_ip(host) or host == "localhost"
    if path_style:
        if not segments:
            raise InputError(where, f"{url!r} names no storage account",
                             "emulators use http://127.0.0.1:PORT/ACCOUNT/CONTAINER/PREFIX")
        account, segments = segments[0], segments[1:]
        account_url = f"{parts.scheme}://{parts.netloc}/{account}"
    else:
        account = host.split(".", 1)[0]
        account_url = f"{parts.scheme}://{parts.netloc}"
    if not segments:
        raise InputError(where, f"{url!r} names no container", fix)
    container, prefix = segments[0], "/".join(segments[1:])
    if not _CONTAINER.match(container):
        raise InputError(where, f"{container!r} is not a valid container name",
                         "3 to 63 lower-case letters, digits and single hyphens")
    return UploadTarget(url.strip(), account_url, account, container, prefix)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _loopback(host: str) -> bool:
    return host == "localhost" or (_is_ip(host) and ipaddress.ip_address(host.strip("[]"))
                                   .is_loopback)


@dataclass(frozen=True, slots=True)
class Uploaded:
    """What an upload stored: blob names in upload order (the manifest last)."""

    target: UploadTarget
    folder: str
    blobs: tuple[str, ...]


def upload_reports(folder: Path, target: UploadTarget, azure: AzureSettings,
                   environ: Mapping[str, str] | None = None) -> Uploaded:
    """Upload the scan in `folder` under PREFIX/FOLDER-NAME/ in the target container."""
    env = os.environ if environ is None else environ
    entries = _scan_files(folder)
    name = folder.resolve().name
    try:
        container = _container_client(target, azure, env)
    except CollectionError as e:  # sign-in could not even start
        raise UploadError(f"upload to {target.url}: {e}; nothing was uploaded") from e
    done: list[str] = []
    try:
        for path, digest in entries:
            blob = target.blob_name(name, path)
            _upload_one(container, blob, folder / path, digest)
            done.append(blob)
    except UploadError:
        raise
    except Exception as e:  # the SDK's errors: HTTP, network, authentication
        raise UploadError(_failure(e, target, len(done), len(entries))) from e
    finally:
        container.close()
    return Uploaded(target, name, tuple(done))


def _scan_files(folder: Path) -> list[tuple[str, str]]:
    """(relative path, sha256) of every file the manifest lists, then the manifest itself."""
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        listed = [(str(f["path"]), str(f["sha256"])) for f in manifest["files"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UploadError(f"{manifest_path} cannot be read ({e}); nothing was uploaded") from e
    for path, digest in listed:
        local = folder / path
        if not local.is_file() or _sha256(local) != digest:
            raise UploadError(f"{local} is missing or differs from {MANIFEST}; nothing was "
                              "uploaded")
    return [*listed, (MANIFEST, _sha256(manifest_path))]


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _container_client(target: UploadTarget, azure: AzureSettings,
                      env: Mapping[str, str]) -> Any:
    from azure.storage.blob import BlobServiceClient  # loads only when uploading

    connection = env.get(CONNECTION_STRING_VARIABLE, "").strip()
    if connection:
        try:
            service = BlobServiceClient.from_connection_string(connection)
        except ValueError as e:
            raise InputError(CONNECTION_STRING_VARIABLE, f"not a storage connection string ({e})",
                             "copy it from the storage account's Access keys") from e
        if service.account_name != target.account:
            raise InputError(CONNECTION_STRING_VARIABLE,
                             f"is for account {service.account_name!r}, but --upload names "
                             f"{target.account!r}", "use the connection string of that account")
        return service.get_container_client(target.container)
    from auditor.collect.clouds import resolve
    from auditor.collect.credentials import build_credential

    credential = build_credential(azure.auth, resolve(azure, env).cloud, env)
    return BlobServiceClient(target.account_url, credential=credential) \
        .get_container_client(target.container)


def _upload_one(container: Any, blob: str, path: Path, digest: str) -> None:
    from azure.storage.blob import ContentSettings

    content_type = _CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    with path.open("rb") as data:
        container.upload_blob(blob, data, overwrite=False, metadata={"sha256": digest},
                              content_settings=ContentSettings(content_type=content_type))


def _failure(error: Exception, target: UploadTarget, done: int, total: int) -> str:
    from azure.core.exceptions import ClientAuthenticationError, ResourceExistsError

    code = getattr(error, "error_code", None) or getattr(error, "status_code", None)
    reason = (str(getattr(error, "message", None) or error).strip().splitlines() or [""])[0]
    if isinstance(error, ResourceExistsError):
        reason = "a blob of this scan folder already exists (reports are never overwritten)"
    elif isinstance(error, ClientAuthenticationError):
        reason = f"sign-in or authorization failed: {reason}"
    elif code == "ContainerNotFound":
        reason = f"container {target.container!r} does not exist"
    elif code == "AuthorizationPermissionMismatch":
        reason = ("the identity may not write blobs here: grant it Storage Blob Data "
                  "Contributor on the container")
    reason = reason if len(reason) <= 300 else reason[:297] + "..."
    outcome = ("nothing in storage was replaced" if isinstance(error, ResourceExistsError)
               else "this run's manifest.json was not uploaded, so the stored folder reads as "
               "incomplete")
    return (f"upload to {target.url} stopped after {done} of {total} files: {reason}"
            f"{f' ({code})' if code and str(code) not in reason else ''}; {outcome}")
