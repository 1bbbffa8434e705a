"""The whole session gets its own XDG data folder, so `auditor scan` never records into the real
history store (~/.local/share/auditor/history.sqlite) of whoever runs the tests. Session-scoped:
module-scoped fixtures that scan run before any function-scoped one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_history_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
        yield
