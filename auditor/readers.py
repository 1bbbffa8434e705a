"""Total readers of untrusted JSON values: anything Azure (or a person) put in a row.

Each returns the value in the expected type, or an empty/None value when it cannot: a row's
content never raises. Used wherever rows become records (normalize, changes).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def as_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)  # Azure's own form, millions of times
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return parsed if parsed.tzinfo else None


def as_strings(value: Any) -> tuple[str, ...]:
    return tuple(s for s in (as_str(v) for v in as_list(value)) if s is not None)


def id_part(resource_id: str | None, segment: str) -> str | None:
    """The value after `segment` in an ARM id, case-insensitively."""
    if not resource_id:
        return None
    parts = resource_id.strip("/").split("/")
    for index, part in enumerate(parts[:-1]):
        if part.lower() == segment:
            return parts[index + 1]
    return None


def scope_fields(row: Mapping[str, Any], resource_id: str) -> tuple[str | None, str | None]:
    """Subscription and resource group: Resource Graph adds them as columns; ARM has only id."""
    return (as_str(row.get("subscriptionId")) or id_part(resource_id, "subscriptions"),
            as_str(row.get("resourceGroup")) or id_part(resource_id, "resourcegroups"))
