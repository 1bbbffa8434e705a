"""Acceptance: on an estate of exported rows it has never seen, the scan finds every planted
violation and flags none of the near misses.

The estate in tests/fixtures/unseen-estate/ (company "Fabrikam", two subscriptions) was written by
hand from the check specification, not from the implementation. It is exported in several shapes:
an `az graph query` result (jobs, managed environments and one unrelated container app), an ARM
list of jobs, the plain array of `az containerapp job list` (in a subfolder), an ARM list of
environments, and `authorizationresources` results for role assignments and role definitions.

Every job is one of:
- `v-cajNNN-...`: built to violate exactly one check (CAJ-NNN) and to pass every other one;
- `ok-...`: a near miss that looks suspicious but complies with every check;
- `base-...`: the fully compliant baseline, which must not even be unknown anywhere.

PLANTED below is the specification of the estate: the set of (check id, job name) that must fail,
no more and no fewer. The real CLI runs once; everything is read back from `findings.json` and
the other report files.
"""

from __future__ import annotations

import html
import json
import re
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import main

ESTATE = Path(__file__).resolve().parent / "fixtures" / "unseen-estate"
AS_OF = "2026-11-20T00:00:00Z"

# --- the specification of the estate -------------------------------------------------------------

PLANTED: frozenset[tuple[str, str]] = frozenset({
    # CAJ-001 managed identity
    ("CAJ-001", "v-caj001-identity-absent"),  # no `identity` at all
    ("CAJ-001", "v-caj001-identity-none"),  # identity.type "None"
    # CAJ-002 registry pulled with username + passwordSecretRef (the password is in Key Vault)
    ("CAJ-002", "v-caj002-registry-password"),
    # CAJ-003 a platform-stored secret ({name} only)
    ("CAJ-003", "v-caj003-platform-secret"),
    # CAJ-004 credential-like literals, one place and one kind per job
    ("CAJ-004", "v-caj004-env-conn-string"),  # env value: storage AccountKey=
    ("CAJ-004", "v-caj004-init-sas-url"),  # init container env: SAS URL with sig=
    ("CAJ-004", "v-caj004-args-url-password"),  # args: postgresql://user:password@host
    ("CAJ-004", "v-caj004-command-github-token"),  # command: ghp_ token
    ("CAJ-004", "v-caj004-scale-rule-sas-key"),  # event rule metadata: SharedAccessKey=
    ("CAJ-004", "v-caj004-env-jwt"),  # env value: a JWT under a neutral name
    ("CAJ-004", "v-caj004-env-private-key"),  # env value: PEM private key block
    ("CAJ-004", "v-caj004-env-named-password"),  # WAREHOUSE_PASSWORD with a literal value
    ("CAJ-004", "v-caj004-env-high-entropy"),  # high-entropy string under a neutral name
    # CAJ-005 privileged role at subscription scope or above
    ("CAJ-005", "v-caj005-owner-subscription"),  # the user-assigned one of two identities
    ("CAJ-005", "v-caj005-contributor-subscription"),
    ("CAJ-005", "v-caj005-uaa-management-group"),
    ("CAJ-005", "v-caj005-rbac-admin-root"),  # scope "/"
    ("CAJ-005", "v-caj005-custom-wildcard-role"),  # custom role with actions ["*"]
    # CAJ-006 event scale rule authenticates with auth[].secretRef
    ("CAJ-006", "v-caj006-rule-secretref"),
    # CAJ-010 replica timeout
    ("CAJ-010", "v-caj010-timeout-over"),  # 86400
    ("CAJ-010", "v-caj010-timeout-absent"),
    # CAJ-011 retries
    ("CAJ-011", "v-caj011-retries-over"),  # 5
    # CAJ-012 overlapping schedules
    ("CAJ-012", "v-caj012-every-5-min"),  # */5 * * * * with 1800
    ("CAJ-012", "v-caj012-list-gap"),  # 0,10 3 * * * with 900
    ("CAJ-012", "v-caj012-midnight-wrap"),  # 0 1,23 * * *: 23:00 -> 01:00 is 2 h, timeout 3 h
    ("CAJ-012", "v-caj012-gap-equals-timeout"),  # 0 9-17 * * 1-5 with 3600: not shorter
    ("CAJ-012", "v-caj012-invalid-cron"),  # 0 25 * * *
    # CAJ-013 event executions
    ("CAJ-013", "v-caj013-max-exec-over"),  # 100
    ("CAJ-013", "v-caj013-max-exec-absent"),  # platform default 100
    # CAJ-014 provisioning state
    ("CAJ-014", "v-caj014-provisioning-failed"),
    # CAJ-015 replica resources
    ("CAJ-015", "v-caj015-cpu-summed"),  # two main containers: 1.25 + 1.0 vCPU
    ("CAJ-015", "v-caj015-memory-mebibytes"),  # 6144Mi
    ("CAJ-015", "v-caj015-init-over"),  # an init container alone asks for 2.5 vCPU
    # CAJ-020 pinned images
    ("CAJ-020", "v-caj020-latest-tag"),
    ("CAJ-020", "v-caj020-untagged"),
    ("CAJ-020", "v-caj020-init-latest"),  # the init container's image is :latest
    # CAJ-021 approved registries
    ("CAJ-021", "v-caj021-dockerhub-short"),  # python:3.12-slim
    ("CAJ-021", "v-caj021-dockerhub-namespaced"),  # fabrikam/ledger-close:2.3.1
    ("CAJ-021", "v-caj021-ghcr"),
    ("CAJ-021", "v-caj021-lookalike-host"),  # crfabprod.azurecr.io.mirror.fabrikam.net
    # CAJ-030 required tags
    ("CAJ-030", "v-caj030-owner-missing"),
    ("CAJ-030", "v-caj030-cost-center-empty"),
    ("CAJ-030", "v-caj030-no-tags"),
    # CAJ-040 / CAJ-041 the job's environment
    ("CAJ-040", "v-caj040-logs-destination-none"),  # appLogsConfiguration.destination null
    ("CAJ-040", "v-caj040-logs-config-absent"),  # no appLogsConfiguration
    ("CAJ-041", "v-caj041-no-vnet"),  # no vnetConfiguration
})

NEAR_MISSES: frozenset[str] = frozenset({
    "ok-caj001-system-and-user",  # "SystemAssigned, UserAssigned"
    "ok-caj002-no-registries",  # public MCR image, no registries: not applicable
    "ok-caj004-harmless-values",  # KEY_VAULT_NAME, PASSWORD_MIN_LENGTH=12, URL without userinfo,
    #                               booleans, numbers, short words, DB_PASSWORD via secretRef
    "ok-caj005-owner-resource-group",  # Owner, but at resource-group scope
    "ok-caj005-reader-subscription",  # Reader at subscription scope
    "ok-caj005-custom-wildcard-rg",  # custom "*" role, but at resource-group scope
    "ok-caj005-custom-narrow-subscription",  # custom role without "*" at subscription scope
    "ok-caj010-timeout-at-max",  # exactly 14400
    "ok-caj011-retries-at-max",  # exactly 3
    "ok-caj011-retries-absent",  # absent means 0
    "ok-caj012-hourly-3000",  # 0 * * * * with 3000
    "ok-caj012-scheduled-spelling",  # triggerType "Scheduled", 0 */6 * * * with 7200
    "ok-caj012-weekdays-long",  # 30 1 * * 1-5 with 14400
    "ok-caj013-max-exec-at-cap",  # exactly 25
    "ok-caj015-init-not-summed",  # init 2 vCPU/4Gi runs before main 2 vCPU/4Gi
    "ok-caj015-exact-caps-mixed-units",  # 1 + 1 vCPU, 2Gi + 2048Mi
    "ok-caj015-megabytes",  # 250Mb
    "ok-caj020-digest",  # @sha256:...
    "ok-caj020-latest-with-digest",  # :latest@sha256:... is pinned by its digest
    "ok-caj020-latest-in-repo-name",  # tools/latest-rates-sync:4.2.0
    "ok-caj021-mcr-and-second-acr",  # crfabshared.azurecr.io + mcr.microsoft.com init
    "ok-caj030-mixed-case-tags",  # Owner, COST-CENTER, Environment
    "ok-caj040-environment-not-exported",  # CAJ-040/041 unknown, not fail
    "ok-env-id-other-case",  # environmentId in other letter case than the environment's id
})

BASELINE: frozenset[str] = frozenset({"base-ledger-close", "base-invoice-events"})

UNEXPORTED_ENVIRONMENT = "ok-caj040-environment-not-exported"

# Secret values planted in the estate, by the variable (or argument) that carries them. None of
# their 5-character windows may reach a report (the snapshot/ copy is evidence and exempt).
PLANTED_SECRETS: dict[str, str] = {
    "LAKE_STORAGE AccountKey": (
        "9RiMezgY+OPc155HAsnVDdm5Q+WceMuIzqLrueY9+w+lJeHn61/gRI97VReIV4TJ1QRXBOiEJbv0O1OH3ZmO2E=="),
    "SEED_ARCHIVE sig": "NYIQrOFZLGFfDFskk45MIrP2WOZ1vfE1wwFWmcnCLAU",
    "--source password": "l1DYmSkMQyocPmboHp",
    "--pat": "ghp_k6GOS0k6uAdLPWknQQfb1HGg3h3E88Hi6eFq",
    "connection SharedAccessKey": "gwBDVX7EdvK9DQgxR5tK2uAzH2gwBVrQUPv3JaEmHx0=",
    "LEGACY_BEARER": (
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IlprSzJWMzNWMm9rZyJ9"
        ".eyJpc3MiOiJodHRwczovL2xvZ2luLmZhYnJpa2FtLmV4YW1wbGUvIiwic3ViIjoic3ZjLWxlZGdlci1sZWdhY3kiLCJ"
        "hdWQiOiJhcGk6Ly9mYWJyaWthbS1sZWRnZXIiLCJleHAiOjE3OTg3NjE2MDAsImp0aSI6ImhacnBhZ1RMOEdDSVp0U2"
        "kifQ.U3daR8LDhXmWAR5RFH34Mh9HgLUPq1q_jvoTCRWGqumHS1OCjhKcCLm_0G6uzGcrPmsVE75GpL0MyZNeJeUZ5e"),
    "STATEMENT_SIGNING_PEM": (
        "u6itVlzOizDUi8dVgm4dyR2Vun7eO4HrqT1SYMpruXeO2LV/IIlTBO5Kd339Ym67\n"
        "9kc+mlUwhELKlRIidWbxaw/O0Ydm5OvMNnoCohUpX55Wgz7FX1rdHrOOkeM23CpK\n"
        "Iq6xfifmG3IsfLL62o5bVqOyYBeoFG3Ezq8QNFOKVt2VCS67DUQfbWniZA3ziOM8\n"
        "/DE1XpB2mQxxj4qqjYMBfPZt61Ul1J6I/U4GRegu9ciYqFvwM79wzd6snBObQow/\n"
        "AUOq9OVJdvzLDaYjU1PjJMpIhaegM19eGhlaxVAi=="),
    "WAREHOUSE_PASSWORD": "VE4%csx9WPhYk%CF2Smq",
    "PARTNER_HANDSHAKE": "vNkE5APCgnSjMmLgo4EPl5P13Dwtj2LOH1spl4UuZkYf",
}

# What the fixture files hold (counted by hand when the estate was written).
JOB_COUNT = 72
ENVIRONMENT_COUNT = 5
ROLE_ASSIGNMENT_COUNT = 77


def _planted_jobs() -> set[str]:
    return {job for _, job in PLANTED}


# --- one run of the real CLI ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("unseen") / "reports"
    code = main(["scan", "--snapshot", str(ESTATE), "--out", str(folder), "--as-of", AS_OF,
                 "--fail-on", "critical"])
    (folder.parent / "exit-code").write_text(str(code), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def document(out: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    return result


@pytest.fixture(scope="module")
def findings(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document["findings"])


def _failing(findings: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(f["check_id"], f["resource_name"]) for f in findings if f["status"] == "fail"}


# --- the estate itself is what this file says ----------------------------------------------------

def test_the_specification_is_consistent() -> None:
    names = _planted_jobs()
    assert not names & NEAR_MISSES and not names & BASELINE and not NEAR_MISSES & BASELINE
    assert len(names) + len(NEAR_MISSES) + len(BASELINE) == JOB_COUNT
    for check_id, job in PLANTED:  # each violator is named after its one check
        assert job.startswith(f"v-{check_id.lower().replace('-', '')}-"), job
    assert len(names) == len(PLANTED)  # exactly one planted check per violating job
    assert all(n.startswith("ok-") for n in NEAR_MISSES)


def test_the_fixture_holds_exactly_the_specified_jobs() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(ESTATE.rglob("*.json")))
    found = set(re.findall(r'"name": "((?:v-caj\d{3}|ok|base)-[a-z0-9-]+)"', text))
    assert found == _planted_jobs() | NEAR_MISSES | BASELINE


def test_the_planted_secrets_are_in_the_fixture() -> None:
    raw = "\n".join(p.read_text(encoding="utf-8") for p in sorted(ESTATE.rglob("*.json")))
    for label, value in PLANTED_SECRETS.items():
        assert json.dumps(value)[1:-1] in raw, label


# --- the scan ------------------------------------------------------------------------------------

def test_the_scan_is_complete_and_exits_for_the_critical_findings(
    out: Path, document: dict[str, Any]
) -> None:
    assert (out.parent / "exit-code").read_text(encoding="utf-8") == "1"
    scan = document["scan"]
    assert scan["complete"] is True
    assert scan["coverage"]["gaps"] == []
    assert scan["counts"]["jobs"] == JOB_COUNT
    assert scan["counts"]["environments"] == ENVIRONMENT_COUNT
    assert scan["counts"]["role_assignments"] == ROLE_ASSIGNMENT_COUNT
    assert scan["other_types"] == {"microsoft.app/containerapps": 1}


def test_every_planted_violation_is_found_and_nothing_else_fails(
    findings: list[dict[str, Any]]
) -> None:
    failing = _failing(findings)
    missed = sorted(PLANTED - failing)
    extra = sorted(failing - PLANTED)
    assert not missed and not extra, f"missed planted: {missed}; failed but not planted: {extra}"


def test_each_violating_job_fails_only_its_own_check(findings: list[dict[str, Any]]) -> None:
    per_job = Counter(job for _, job in _failing(findings))
    assert {job: n for job, n in per_job.items() if n != 1} == {}


def test_no_near_miss_or_baseline_job_fails(findings: list[dict[str, Any]]) -> None:
    failing = sorted((f["check_id"], f["resource_name"], f["message"]) for f in findings
                     if f["status"] == "fail" and f["resource_name"] in NEAR_MISSES | BASELINE)
    assert failing == []


def test_the_baseline_has_no_finding_but_missing_history(
        findings: list[dict[str, Any]]) -> None:
    """The export holds no executions: the schedule check can only say `unknown`."""
    about_baseline = sorted((f["check_id"], f["resource_name"], f["status"])
                            for f in findings if f["resource_name"] in BASELINE)
    assert about_baseline == [("CAJ-017", "base-ledger-close", "unknown")]


def test_no_check_errors(findings: list[dict[str, Any]]) -> None:
    errors = sorted((f["check_id"], f["resource_name"], f["message"]) for f in findings
                    if f["status"] == "error")
    assert errors == []


def test_an_environment_missing_from_the_export_is_unknown_not_failing(
    findings: list[dict[str, Any]]
) -> None:
    statuses = {f["check_id"]: f["status"] for f in findings
                if f["resource_name"] == UNEXPORTED_ENVIRONMENT}
    assert statuses.get("CAJ-040") == "unknown"
    assert statuses.get("CAJ-041") == "unknown"


def test_no_finding_of_the_naming_check_while_it_is_off(findings: list[dict[str, Any]]) -> None:
    assert [f for f in findings if f["check_id"] == "CAJ-042"] == []


# --- no planted secret reaches a report ----------------------------------------------------------

def _windows(label: str, value: str) -> set[str]:
    """The 5-character pieces of a secret that must never appear in a report."""
    skip = label.lower()
    found = set()
    for i in range(len(value) - 4):
        piece = value[i:i + 5]
        if re.fullmatch(r"[a-z]{5}", piece) or any(c.isspace() for c in piece):
            continue
        if piece.lower() in skip:
            continue
        found.add(piece)
    return found


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []


def _readable_texts(path: Path) -> list[str]:
    """The file as a reader sees it: raw text plus decoded forms (JSON strings, XML entities)."""
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as archive:
            parts = [archive.read(n).decode("utf-8", errors="replace")
                     for n in archive.namelist()]
        return [*parts, *(html.unescape(p) for p in parts)]
    text = path.read_text(encoding="utf-8", errors="replace")
    texts = [text, text.replace("\\", "")]  # also without Markdown/JSON escapes
    if path.suffix == ".json":
        texts.append("\n".join(_strings(json.loads(text))))
    return texts


def test_the_planted_secrets_cannot_collide_with_ordinary_report_text() -> None:
    # Every checked window has a letter outside a-f (not hex: ids, digests, hashes), so a hit
    # below is a leak, not chance.
    for label, value in PLANTED_SECRETS.items():
        for piece in _windows(label, value):
            assert re.search(r"[g-zG-Z]", piece), (label, piece)


def test_no_report_contains_a_piece_of_a_planted_secret(out: Path) -> None:
    reports = [p for p in sorted(out.rglob("*")) if p.is_file()
               and p.relative_to(out).parts[0] != "snapshot"]
    names = {p.relative_to(out).as_posix() for p in reports}
    assert {"report.md", "report.xlsx", "findings.json", "manifest.json"} <= names
    leaks = []
    for path in reports:
        texts = _readable_texts(path)
        for label, value in PLANTED_SECRETS.items():
            pieces = sorted(w for w in _windows(label, value) if any(w in t for t in texts))
            if pieces:
                leaks.append((path.relative_to(out).as_posix(), label, pieces[:5]))
    assert leaks == []
