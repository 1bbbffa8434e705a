"""The check catalogue: the modules listed here are searched for `Check` objects, in order."""

from __future__ import annotations

from types import ModuleType

from auditor.check import Check
from checks import (
    environment,
    finops,
    governance,
    health,
    identity,
    reliability,
    secrets,
    supply_chain,
)

MODULES: tuple[ModuleType, ...] = (identity, secrets, reliability, health, supply_chain,
                                   governance, environment, finops)


def catalogue() -> tuple[Check, ...]:
    """Every check, sorted by id; duplicate ids are a programming error caught by tests."""
    found = [v for m in MODULES for v in vars(m).values() if isinstance(v, Check)]
    return tuple(sorted(found, key=lambda c: c.id))
