"""`auditor scan --upload`: the report folder lands in Blob Storage whole, or the run says so.

The upload runs against Azurite, Microsoft's storage emulator from the npm registry, on loopback:
`.ci/run` installs it into `.azurite/` (`npm install --no-save --prefix .azurite azurite@3`).
Without node the Azurite tests skip; with node but without that install they skip locally and
fail under CI, where the install is part of the script. Azurite runs with telemetry off.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auditor.errors import InputError
from auditor.settings import load_settings
from auditor.upload import CONNECTION_STRING_VARIABLE, UploadError, parse_upload_url, upload_reports

ROOT = Path(__file__).resolve().parents[1]
AZURITE = ROOT / ".azurite" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's documented development account (public, fixed, emulator-only).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")


# --- the URL --------------------------------------------------------------------------------------

def test_account_url_container_and_prefix() -> None:
    target = parse_upload_url("https://contosoaudit.blob.core.windows.net/audit-reports/nightly/eu")
    assert (target.account_url, target.account, target.container, target.prefix) == (
        "https://contosoaudit.blob.core.windows.net", "contosoaudit", "audit-reports",
        "nightly/eu")
    assert target.blob_name("20261125T023000Z", "snapshot/jobs.json") == \
        "nightly/eu/20261125T023000Z/snapshot/jobs.json"
    bare = parse_upload_url("https://contosoaudit.blob.core.usgovcloudapi.net/reports/")
    assert (bare.container, bare.prefix) == ("reports", "")
    assert bare.blob_name("run", "report.md") == "run/report.md"


def test_emulator_urls_are_path_style() -> None:
    target = parse_upload_url("http://127.0.0.1:10000/devstoreaccount1/reports/nightly")
    assert (target.account_url, target.account, target.container, target.prefix) == (
        "http://127.0.0.1:10000/devstoreaccount1", "devstoreaccount1", "reports", "nightly")
    assert parse_upload_url("http://localhost:10000/acct/reports").account == "acct"


@pytest.mark.parametrize(("url", "problem"), [
    ("ftp://acct.blob.core.windows.net/reports", "not an http(s) URL"),
    ("https://acct.blob.core.windows.net/reports/p?sv=2022&sig=abcdef", "query string"),
    ("http://acct.blob.core.windows.net/reports", "in the clear"),
    ("http://10.1.2.3:10000/acct/reports", "in the clear"),
    ("https://acct.blob.core.windows.net", "names no container"),
    ("https://acct.blob.core.windows.net/Reports", "not a valid container name"),
    ("https://acct.blob.core.windows.net/a--b", "not a valid container name"),
    ("http://127.0.0.1:10000/", "names no storage account"),
])
def test_bad_urls_are_usage_errors(url: str, problem: str) -> None:
    with pytest.raises(InputError, match=re.escape(problem)):
        parse_upload_url(url)


def test_a_bad_url_stops_the_run_before_the_scan(tmp_path: Path) -> None:
    run = _auditor("scan", "--sample", "--out", str(tmp_path / "r"), "--upload",
                   "https://acct.blob.core.windows.net/reports?sig=x", cwd=tmp_path)
    assert run.returncode == 2
    assert "query string" in run.stderr
    assert not (tmp_path / "r").exists()


# --- Azurite --------------------------------------------------------------------------------------

class Azurite:
    """One azurite-blob process on a free loopback port, killed by the fixture."""

    def __init__(self, workspace: Path, *extra: str, scheme: str = "http") -> None:
        self.process = subprocess.Popen(
            [str(AZURITE), "--silent", "--disableTelemetry", "--skipApiVersionCheck",
             "--location", str(workspace), "--blobHost", "127.0.0.1", "--blobPort", "0", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.port = self._wait_for_port()
        self.endpoint = f"{scheme}://127.0.0.1:{self.port}/{ACCOUNT}"

    def _wait_for_port(self) -> int:
        found: list[int] = []
        seen: list[str] = []

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                seen.append(line)
                match = re.search(r"listens on https?://127\.0\.0\.1:(\d+)", line)
                if match:
                    found.append(int(match.group(1)))
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout=60)
        if not found:
            self.stop()
            raise RuntimeError("Azurite did not start: " + "".join(seen)[-2000:])
        return found[0]

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={self.endpoint};")

    def service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _require_azurite() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the Blob Storage emulator (Azurite) cannot "
                    "run; install Node.js to test --upload")
    if not AZURITE.exists():
        message = ("Azurite is not installed: run `npm install --no-save --prefix .azurite "
                   "azurite@3` in the repository (as .ci/run does)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    _require_azurite()
    server = Azurite(tmp_path_factory.mktemp("azurite"))
    try:
        server.service().create_container("reports")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sample_scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One sample scan's report folder, uploaded by several tests in-process."""
    folder = tmp_path_factory.mktemp("scan") / "sample-run"
    run = _auditor("scan", "--sample", "--no-history", "--out", str(folder), cwd=folder.parent)
    assert run.returncode == 1, run.stderr
    return folder


def _auditor(*args: str, cwd: Path, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auditor", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=600, env={**os.environ, **(env or {})})


def _stored(azurite: Azurite, container: str, prefix: str) -> dict[str, tuple[str, str]]:
    """blob name -> (sha256 of its content, its sha256 metadata)."""
    client = azurite.service().get_container_client(container)
    stored = {}
    for blob in client.list_blobs(name_starts_with=prefix, include=["metadata"]):
        content = client.download_blob(blob.name).readall()
        stored[blob.name] = (hashlib.sha256(content).hexdigest(),
                             (blob.metadata or {}).get("sha256", ""))
    return stored


def test_scan_uploads_every_file_with_matching_digests(azurite: Azurite, tmp_path: Path) -> None:
    out = tmp_path / "20261125T023000Z"
    run = _auditor("scan", "--sample", "--no-history", "--out", str(out), "--upload",
                   f"{azurite.endpoint}/reports/nightly", cwd=tmp_path,
                   env={CONNECTION_STRING_VARIABLE: azurite.connection_string})
    assert run.returncode == 1, run.stderr  # the sample's findings; the upload succeeded
    manifest = json.loads((out / "manifest.json").read_text())
    expected = {f"nightly/{out.name}/{f['path']}": f["sha256"] for f in manifest["files"]}
    expected[f"nightly/{out.name}/manifest.json"] = hashlib.sha256(
        (out / "manifest.json").read_bytes()).hexdigest()
    assert any("/snapshot/" in name for name in expected)
    assert {"report.md", "report.xlsx", "findings.json"} <= {n.rsplit("/", 1)[-1] for n in expected}
    stored = _stored(azurite, "reports", f"nightly/{out.name}/")
    assert set(stored) == set(expected)
    for name, digest in expected.items():
        assert stored[name] == (digest, digest), name
    assert f"uploaded {len(expected)} files to {azurite.endpoint}/reports/nightly/{out.name}/" \
        in run.stderr


def test_existing_blobs_are_never_overwritten(azurite: Azurite, sample_scan: Path) -> None:
    azure = load_settings().azure
    target = parse_upload_url(f"{azurite.endpoint}/reports/again")
    env = {CONNECTION_STRING_VARIABLE: azurite.connection_string}
    first = upload_reports(sample_scan, target, azure, env)
    assert first.blobs[-1] == f"again/{sample_scan.name}/manifest.json"  # the manifest goes last
    before = _stored(azurite, "reports", "again/")
    with pytest.raises(UploadError, match=r"already exists.*nothing in storage was replaced"):
        upload_reports(sample_scan, target, azure, env)
    assert _stored(azurite, "reports", "again/") == before


def test_a_failed_upload_exits_3_and_keeps_the_reports(azurite: Azurite, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = _auditor("scan", "--sample", "--no-history", "--out", str(out), "--upload",
                   f"{azurite.endpoint}/missing-container/nightly", cwd=tmp_path,
                   env={CONNECTION_STRING_VARIABLE: azurite.connection_string})
    assert run.returncode == 3
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith("auditor: upload failed: ")
    assert "container 'missing-container' does not exist" in line
    assert f"the reports are in {out}" in line
    assert (out / "manifest.json").is_file() and (out / "report.md").is_file()


def test_a_folder_that_differs_from_its_manifest_is_not_uploaded(
        azurite: Azurite, sample_scan: Path, tmp_path: Path) -> None:
    changed = tmp_path / sample_scan.name
    shutil.copytree(sample_scan, changed)
    (changed / "report.md").write_text("edited after the scan\n")
    target = parse_upload_url(f"{azurite.endpoint}/reports/tampered")
    with pytest.raises(UploadError,
                       match=r"report\.md is missing or differs.*nothing was uploaded"):
        upload_reports(changed, target, load_settings().azure,
                       {CONNECTION_STRING_VARIABLE: azurite.connection_string})
    assert _stored(azurite, "reports", "tampered/") == {}


def test_connection_string_must_match_the_url_account(azurite: Azurite, sample_scan: Path) -> None:
    target = parse_upload_url(f"http://127.0.0.1:{azurite.port}/otheraccount/reports/x")
    with pytest.raises(InputError, match="is for account 'devstoreaccount1'"):
        upload_reports(sample_scan, target, load_settings().azure,
                       {CONNECTION_STRING_VARIABLE: azurite.connection_string})


# --- sign-in with a token, as the managed identity does -----------------------------------------

class _Token:
    """A credential like ManagedIdentityCredential: a bearer token for Azure Storage.

    Azurite's `--oauth basic` checks a token's audience, issuer and lifetime, not its signature.
    """

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        now = int(time.time())
        claims = {"aud": "https://storage.azure.com", "iat": now, "nbf": now, "exp": now + 3600,
                  "iss": "https://sts.windows.net/11111111-1111-1111-1111-111111111111/",
                  "oid": "22222222-2222-2222-2222-222222222222"}
        parts = [{"alg": "RS256", "typ": "JWT"}, claims]
        token = ".".join(_b64(json.dumps(p).encode()) for p in parts) + "." + _b64(b"unsigned")
        return AccessToken(token, now + 3600)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_upload_signs_in_with_the_scan_credential_over_https(
        sample_scan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _require_azurite()
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key, bundle = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(bundle))
    (tmp_path / "ws").mkdir()
    server = Azurite(tmp_path / "ws", "--cert", str(cert), "--key", str(key), "--oauth", "basic",
                     scheme="https")
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        from azure.storage.blob import BlobServiceClient

        token = _Token()
        BlobServiceClient(server.endpoint, credential=token).create_container("reports")
        seen: list[str] = []

        def credential(mode: str, cloud: Any, environ: Any = None) -> _Token:
            seen.append(mode)
            return token

        monkeypatch.setattr("auditor.collect.credentials.build_credential", credential)
        azure = load_settings(overrides={"azure": {"auth": "managed-identity"}}).azure
        sent = upload_reports(sample_scan, parse_upload_url(f"{server.endpoint}/reports/mi"),
                              azure, environ={})
        assert seen == ["managed-identity"]
        assert all(s == ("https://storage.azure.com/.default",) for s in token.scopes)
        names = {b.name for b in BlobServiceClient(server.endpoint, credential=token)
                 .get_container_client("reports").list_blobs()}
        assert names == set(sent.blobs)
        assert f"mi/{sample_scan.name}/manifest.json" in names
    finally:
        server.stop()
