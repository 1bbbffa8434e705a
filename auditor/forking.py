"""Forked helper processes: how many the scan may run, and how one behaves once forked.

A scan forks helpers for CPU-bound work that one interpreter does on one core (reading a large
snapshot file, writing reports); they share the scan's memory copy-on-write, nothing pickled in.
"""

from __future__ import annotations

import os
import signal
from multiprocessing import get_all_start_methods


def available_processes() -> int:
    """How many processes the scan may use: the CPUs this process may run on, when the platform
    can fork (elsewhere the scan does everything itself)."""
    if "fork" not in get_all_start_methods():
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def as_forked_helper() -> None:
    """Call first thing in a forked helper. The scan's handlers turn signals into exceptions for
    the scan's own cleanup; a helper has nothing to clean up: SIGTERM ends it, Ctrl-C is the
    scan's to handle."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
