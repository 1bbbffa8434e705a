"""The check catalogue as people read it: a terminal table, JSON, and `docs/checks.md`.

Rendered from the checks' own metadata and the effective settings, so the documentation cannot
drift from the code (a test regenerates `docs/checks.md` and compares).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from auditor.check import Check
from auditor.controls import frameworks
from auditor.engine import active_checks
from auditor.settings import Settings


@dataclass(frozen=True, slots=True)
class Entry:
    """A check with what this configuration makes of it."""

    check: Check
    enabled: bool
    severity: str
    parameters: dict[str, Any]


def entries(catalogue: Sequence[Check], settings: Settings) -> list[Entry]:
    active = {c.id: c for c in active_checks(catalogue, settings)}
    policy = settings.policy.model_dump(mode="json")
    return [Entry(c, c.id in active, (active.get(c.id) or c).severity.value,
                  {p: policy[p] for p in c.parameters}) for c in catalogue]


def as_table(items: Sequence[Entry]) -> str:
    width = max(len(e.check.title) for e in items)
    lines = [f"{'ID':<8}  {'SEVERITY':<8}  {'ON':<3}  {'TITLE':<{width}}  SETTINGS"]
    for e in items:
        settings = ", ".join(f"{k}={_value(v)}" for k, v in e.parameters.items())
        lines.append(f"{e.check.id:<8}  {e.severity:<8}  {'yes' if e.enabled else 'no':<3}  "
                     f"{e.check.title:<{width}}  {settings}".rstrip())
    return "\n".join(lines)


def as_json(items: Sequence[Entry]) -> str:
    return json.dumps([{
        "id": e.check.id, "title": e.check.title, "severity": e.severity,
        "enabled": e.enabled, "category": e.check.category, "rationale": e.check.rationale,
        "remediation": e.check.remediation, "references": list(e.check.references),
        "controls": {k: list(v) for k, v in e.check.controls.items()},
        "settings": e.parameters,
    } for e in items], indent=2)


def as_markdown(items: Sequence[Entry]) -> str:
    names = {key: f.name for key, f in frameworks().items()}
    lines = ["# Check catalogue", "",
             "Generated from the checks' metadata by `auditor checks --format markdown`; do not "
             "edit by hand. Severities and settings are the defaults of `config/default.toml`.",
             "", "| Id | Title | Severity | Category | On by default |", "|---|---|---|---|---|"]
    lines += [f"| [{e.check.id}](#{e.check.id.lower()}) | {_cell(e.check.title)} | {e.severity} "
              f"| {e.check.category} | {'yes' if e.enabled else 'no'} |" for e in items]
    for e in items:
        c = e.check
        lines += ["", f"## {c.id}", "", f"**{c.title}** ({e.severity}, {c.category})", "",
                  f"*Why:* {c.rationale}", "", f"*Fix:* {c.remediation}", ""]
        if c.requires_policy:
            lines += [f"Off until `[policy] {c.requires_policy}` is set.", ""]
        if e.parameters:
            lines += ["Settings: " + ", ".join(f"`{k}` = `{_value(v)}`"
                                               for k, v in e.parameters.items()), ""]
        lines += ["Controls:", ""]
        lines += [f"- {names.get(k, k)}: {', '.join(v)}" for k, v in c.controls.items()]
        lines += ["", "References: " + ", ".join(f"<{r}>" for r in c.references)]
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict, str)) else str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
