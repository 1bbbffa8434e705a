"""What a scan read and what it could not: the basis of the `complete` flag and exit code 3."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Read:
    """A scope and source that was read in full."""

    scope: str
    source: str
    rows: int


@dataclass(frozen=True, slots=True)
class Gap:
    """Something the scan was asked to read and did not get, with the reason."""

    scope: str
    source: str
    reason: str


@dataclass(slots=True)
class Coverage:
    reads: list[Read] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.gaps

    def merge(self, other: Coverage) -> None:
        """Add `other`; a gap already listed is not listed again (merged shards of one snapshot
        each carry the input's own gaps)."""
        self.reads.extend(other.reads)
        listed = set(self.gaps)
        self.gaps.extend(g for g in other.gaps if g not in listed)
        self.queries.extend(other.queries)

    def to_dict(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "read": [{"scope": r.scope, "source": r.source, "rows": r.rows} for r in self.reads],
            "gaps": [{"scope": g.scope, "source": g.source, "reason": g.reason} for g in self.gaps],
            "queries": list(self.queries),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Coverage:
        return cls(
            reads=[Read(str(r["scope"]), str(r["source"]), int(r["rows"])) for r in data["read"]],
            gaps=[Gap(str(g["scope"]), str(g["source"]), str(g["reason"])) for g in data["gaps"]],
            queries=list(data.get("queries", [])),
        )
