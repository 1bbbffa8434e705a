"""Forked helper processes: how many the scan may run, and one call run in a helper.

A scan forks helpers for CPU-bound work that one interpreter does on one core (reading a large
snapshot file, writing reports); they share the scan's memory copy-on-write, nothing pickled in.
"""

from __future__ import annotations

import os
import pickle
import signal
import traceback
from collections.abc import Callable
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def available_processes() -> int:
    """How many processes the scan may use: the CPUs this process may run on, when the platform
    can fork (elsewhere the scan does everything itself)."""
    if "fork" not in get_all_start_methods():
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class ForkedFailed(RuntimeError):
    """A helper stopped without saying why (killed, out of memory), or raised what cannot be
    sent back (its traceback then is the message)."""


class Forked(Generic[T]):
    """`call(*args)` in a forked helper; `result()` waits for the value it returned (pickled
    back) or raises here what it raised. The scan stays in charge: `stop()` ends the helper
    when the scan no longer wants its result (it failed, or was interrupted)."""

    def __init__(self, name: str, call: Callable[..., T], *args: Any) -> None:
        context = get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_run, args=(call, args, send), name=name,
                                        daemon=True)
        self._process.start()
        send.close()  # the helper holds the only sending end: its exit ends the pipe

    def result(self) -> T:
        try:
            status, payload = self._receive.recv()
        except EOFError:
            self._process.join()
            raise ForkedFailed(f"the {self._process.name} process ended without a result "
                               f"(exit code {self._process.exitcode})") from None
        finally:
            self._receive.close()
        self._process.join()
        if status == "ok":
            value: T = payload
            return value
        raise pickle.loads(payload)

    def stop(self) -> None:
        """End the helper now (or reap it, when it is done)."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._receive.close()


def _run(call: Callable[..., T], args: tuple[Any, ...], send: Connection) -> None:
    as_forked_helper()
    try:
        send.send(("ok", call(*args)))  # a value that cannot be pickled raises before sending
    except BaseException as e:  # whatever stopped the helper goes back to the scan
        send.send(("error", _pickled(e)))
    finally:
        send.close()


def _pickled(error: BaseException) -> bytes:
    """The exception as the scan will raise it; one that cannot cross processes becomes a
    ForkedFailed carrying its traceback text."""
    try:
        payload = pickle.dumps(error)
        pickle.loads(payload)  # an exception whose arguments differ from its init's fails here
        return payload
    except Exception:  # any pickling failure
        text = "".join(traceback.format_exception(error))
        return pickle.dumps(ForkedFailed(f"a helper process failed:\n{text}"))


def as_forked_helper() -> None:
    """Call first thing in a forked helper. The scan's handlers turn signals into exceptions for
    the scan's own cleanup; a helper has nothing to clean up: SIGTERM ends it, Ctrl-C is the
    scan's to handle."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
