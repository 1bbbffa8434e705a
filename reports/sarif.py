"""findings.sarif: the findings as SARIF 2.1.0, for security tooling (code scanning, viewers).

One log, one run:
- `tool.driver`: name "auditor", version, and one rule per active check: id, name, short
  description (title), full description (rationale), help (remediation and references, as text
  and Markdown), `helpUri` (the first reference), default level, and properties: `tags`
  ("security", the category and each framework control as "FRAMEWORK:ID") and
  `security-severity` (critical 9.5, high 8.0, medium 5.5, low 3.0, info 1.0: GitHub reads over
  9.0 as critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low).
- `invocations[0]`: `executionSuccessful` is whether the scan read everything it was asked to;
  each coverage gap is a `toolExecutionNotifications` entry (level error).
- `results`: one per finding (fail, unknown, error), in report order. `level`: critical and high
  are "error", medium "warning", low and info "note". The message starts with the job's name.
  `locations[0]` names the job twice: `physicalLocation.artifactLocation` is its lower-cased
  resource id as a relative URI against `originalUriBaseIds.AZURE_RESOURCE_MANAGER` (the cloud's
  Resource Manager endpoint, so it resolves to the resource's ARM URL; relative, as GitHub
  recommends, and lower-cased, because Azure varies the case of one id), and
  `logicalLocations[0]` is {name, fullyQualifiedName: the resource id as read, kind "resource"}.
  `partialFingerprints["auditorFinding/v1"]` is `auditor.fingerprint`, stable across scans;
  GitHub code scanning reads only `primaryLocationLineHash`, and an Azure resource has no source
  line to hash, so that key carries the same fingerprint. A waived finding carries a suppression
  {kind "external", status "accepted", justification} with the approver, ticket and expiry; an
  expired waiver suppresses nothing. `baselineState` ("new" or "unchanged") and the first-seen
  time appear when a history store was kept. `properties` hold status, severity, owner,
  subject, evidence and where the job lives.
- `automationDetails`: id "auditor/<scope digest>/<scan id>" (GitHub's category/run form) and
  guid = scan id; `baselineGuid` is the scan compared with, when there is one.

Values are written as read (JSON escaping is the only encoding); no viewer should render the
`text` of a message as Markup. Keys keep this order, so one scan always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from auditor.check import Check
from auditor.collect.clouds import CLOUDS
from auditor.fingerprint import VERSION as FINGERPRINT_KEY
from auditor.history import scope_key
from auditor.results import ScanReport
from auditor.settings import Severity
from auditor.snapshot import write_json_atomic
from reports.tables import Record, finding_records, iso_utc

FILE_NAME = "findings.sarif"
SARIF_VERSION = "2.1.0"
SCHEMA_URI = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
              "sarif-schema-2.1.0.json")
TOOL_NAME = "auditor"
# Where people read about the tool; empty until the project has a public home page.
INFORMATION_URI = ""
URI_BASE = "AZURE_RESOURCE_MANAGER"

LEVELS = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
          Severity.LOW: "note", Severity.INFO: "note"}
SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5",
                     Severity.LOW: "3.0", Severity.INFO: "1.0"}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-5][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-"
                   r"[0-9a-fA-F]{12}$")
_BASELINE = {"new": "new", "persisting": "unchanged"}


def level(severity: Severity) -> str:
    return LEVELS[severity]


def rule_name(check: Check) -> str:
    """The title as one PascalCase word, e.g. "JobHasAManagedIdentity"."""
    return "".join(word[:1].upper() + word[1:] for word in re.findall(r"[A-Za-z0-9]+",
                                                                       check.title))


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _rule(check: Check) -> dict[str, Any]:
    references = list(check.references)
    text = check.remediation + ("\n\nReferences:\n" + "\n".join(f"- {r}" for r in references)
                                if references else "")
    markdown = f"**Remediation:** {check.remediation}" + (
        "\n\n**References:**\n\n" + "\n".join(f"- <{r}>" for r in references)
        if references else "")
    rule: dict[str, Any] = {
        "id": check.id,
        "name": rule_name(check),
        "shortDescription": {"text": check.title},
        "fullDescription": {"text": check.rationale},
        "defaultConfiguration": {"level": level(check.severity)},
        "help": {"text": text, "markdown": markdown},
    }
    if references and references[0].startswith("https://"):
        rule["helpUri"] = references[0]
    rule["properties"] = {
        "tags": _unique(["security", check.category,
                         *(f"{framework}:{control}" for framework, ids in check.controls.items()
                           for control in ids)]),
        "security-severity": SECURITY_SEVERITY[check.severity],
        "severity": check.severity.value,
    }
    return rule


def resource_uri(resource_id: str) -> str:
    """The resource id as a relative URI: lower-cased, without the leading slash, %-encoded."""
    return quote(resource_id.strip("/").lower(), safe="/-._~")


def _location(item: Record) -> dict[str, Any]:
    return {
        "physicalLocation": {"artifactLocation": {"uri": resource_uri(item.resource_id),
                                                  "uriBaseId": URI_BASE}},
        "logicalLocations": [{"name": item.resource_name, "fullyQualifiedName": item.resource_id,
                              "kind": "resource"}],
    }


def _result(report: ScanReport, item: Record, index: dict[str, int]) -> dict[str, Any]:
    severity = Severity(item.severity)
    result: dict[str, Any] = {
        "ruleId": item.check_id,
        "ruleIndex": index[item.check_id],
        "level": level(severity),
        "message": {"text": f"{item.resource_name}: {item.message}"},
        "locations": [_location(item)],
        "partialFingerprints": {FINGERPRINT_KEY: item.fingerprint,
                                "primaryLocationLineHash": item.fingerprint},
    }
    if item.waiver is not None:
        w = item.waiver
        result["suppressions"] = [{
            "kind": "external", "status": "accepted", "justification": w.justification,
            "properties": {"approver": w.approver, "ticket": w.ticket,
                           "expires": w.expires.isoformat(), "source": w.source},
        }]
    history = report.history
    state = history.of(item.fingerprint) if history is not None else None
    if state is not None and history is not None and history.baseline is not None:
        result["baselineState"] = _BASELINE[state.state]
    properties: dict[str, Any] = {
        "status": item.status, "severity": item.severity, "owner": item.owner,
        "subject": item.subject, "evidence": list(item.evidence),
        "resourceGroup": item.resource_group, "subscriptionId": item.subscription_id,
    }
    if item.expired_waiver is not None:
        properties["expiredWaiver"] = item.expired_waiver.to_dict()
    if state is not None:
        properties["firstSeen"] = iso_utc(state.first_seen)
        properties["ageDays"] = state.age_days
    result["properties"] = properties
    return result


def _scope_digest(report: ScanReport) -> str:
    return hashlib.sha256(scope_key(report).encode("utf-8")).hexdigest()[:12]


def document(report: ScanReport) -> dict[str, Any]:
    info = report.info
    index = {c.id: i for i, c in enumerate(report.checks)}
    driver: dict[str, Any] = {"name": TOOL_NAME, "version": info.tool_version}
    if INFORMATION_URI:
        driver["informationUri"] = INFORMATION_URI
    driver["rules"] = [_rule(c) for c in report.checks]
    invocation = {
        "executionSuccessful": report.complete,
        "startTimeUtc": iso_utc(info.started),
        "endTimeUtc": iso_utc(info.finished),
        "toolExecutionNotifications": [
            {"level": "error", "message": {"text": f"Not read: {g.scope} ({g.source}): "
                                                   f"{g.reason}"},
             "descriptor": {"id": "coverage-gap"}}
            for g in report.coverage.gaps],
    }
    cloud = CLOUDS.get(report.settings.azure.cloud) or CLOUDS["AzureCloud"]
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        "invocations": [invocation],
        "originalUriBaseIds": {URI_BASE: {
            "uri": cloud.arm_endpoint.rstrip("/") + "/",
            "description": {"text": "Azure Resource Manager: result locations are resource "
                                    "ids relative to it."}}},
        "automationDetails": {"id": f"auditor/{_scope_digest(report)}/{info.id}"},
        "results": [_result(report, item, index) for item in finding_records(report)],
        "columnKind": "unicodeCodePoints",
        "properties": {"scanId": info.id, "asOf": iso_utc(info.as_of), "source": info.source,
                       "complete": report.complete,
                       "settingsDigest": report.settings.digest()},
    }
    if _GUID.match(info.id):
        run["automationDetails"]["guid"] = info.id
    baseline = report.history.baseline if report.history is not None else None
    if baseline is not None and _GUID.match(baseline.id):
        run["baselineGuid"] = baseline.id
    return {"$schema": SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def write_sarif(report: ScanReport, folder: Path) -> Path:
    path = folder / FILE_NAME
    write_json_atomic(path, document(report))
    return path
