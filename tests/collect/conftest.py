"""Fixtures for live-collection tests: the loopback Azure and time that never sleeps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auditor.collect.live import collect
from auditor.coverage import Coverage
from tests.azure_server import AzureServer, serve
from tests.collect.helpers import FakeTime, azure_settings


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AzureServer]:
    with serve(monkeypatch, tmp_path) as server:
        yield server


@pytest.fixture
def fake_time(azure: AzureServer) -> FakeTime:
    return FakeTime(requests_seen=lambda: len(azure.requests))


@pytest.fixture
def snapshot_dir(tmp_path: Path) -> Path:
    return tmp_path / "snapshot"


@pytest.fixture
def run(fake_time: FakeTime, snapshot_dir: Path) -> Callable[..., Coverage]:
    """collect() into `snapshot_dir` with the fake clock; keyword arguments change settings."""

    def run_collect(**changes: Any) -> Coverage:
        return collect(azure_settings(**changes), snapshot_dir,
                       sleep=fake_time.sleep, clock=fake_time.clock)

    return run_collect
