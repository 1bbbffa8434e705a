"""Change records of jobs, read from Resource Graph's `resourcechanges` rows and made safe to show.

The row shape is Azure's, as published (nothing here is guessed):

- The change resource's spec, Azure/azure-rest-api-specs
  `specification/resources/resource-manager/Microsoft.Resources/changes/stable/2022-05-01/
  changes.json` and `examples/ListChanges.json`: `type` "Microsoft.Resources/changes" and
  `properties` {`targetResourceId`, `targetResourceType`, `changeType` (Create | Update | Delete),
  `changeAttributes` {correlationId, timestamp, changesCount, previousResourceSnapshotId,
  newResourceSnapshotId}, `changes` {"<path>": {propertyChangeType (Insert | Update | Remove),
  changeCategory (User | System), previousValue, newValue}}}. Values are strings; the example
  writes "null" for a property that did not exist before.
- "Get resource changes" (MicrosoftDocs/azure-docs
  `articles/governance/resource-graph/changes/get-resource-changes.md`): the Change Actor fields
  `changedBy`, `changedByType`, `clientType` and `operation` in `changeAttributes`, an optional
  `isTruncated` beside a long value, `changesCount` 0 and no property changes on Create and
  Delete records, "System" as `changedBy` for background changes, 14 days of retention.
- Published Resource Graph results: row ids `<targetResourceId>/providers/Microsoft.Resources/
  changes/<snapshot>_<guid>`, `subscriptionId` and a lower-case `resourceGroup` column on the
  row, `type` `microsoft.resources/changes` in queries, `previousValue` as JSON null on Insert,
  timestamps with 3 or 7 fractional digits, and System changes with `changedByType` "System"
  and `clientType`/`operation` "Unspecified".

Secrets: a change record carries the old and new value of every changed property, so env
values, secret values, args, command lines and scale-rule metadata pass through it in clear.
Those paths are masked here (`auditor.secret_scan.mask`: at most 4 leading characters and the
length); every other value, every path segment and the actor fields are run through
`credential_reason` and masked on a hit. The model never holds a clear value from a change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from auditor.model import Change, PropertyChange
from auditor.readers import as_dict, as_int, as_str, as_time, id_part
from auditor.secret_scan import credential_reason, mask
from auditor.snapshot import JOBS, RawItem

# Under these segments every value is hidden: free-form lists and maps.
_HIDE_ALL = frozenset({"args", "command", "metadata"})
# Under these, entries are objects; the keys listed name or reference a value and are shown.
_HIDE_VALUES: dict[str, frozenset[str]] = {
    "env": frozenset({"name", "secretref"}),
    "secrets": frozenset({"name", "keyvaulturl", "identity"}),
    "httpheaders": frozenset({"name"}),  # probe headers: an Authorization value is a secret
}
_SEGMENT = re.compile(r"[^.\[\]]+")
_JOB_ID = re.compile(r"/providers/microsoft\.app/jobs/[^/]+/?$", re.IGNORECASE)
TRUNCATED = " … (truncated by Azure)"
_ENTROPY = "high-entropy string"  # auditor.secret_scan's reason for a long random-looking token
# Shown as the new value when both values mask to the same text (a short value, same length).
CHANGED_HIDDEN = "(changed, value hidden)"


def changes_from(items: Iterable[RawItem]) -> tuple[Change, ...]:
    """The change records of jobs, each once, oldest first.

    Rows about other resource types (a broader export) are not jobs' changes and are left out.
    """
    seen: set[str] = set()
    kept: list[Change] = []
    for item in items:
        change = change_from_row(item.row, item.source)
        if change is None:
            continue
        attributes = as_dict(as_dict(item.row.get("properties")).get("changeAttributes"))
        snapshot = attributes.get("newResourceSnapshotId")
        key = (change.id or f"{change.resource_id}|{change.timestamp}|{snapshot}").lower()
        if key in seen:
            continue
        seen.add(key)
        kept.append(change)
    earliest = datetime.min.replace(tzinfo=UTC)
    return tuple(sorted(kept, key=lambda c: (c.timestamp or earliest, (c.id or "").lower())))


def change_from_row(row: dict[str, Any], source: str = "") -> Change | None:
    """One `resourcechanges` row of a job; None for another resource type or no target."""
    props = as_dict(row.get("properties"))
    target = as_str(props.get("targetResourceId"))
    if not target:
        return None
    kind = (as_str(props.get("targetResourceType")) or "").lower()
    if kind != JOBS and not (not kind and _JOB_ID.search(target)):
        return None
    attributes = as_dict(props.get("changeAttributes"))
    return Change(
        id=as_str(row.get("id")),
        resource_id=target,
        subscription_id=as_str(row.get("subscriptionId")) or id_part(target, "subscriptions"),
        resource_group=id_part(target, "resourcegroups") or as_str(row.get("resourceGroup")),
        change_type=as_str(props.get("changeType")),
        timestamp=as_time(attributes.get("timestamp")),
        changed_by=_actor(attributes.get("changedBy")),
        changed_by_type=_actor(attributes.get("changedByType")),
        client_type=_actor(attributes.get("clientType")),
        operation=_actor(attributes.get("operation")),
        correlation_id=_actor(attributes.get("correlationId")),
        changes_count=as_int(attributes.get("changesCount")),
        property_changes=tuple(
            property_change(str(path), as_dict(detail))
            for path, detail in sorted(as_dict(props.get("changes")).items(),
                                       key=lambda kv: str(kv[0]))),
        source=source,
    )


def property_change(path: str, detail: dict[str, Any]) -> PropertyChange:
    """One entry of `properties.changes`, masked where it could show a secret."""
    names = [s.lower() for s in _SEGMENT.findall(path) if not s.isdigit()]
    shown_path, path_masked = _safe_path(path)
    truncated = str(detail.get("isTruncated", "")).lower() == "true"
    before, before_masked = _shown(detail.get("previousValue"), names, truncated)
    after, after_masked = _shown(detail.get("newValue"), names, truncated)
    if after_masked and after is not None and after == before and \
            detail.get("previousValue") != detail.get("newValue"):
        after = CHANGED_HIDDEN
    return PropertyChange(
        path=shown_path, before=before, after=after,
        property_change_type=as_str(detail.get("propertyChangeType")),
        change_category=as_str(detail.get("changeCategory")),
        masked=path_masked or before_masked or after_masked,
    )


def hidden(names: Sequence[str]) -> bool:
    """Whether a value at this path (lower-case segments, indices dropped) must be masked."""
    for index, name in enumerate(names):
        if name in _HIDE_ALL:
            return True
        if name in _HIDE_VALUES:
            rest = names[index + 1:]
            return not (len(rest) == 1 and rest[0] in _HIDE_VALUES[name])
    return False


# --- values ------------------------------------------------------------------------------------

def _shown(value: Any, names: list[str], truncated: bool) -> tuple[str | None, bool]:
    """The text a report may print for `value`, and whether anything in it was masked."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "null"):
        return None, False
    structured = _structured(value)
    if structured is not None:
        redacted, masked = _redact(structured, names)
        text = json.dumps(redacted, ensure_ascii=False)
    else:
        text, masked = _scalar(value, names)
    return (text + TRUNCATED if truncated else text), masked


def _structured(value: Any) -> dict[str, Any] | list[Any] | None:
    """A JSON object or array, given as such or as a string holding one."""
    if isinstance(value, dict | list):
        return value
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict | list) else None
    return None


def _redact(value: Any, names: list[str]) -> tuple[Any, bool]:
    """`value` with every leaf that is hidden by its path, or looks like a credential, masked."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        masked = False
        for key, item in value.items():
            shown_key, key_masked = _safe_path(str(key))
            out[shown_key], item_masked = _redact(item, [*names, str(key).lower()])
            masked = masked or key_masked or item_masked
        return out, masked
    if isinstance(value, list):
        items = [_redact(item, names) for item in value]
        return [i for i, _ in items], any(m for _, m in items)
    if value is None:
        return None, False
    text, masked = _scalar(value, names)
    return (text if masked or isinstance(value, str) else value), masked


def _scalar(value: Any, names: list[str]) -> tuple[str, bool]:
    text = _text(value)
    if hidden(names):
        return mask(text), True
    if credential_reason(text, names[-1] if names else None):
        return mask(text), True
    return text, False


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"  # as Azure writes booleans in change values
    return json.dumps(value, ensure_ascii=False)


def _safe_path(path: str) -> tuple[str, bool]:
    """The path with any part that looks like a credential (a tag name, say) masked.

    A tag name may hold dots, so it is judged whole; a token split over segments (a JWT) is
    caught by the patterns on the whole path (not its entropy: long paths are mixed-case)."""
    reason = credential_reason(path)
    if reason and reason != _ENTROPY:
        return mask(path), True
    if path.lower().startswith("tags.") and credential_reason(path[5:]):
        return path[:5] + mask(path[5:]), True
    masked = False

    def segment(match: re.Match[str]) -> str:
        nonlocal masked
        if credential_reason(match.group()):
            masked = True
            return mask(match.group())
        return match.group()

    return _SEGMENT.sub(segment, path), masked


def _actor(value: Any) -> str | None:
    """Who and how: Azure's own strings, masked if one ever looks like a credential."""
    text = as_str(value)
    if text and credential_reason(text):
        return mask(text)
    return text or None


