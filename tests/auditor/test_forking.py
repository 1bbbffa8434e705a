"""A call run in a forked helper: its value or its exception comes back; a helper that dies or
is stopped never hangs the scan."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from auditor.forking import Forked, ForkedFailed, available_processes

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                                reason="helpers are forked")


class Unpicklable(Exception):
    def __init__(self, first: str, second: str) -> None:  # pickle calls it with one argument
        super().__init__(f"{first} {second}")


def _add(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b, "pid": os.getpid()}


def _raise(error: BaseException) -> None:
    raise error


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _wait_forever(started: Path) -> None:
    started.touch()
    threading.Event().wait()


def test_the_helpers_value_comes_back() -> None:
    answer = Forked("test-helper", _add, 2, 3).result()
    assert answer["sum"] == 5 and answer["pid"] != os.getpid()
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyError("x"),
                                   KeyboardInterrupt()])
def test_the_helpers_exception_is_raised_here(error: BaseException) -> None:
    with pytest.raises(type(error)) as raised:
        Forked("test-helper", _raise, error).result()
    assert raised.value.args == error.args
    assert not multiprocessing.active_children()


def test_an_exception_that_cannot_come_back_comes_as_its_traceback() -> None:
    with pytest.raises(ForkedFailed, match=r"(?s)a helper process failed:.*Unpicklable: a b"):
        Forked("test-helper", _raise, Unpicklable("a", "b")).result()


def test_a_helper_that_dies_is_an_error_naming_it_and_its_exit_code() -> None:
    with pytest.raises(ForkedFailed, match=r"the test-helper process ended without a result "
                                           r"\(exit code -9\)"):
        Forked("test-helper", _die).result()


def test_stop_ends_a_helper_that_is_still_working(tmp_path: Path) -> None:
    started = tmp_path / "started"
    helper = Forked("test-helper", _wait_forever, started)
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert started.exists()
    helper.stop()
    assert not multiprocessing.active_children()


def test_available_processes_counts_the_cpus_this_process_may_use() -> None:
    assert available_processes() == len(os.sched_getaffinity(0))
