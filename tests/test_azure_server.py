"""The loopback Azure's own parts, where a flaw would show up as a flaky scan test."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from tests.azure_server import FakeAz


def test_fake_az_rewritten_while_running_always_answers(tmp_path: Path) -> None:
    """A token rotated mid-scan rewrites `az` while other threads of the scan run it: each run
    sees a whole script, never a busy or half-written one (it once failed a scan that way)."""
    az = FakeAz(tmp_path, "token-0")
    stop = threading.Event()
    rewrites = 0

    def rotate() -> None:
        nonlocal rewrites
        while not stop.is_set():
            az.token = f"token-{rewrites}"
            az.write(logged_in=True)
            rewrites += 1

    rotating = threading.Thread(target=rotate)
    rotating.start()
    try:
        answers = [subprocess.run([str(tmp_path / "az"), "account", "get-access-token"],
                                  capture_output=True, text=True, check=False)
                   for _ in range(200)]
    finally:
        stop.set()
        rotating.join()

    assert rewrites > 10
    assert [a.returncode for a in answers] == [0] * 200
    assert all('"accessToken": "token-' in a.stdout for a in answers)
    assert not list(tmp_path.glob(".az.*"))  # nothing left aside
