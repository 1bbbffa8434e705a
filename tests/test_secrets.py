"""Secrets: planted wherever a literal can sit in a job, they never reach a report, a log line or
an error message; tokens and SAS signatures never reach the log, even with --debug; the raw
evidence is owner-only.

"Never reaches" is strict: no five consecutive characters of a planted secret appear in any
output file (every file a scan writes, whatever formats exist, the workbook unzipped) except the
`snapshot/` evidence, which is Azure's raw rows by design (documented as sensitive).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import main
from auditor.redact import MASK, RedactingFilter, redact
from tests.azure_server import (
    AzureServer,
    Recorded,
    Reply,
    any_request,
    environment_row,
    execution_row,
    job_row,
    serve,
    subscription_id,
)

SUB = subscription_id(0x5EC)
AS_OF = "2025-06-01T00:00:00Z"

# The secret part of each planted literal (what must never show), and where it is planted.
ACCOUNT_KEY = "x9Vq4TzR7mKp2WbN8sLc5YdH3jFg6Qe1Ua0Zo="
DB_PASSWORD = "Vx7qLp2Rt9zKw4Jm"
GITHUB_TOKEN = "ghp_Zq8wX2vB7nM4kL9pR3tY6uI1oE5aS0dF2gH4"
ARG_PASSWORD = "Hq3vN8sW2xK7mP4zYc"
BUS_KEY = "Tz4nB8vC1xM6kP9qW2eR5tY7uI0oA3sDfG6hJ="
URL_PASSWORD = "Kd9fLw2Qx7Zp"
PLAIN = "Bw6yHn3Jm8Kq"  # under a harmless name: not a credential finding, still never shown
SECRETS = [ACCOUNT_KEY, DB_PASSWORD, GITHUB_TOKEN, ARG_PASSWORD, BUS_KEY, URL_PASSWORD, PLAIN]
SAS_SIG = "pL4nTeDsIgNaTuRe9x7w5v3u1t"


def secret_job(name: str = "payments-settle") -> dict[str, Any]:
    """A scheduled job carrying every kind of literal: env of containers and init containers,
    command, args, and (as an event job's twin below) scale-rule metadata."""
    row = job_row(SUB, name)
    template = row["properties"]["template"]
    template["containers"][0]["env"] = [
        {"name": "STORAGE", "value": "DefaultEndpointsProtocol=https;AccountName=acct;"
                                     f"AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"},
        {"name": "LOG_LEVEL", "value": PLAIN},
        {"name": "FROM_VAULT", "secretRef": "vault-secret"},
    ]
    template["containers"][0]["command"] = [
        "/bin/sh", "-c", f"curl -H 'Authorization: token {GITHUB_TOKEN}' https://api.github.com"]
    template["containers"][0]["args"] = ["--password", ARG_PASSWORD,
                                         f"--db=postgres://loader:{URL_PASSWORD}@db:5432/x"]
    template["initContainers"] = [{
        "name": "migrate", "image": "contoso.azurecr.io/migrate:1.0",
        "resources": {"cpu": 0.25, "memory": "0.5Gi"},
        "env": [{"name": "DB_PASSWORD", "value": DB_PASSWORD}],
    }]
    return row


def secret_event_job() -> dict[str, Any]:
    row = job_row(SUB, "queue-drain")
    configuration = row["properties"]["configuration"]
    configuration["triggerType"] = "Event"
    configuration.pop("manualTriggerConfig")
    configuration["eventTriggerConfig"] = {
        "parallelism": 1, "replicaCompletionCount": 1,
        "scale": {"minExecutions": 0, "maxExecutions": 10, "pollingInterval": 30, "rules": [{
            "name": "queue", "type": "azure-servicebus",
            "metadata": {"queueName": "orders", "connection": (
                "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=Root;"
                f"SharedAccessKey={BUS_KEY}")},
        }]},
    }
    return row


def windows(secret: str) -> Iterator[str]:
    """Every 5 characters of `secret`, but runs of digits only: a random token's "00033" also
    occurs by chance in a workbook's XML (sizes, style ids, dates), which proves nothing."""
    return (w for i in range(len(secret) - 4) if not (w := secret[i:i + 5]).isdigit())


def output_texts(out: Path) -> dict[str, str]:
    """Every file the scan wrote outside snapshot/, as text (workbooks and zips unpacked)."""
    texts: dict[str, str] = {}
    for path in sorted(out.rglob("*")):
        relative = path.relative_to(out)
        if not path.is_file() or relative.parts[0] == "snapshot":
            continue
        data = path.read_bytes()
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                data = b"".join(archive.read(n) for n in archive.namelist())
        texts[relative.as_posix()] = data.decode("utf-8", "replace")
    return texts


def assert_no_secret_in(texts: dict[str, str], secrets: list[str] = SECRETS) -> None:
    for secret in secrets:
        for window in windows(secret):
            for name, text in texts.items():
                assert window not in text, f"{window!r} of a planted secret is in {name}"


def assert_owner_only(folder: Path) -> None:
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for path in folder.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


# --- offline ------------------------------------------------------------------------------------

def test_no_planted_secret_reaches_any_report_or_the_debug_log(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "jobs.json").write_text(json.dumps([secret_job(), secret_event_job()]))
    out = tmp_path / "out"

    # A subprocess, so the debug log is the real one a person would see on stderr.
    done = subprocess.run(
        [sys.executable, "-m", "auditor", "--debug", "scan", "--snapshot", str(export),
         "--out", str(out), "--as-of", AS_OF],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=dict(os.environ))

    assert done.returncode in (1, 3), done.stderr
    texts = output_texts(out)
    assert {"findings.json", "report.md", "report.xlsx"} <= set(texts)
    findings = json.loads(texts["findings.json"])["findings"]
    flagged = {f["evidence"][0].split(" ")[0] for f in findings
               if f["check_id"] == "CAJ-004" and f["status"] == "fail" and f["evidence"]}
    assert flagged, "the credential check found the planted literals (else this proves little)"
    texts["stderr (--debug)"] = done.stderr
    texts["stdout"] = done.stdout
    assert_no_secret_in(texts)
    assert_owner_only(out / "snapshot")


def test_error_messages_do_not_echo_secrets(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "jobs.json").write_text(json.dumps([secret_job()])[:-40])  # cut short
    assert main(["scan", "--snapshot", str(export), "--out", str(tmp_path / "o")]) == 2
    config = tmp_path / "auditor.toml"
    config.write_text(f'[azure]\narm_endpoint = "http://u:{URL_PASSWORD}@mgmt.example"\n')
    assert main(["scan", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("auditor: error:") == 2
    assert_no_secret_in({"stderr": err})


@pytest.mark.parametrize("source", ["sample", "snapshot"])
def test_the_evidence_folder_is_owner_only(source: str, tmp_path: Path) -> None:
    args = ["--sample"]
    if source == "snapshot":
        export = tmp_path / "export" / "nested"
        export.mkdir(parents=True)
        (export / "jobs.json").write_text(json.dumps([secret_job()]))
        os.chmod(export / "jobs.json", 0o644)  # the user's own file is readable by others...
        args = ["--snapshot", str(tmp_path / "export")]
    out = tmp_path / "out"
    assert main(["scan", *args, "--out", str(out), "--as-of", AS_OF]) in (0, 1, 3)
    assert_owner_only(out / "snapshot")  # ...its copy in the evidence is not


# --- live, at --debug ----------------------------------------------------------------------------

@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AzureServer]:
    with serve(monkeypatch, tmp_path) as server:
        yield server


def _sas_in_next_link(request: Recorded, reply: Reply) -> Reply:
    """Azure's nextLinks may carry a signed token: the follow-up request's URL then holds it."""
    body = dict(reply.body) if isinstance(reply.body, dict) else {}
    if body.get("nextLink"):
        body["nextLink"] += f"&sv=2024-01-01&sig={SAS_SIG}"
    return Reply(reply.status, body, reply.headers)


def test_a_live_debug_scan_logs_no_token_signature_or_secret(
        azure: AzureServer, tmp_path: Path) -> None:
    azure.resource_graph.add_subscription(SUB)
    environment = environment_row(SUB)
    environment["properties"]["appLogsConfiguration"] = {"destination": "azure-monitor"}
    job = secret_job()
    azure.resource_graph.add("resources", job, secret_event_job(), environment)
    azure.executions.page_size = 1
    azure.executions.add(job["id"], *(execution_row(
        f"payments-settle-{n}", "Succeeded", f"2025-05-2{n}T01:00:00+00:00",
        f"2025-05-2{n}T01:05:00+00:00") for n in range(3)))
    azure.executions.add(secret_event_job()["id"])
    azure.faults.transform(any_request("GET", "/executions"), _sas_in_next_link)
    out = tmp_path / "out"

    done = subprocess.run(
        [sys.executable, "-m", "auditor", "--debug", "scan", "--auth", "cli",
         "--subscription", SUB, "--as-of", AS_OF, "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=dict(os.environ))

    assert done.returncode in (0, 1), done.stderr[-3000:]
    followed = [r for r in azure.requests if r.params.get("sig") == SAS_SIG]
    assert followed, "the SDK followed the signed nextLink (so its URL was logged)"
    log = done.stderr
    assert "urllib3" in log and f"sig={MASK}" in log  # the filter did its work on a real line
    assert SAS_SIG not in log
    assert azure.token not in log
    assert "fake-arm-token" not in log
    texts = output_texts(out)
    texts["stderr (--debug)"] = log
    token_secret = azure.token.rsplit("-", 1)[-1]  # its random part ("fake-arm-token-" is not)
    assert_no_secret_in(texts, [*SECRETS, SAS_SIG, token_secret])
    assert_owner_only(out / "snapshot")


# --- the filter ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "secret", "kept"), [
    ("'Authorization': 'Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl'",
     "eyJ0eXAiOiJKV1Qi", "'Authorization': '"),
    ("Authorization: Bearer abcdefghijklmnop1234", "abcdefghijklmnop", "Authorization: "),
    ("https://acct.blob.core.windows.net/c/b?sv=2024-01-01&se=2025&sig=AbCdEf%2Bghij%3D&sp=r",
     "AbCdEf%2Bghij", "https://acct.blob.core.windows.net/c/b?sv=2024-01-01&se=2025&sig="),
    ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0a2V5c2VjcmV0a2V5;X=1",
     "c2VjcmV0a2V5", "DefaultEndpointsProtocol=https;AccountName=a;AccountKey="),
    ("Endpoint=sb://x/;SharedAccessKeyName=Root;SharedAccessKey=c2VjcmV0a2V5c2Vj=",
     "c2VjcmV0a2V5", "SharedAccessKeyName=Root;SharedAccessKey="),
    ('{"accessToken": "abc.def.ghi-token-value", "expires_on": 1}', "ghi-token-value",
     '"accessToken": "'),
    ("postgres://loader:hunter2hunter2@db:5432/x", "hunter2hunter2", "postgres://loader:"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_part_here", "eyJhbGciOiJIUzI1NiJ9",
     "token "),
])
def test_the_filter_redacts_credentials_and_keeps_the_rest(line: str, secret: str,
                                                           kept: str) -> None:
    redacted = redact(line)
    assert secret not in redacted
    assert kept in redacted and MASK in redacted


def test_the_filter_leaves_ordinary_lines_alone() -> None:
    line = ('https://127.0.0.1:4443 "POST /providers/Microsoft.ResourceGraph/resources?'
            'api-version=2024-04-01 HTTP/1.1" 200 439')
    assert redact(line) == line


def test_the_filter_rewrites_records_and_their_tracebacks() -> None:
    import logging

    record = logging.LogRecord("azure", logging.DEBUG, __file__, 1,
                               "headers %s", ({"Authorization": "Bearer s3cr3tt0ken123"},), None)
    try:
        raise ValueError("AccountKey=abcdefghijklmnop")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    assert "s3cr3tt0ken123" not in record.getMessage()
    assert record.exc_text is not None and "abcdefghijklmnop" not in record.exc_text
