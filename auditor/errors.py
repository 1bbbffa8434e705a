"""The project's own error types: the CLI maps each to one line and an exit code."""

from __future__ import annotations


class AuditorError(Exception):
    """Base class; never raised directly."""


class InputError(AuditorError):
    """Bad input from a person (config, snapshot, flags): exit 2 with this message."""

    def __init__(self, where: str, problem: str, fix: str = "") -> None:
        self.where, self.problem, self.fix = where, problem, fix
        text = f"{where}: {problem}"
        super().__init__(f"{text}; {fix}" if fix else text)


class CollectionError(AuditorError):
    """Azure could not be read at all (no scope readable, sign-in failed): exit 3."""
