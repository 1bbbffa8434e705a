"""Write some of a scan's reports in a second process while this one writes the rest.

Report writing is CPU-bound Python, so one process uses one core however many the machine has:
on a large estate the reports take longer than everything before them. A forked worker shares
the finished scan (copy-on-write, nothing pickled), writes its reports into the same staging
folder and sends back the paths it wrote, or the exception that stopped it. The scan process
stays in charge: it waits for the worker before the manifest hashes the folder, and stops it if
anything fails, so nothing is half-written when the staging folder is discarded.
"""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Callable, Sequence
from multiprocessing import get_context
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Generic, TypeVar

from auditor.forking import as_forked_helper
from reports.manifest import Digests, digests

R = TypeVar("R")  # what writers read: a ScanReport, or (reports.EARLY) the priced estate
Writer = Callable[[R, Path], Path | list[Path]]


def write_each(writers: Sequence[Writer[R]], report: R, folder: Path) -> list[Path]:
    """Run `writers` in turn; the paths they wrote, in order."""
    written: list[Path] = []
    for write in writers:
        paths = write(report, folder)
        written.extend(paths if isinstance(paths, list) else [paths])
    return written


class WorkerFailed(RuntimeError):
    """The worker stopped without saying why (killed, out of memory)."""


class Worker(Generic[R]):
    """One forked process running `writers` over `report`; `result()` waits for it."""

    def __init__(self, writers: Sequence[Writer[R]], report: R, folder: Path) -> None:
        context = get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_run, args=(writers, report, folder, send),
                                        name="auditor-report-writer", daemon=True)
        self._process.start()
        send.close()  # the worker holds the only sending end: its exit ends the pipe

    def result(self) -> tuple[list[Path], Digests]:
        """The paths the worker wrote and their digests; its exception, raised here, when it
        failed."""
        try:
            status, payload = self._receive.recv()
        except EOFError:
            self._process.join()
            raise WorkerFailed(f"the report writer process ended without a result "
                               f"(exit code {self._process.exitcode})") from None
        finally:
            self._receive.close()
        self._process.join()
        if status == "ok":
            paths, hashed = payload
            return [Path(p) for p in paths], hashed
        raise pickle.loads(payload)

    def stop(self) -> None:
        """End the worker now (the scan failed or was interrupted) and reap it."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._receive.close()


def _run(writers: Sequence[Writer[R]], report: R, folder: Path, send: Connection) -> None:
    as_forked_helper()
    try:
        paths = write_each(writers, report, folder)
        send.send(("ok", ([str(p) for p in paths], digests(paths, folder))))
    except BaseException as e:  # whatever stopped the worker goes back to the scan
        send.send(("error", _pickled(e)))
    finally:
        send.close()


def _pickled(error: BaseException) -> bytes:
    """The exception as the scan will raise it; one that cannot cross processes becomes a
    WorkerFailed carrying its traceback text."""
    try:
        payload = pickle.dumps(error)
        pickle.loads(payload)  # an exception whose arguments differ from its init's fails here
        return payload
    except Exception:  # any pickling failure
        text = "".join(traceback.format_exception(error))
        return pickle.dumps(WorkerFailed(f"a report writer failed:\n{text}"))
