"""Helpers for live-collection tests: settings, a fake clock, and reading what collect() wrote."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor.settings import AzureSettings, load_settings
from tests.azure_server import subscription_id

# The execution-history window the collect tests ask for, and the scan's clock.
SINCE = datetime(2025, 5, 1, tzinfo=UTC)
UNTIL = datetime(2025, 5, 31, tzinfo=UTC)
NOW = datetime(2025, 5, 31, 1, 2, 3, tzinfo=UTC)

SUB_A, SUB_B, SUB_C = (subscription_id(n) for n in (1, 2, 3))


@dataclass
class FakeTime:
    """A clock that moves only when slept on; each sleep notes how many requests came before."""

    requests_seen: Callable[[], int]
    now: float = 10_000.0
    sleeps: list[float] = field(default_factory=list)
    marks: list[tuple[int, float]] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.marks.append((self.requests_seen(), seconds))
        self.now += seconds

    def clock(self) -> float:
        return self.now


def azure_settings(**changes: Any) -> AzureSettings:
    """The shipped defaults with `--auth cli`, changed as a test needs (lists become tuples)."""
    base = load_settings().azure
    values = {"auth": "cli", **changes}
    for key in ("subscriptions", "management_groups"):
        if key in values:
            values[key] = tuple(values[key])
    return base.model_copy(update=values)


def written(folder: Path, name: str) -> list[dict[str, Any]]:
    """The rows of one snapshot file collect() wrote."""
    document = json.loads((folder / f"{name}.json").read_text())
    assert document["count"] == len(document["data"])
    rows: list[dict[str, Any]] = document["data"]
    return rows


def collection_record(folder: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((folder / "collection.json").read_text())
    return record["auditor_collection"]  # type: ignore[no-any-return]
