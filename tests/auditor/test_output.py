"""The report folder: staged, locked, published all at once, or discarded."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType

import pytest

from auditor import output
from auditor.errors import InputError
from auditor.output import discard, lock_path, publish, staging_folder


def _stage(out: Path, **files: str) -> Path:
    staging = staging_folder(out)
    for name, text in files.items():
        (staging / name).write_text(text)
    return staging


def test_a_folder_is_locked_from_staging_to_publish(tmp_path: Path) -> None:
    out = tmp_path / "out"
    staging = _stage(out, **{"report.md": "new"})
    assert lock_path(out).exists()
    with pytest.raises(InputError) as refused:
        staging_folder(out)
    assert str(refused.value) == (f"{lock_path(out)}: another scan is writing to {out}; "
                                  f"wait for it to finish, or pass another --out")
    publish(staging, out)
    assert (out / "report.md").read_text() == "new"
    assert not lock_path(out).exists()
    discard(_stage(out))  # free again, and again after a discard
    assert not lock_path(out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_other_folders_are_not_locked(tmp_path: Path) -> None:
    first, second = _stage(tmp_path / "a"), _stage(tmp_path / "b")
    discard(first)
    discard(second)


def test_a_stale_lock_file_does_not_block(tmp_path: Path) -> None:
    out = tmp_path / "out"
    lock_path(out).write_text("")  # left by a killed scan: nobody holds it
    discard(_stage(out))
    assert not lock_path(out).exists()


def test_staging_left_by_a_killed_scan_is_removed_by_the_next(tmp_path: Path) -> None:
    out = tmp_path / "out"
    abandoned = tmp_path / ".out.partial-abc123"
    abandoned.mkdir()
    (abandoned / "report.md").write_text("half")
    unrelated = tmp_path / ".out.partial-x.partial-abc123"  # another folder's, not ours
    unrelated.mkdir()
    publish(_stage(out, **{"report.md": "new"}), out)
    assert not abandoned.exists() and unrelated.exists()


def test_existing_files_are_replaced_and_others_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("old")
    (out / "notes.txt").write_text("mine")
    (out / "snapshot").mkdir()
    (out / "snapshot" / "stale.json").write_text("{}")
    staging = _stage(out, **{"report.md": "new"})
    (staging / "snapshot").mkdir()
    publish(staging, out)
    assert (out / "report.md").read_text() == "new"
    assert (out / "notes.txt").read_text() == "mine"
    assert list((out / "snapshot").iterdir()) == []
    assert not staging.exists()


def test_a_signal_during_publish_waits_until_every_file_is_in_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    names = [f"f{n}.txt" for n in range(5)]
    for name in names:
        (out / name).write_text("old")
    staging = _stage(out, **dict.fromkeys(names, "new"))
    moved: list[str] = []
    real_replace = os.replace

    def replace_then_signal(source: str | Path, target: str | Path) -> None:
        real_replace(source, target)
        moved.append(Path(target).name)
        if len(moved) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives after the first file of five

    class Stop(BaseException):
        pass

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Stop

    monkeypatch.setattr(output.os, "replace", replace_then_signal)
    previous = signal.signal(signal.SIGTERM, handler)
    # Another thread that blocks nothing: the kernel may hand a process-wide SIGTERM to it.
    done = threading.Event()
    other = threading.Thread(target=done.wait, daemon=True)
    other.start()
    try:
        with pytest.raises(Stop):
            publish(staging, out)
    finally:
        done.set()
        signal.signal(signal.SIGTERM, previous)
    assert moved == names  # the signal was held until all five were in place
    assert all((out / name).read_text() == "new" for name in names)


def test_an_output_path_that_is_a_file_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("")
    with pytest.raises(InputError, match="not a folder"):
        staging_folder(tmp_path / "out")
    assert not lock_path(tmp_path / "out").exists()
