"""Reports appear all at once or not at all: written to a staging folder, then moved into place.

One scan at a time per report folder: `staging_folder` takes an exclusive lock (`flock`) on
`OUT.lock` beside `OUT`, held until `publish` or `discard`; a second scan of the same folder is
refused with an InputError (exit 2) instead of mixing its files with the first one's. The kernel
drops the lock when a process dies, so a killed scan never blocks the next one; staging folders a
killed scan left behind are removed by the next scan of the same folder.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from auditor.errors import InputError

LOCK_SUFFIX = ".lock"
STAGING_INFIX = ".partial-"

# Staging folder -> (lock file descriptor, lock path), for publish and discard to release.
_LOCKS: dict[Path, tuple[int, Path]] = {}


def lock_path(out: Path) -> Path:
    return out.resolve().parent / f"{out.name}{LOCK_SUFFIX}"


def staging_folder(out: Path) -> Path:
    """A fresh folder beside `out` (same file system, so the final move is a rename), with the
    folder's lock held until `publish` or `discard`."""
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(str(out), f"cannot create the output folder ({e.strerror})",
                         "pass a writable --out") from e
    if out.exists() and not out.is_dir():
        raise InputError(str(out), "output path exists and is not a folder", "pass a folder")
    held = _lock(out)
    try:
        _remove_abandoned_staging(out)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}{STAGING_INFIX}", dir=parent))
    except BaseException:
        _unlock(*held)
        raise
    _LOCKS[staging] = held
    return staging


def publish(staging: Path, out: Path) -> None:
    """Move the staged files into `out`; an existing `out` has its files replaced one by one.

    SIGINT and SIGTERM wait while files move, so an interrupted scan leaves either the old
    reports or the new ones, never a mix.
    """
    with _signals_held():
        if not out.exists():
            os.replace(staging, out)
        else:
            for item in sorted(staging.iterdir()):
                target = out / item.name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                os.replace(item, target)
            staging.rmdir()
        _release(staging)


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    _release(staging)


# --- the lock ----------------------------------------------------------------------------------

def _lock(out: Path) -> tuple[int, Path]:
    path = lock_path(out)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise InputError(str(path), f"cannot create the lock file ({e.strerror})",
                             "pass an --out in a writable folder") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(str(path), f"another scan is writing to {out}",
                             "wait for it to finish, or pass another --out") from None
        except OSError as e:
            os.close(fd)
            raise InputError(str(path), f"cannot lock the output folder ({e.strerror})",
                             "pass an --out on a local file system") from e
        # The previous holder removes the file as it lets go: if it did so after we opened it,
        # we hold a lock on a file nobody else will see; lock the one that is there now.
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            return fd, path
        os.close(fd)


def _unlock(fd: int, path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


def _release(staging: Path) -> None:
    held = _LOCKS.pop(staging, None)
    if held is not None:
        _unlock(*held)


def _remove_abandoned_staging(out: Path) -> None:
    """Staging folders of this `out` left by a scan that was killed (we hold the lock now)."""
    prefix = f".{out.name}{STAGING_INFIX}"
    for leftover in out.resolve().parent.iterdir():
        rest = leftover.name[len(prefix):]
        # mkdtemp's suffix is short and has no dot: another folder's staging never matches
        if (leftover.name.startswith(prefix) and rest and "." not in rest and len(rest) <= 16
                and leftover.is_dir() and not leftover.is_symlink()):
            shutil.rmtree(leftover, ignore_errors=True)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while files move into place, then deliver them.

    Python runs signal handlers in the main thread whichever thread the kernel picked, so the
    handlers are swapped for ones that only remember the signal; blocking with a thread's
    signal mask would not do, as a process-wide SIGTERM may land on another thread.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {s: signal.signal(s, remember) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for held, handler in previous.items():
            signal.signal(held, handler if handler is not None else signal.SIG_DFL)
        for number in dict.fromkeys(received):
            signal.raise_signal(number)  # now, to the handlers in force again
