"""Sharded scans: `scan --shard I/N` slices the estate by subscription, `merge` joins the shards.

The shards of an estate are disjoint and together hold all of it; merged, they give exactly the
findings of one unsharded scan; a missing shard leaves the merged scan incomplete (exit 3).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_USAGE, main
from auditor.normalize import normalize
from auditor.shards import Shard, shard_of, subscription_of
from auditor.snapshot import read_snapshot
from tests.azure_server import (
    AzureServer,
    environment_row,
    job_row,
    role_assignment_row,
    role_definition_row,
    serve,
    subscription_id,
    system_identity,
)

AS_OF = "2026-11-20T00:00:00Z"
N = 3


def _scan(*args: str) -> int:
    return main(["scan", "--as-of", AS_OF, *args])


def _document(out: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((out / "findings.json").read_text())
    return document


def _without_scan(out: Path) -> dict[str, Any]:
    """findings.json without its scan metadata (ids, times, scope, coverage)."""
    return {k: v for k, v in _document(out).items() if k != "scan"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The sample estate scanned whole, in 3 shards, and the shards merged (all and 1, 3)."""
    root = tmp_path_factory.mktemp("shards")
    assert _scan("--sample", "--no-history", "--out", str(root / "whole")) == EXIT_FINDINGS
    for index in range(1, N + 1):
        assert _scan("--sample", "--shard", f"{index}/{N}", "--out",
                     str(root / f"shard-{index}")) in (0, EXIT_FINDINGS)
    yield root


def test_merged_shards_find_exactly_what_one_scan_finds(sample: Path) -> None:
    shards = [str(sample / f"shard-{i}") for i in range(1, N + 1)]
    assert main(["merge", *shards, "--no-history", "--out", str(sample / "merged")]) \
        == EXIT_FINDINGS
    whole, merged = _document(sample / "whole"), _document(sample / "merged")
    assert _without_scan(sample / "merged") == _without_scan(sample / "whole")
    assert merged["findings"]  # the comparison is not vacuous
    assert merged["scan"]["counts"] == whole["scan"]["counts"]
    assert merged["scan"]["other_types"] == whole["scan"]["other_types"]
    assert merged["scan"]["complete"] is True
    assert merged["scan"]["as_of"] == AS_OF  # the shards' as-of time, not the merge's
    assert merged["scan"]["scope"]["sample"] is True
    assert merged["scan"]["scope"]["shards"] == {
        "count": N, "method": "sha256(lower-case subscription id) mod count, plus 1",
        "merged": [1, 2, 3], "missing": []}
    manifest = json.loads((sample / "merged" / "manifest.json").read_text())
    paths = {f["path"] for f in manifest["files"]}
    assert {f"snapshot/shard-{i}-of-{N}/collection.json" for i in range(1, N + 1)} <= paths
    assert manifest["complete"] is True


def test_each_shard_records_its_shard(sample: Path) -> None:
    for index in range(1, N + 1):
        scope = _document(sample / f"shard-{index}")["scan"]["scope"]
        assert scope["shard"]["index"] == index and scope["shard"]["count"] == N
        record = json.loads((sample / f"shard-{index}" / "snapshot" / "collection.json")
                            .read_text())["auditor_collection"]
        assert record["shard"]["index"] == index and record["shard"]["of"] == {"sample": True}


def _ids(folder: Path) -> dict[str, set[str]]:
    estate = normalize(read_snapshot(folder))
    return {
        "jobs": {j.id.lower() for j in estate.jobs},
        "environments": set(estate.environments),
        "executions": {f"{e.job_id}/{e.name}".lower() for e in estate.executions},
        "role_assignments": {a.id.lower() for a in estate.role_assignments},
    }


def test_shards_are_disjoint_and_cover_everything(sample: Path) -> None:
    whole = _ids(sample / "whole" / "snapshot")
    parts = [_ids(sample / f"shard-{i}" / "snapshot") for i in range(1, N + 1)]
    for kind, expected in whole.items():
        seen = Counter(i for part in parts for i in part[kind])
        assert set(seen) == expected, kind
        assert max(seen.values(), default=1) == 1, f"{kind} in two shards"
    assert sum(1 for part in parts if part["jobs"]) >= 2  # the sample really is split
    for index, part in enumerate(parts, start=1):
        for job in part["jobs"]:
            assert shard_of(job.split("/")[2], N) == index


def test_a_missing_shard_leaves_the_merge_incomplete(sample: Path) -> None:
    out = sample / "partial"
    assert main(["merge", str(sample / "shard-1"), str(sample / "shard-3"), "--no-history",
                 "--out", str(out)]) == EXIT_INCOMPLETE
    scan = _document(out)["scan"]
    assert scan["complete"] is False
    assert scan["scope"]["shards"]["missing"] == [2]
    assert {"scope": "shard 2/3", "source": "merge"}.items() <= scan["coverage"]["gaps"][0].items()
    assert json.loads((out / "manifest.json").read_text())["complete"] is False


def test_merge_refuses_a_shard_given_twice_or_another_shard_set(sample: Path,
                                                                tmp_path: Path) -> None:
    one = str(sample / "shard-1")
    assert main(["merge", one, one, "--out", str(tmp_path / "twice")]) == EXIT_USAGE
    assert _scan("--sample", "--shard", "1/2", "--out", str(tmp_path / "other")) in (0, 1)
    assert main(["merge", one, str(tmp_path / "other"), "--out", str(tmp_path / "mixed")]) \
        == EXIT_USAGE
    assert main(["merge", str(sample / "whole"), "--out", str(tmp_path / "unsharded")]) \
        == EXIT_USAGE
    assert not (tmp_path / "twice").exists() and not (tmp_path / "mixed").exists()


def test_merge_refuses_a_shard_left_over_from_an_earlier_run(sample: Path,
                                                             tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    shutil.copytree(sample / "shard-2", stale)
    document = _document(stale)
    document["scan"]["started"] = "2026-11-01T02:30:00Z"  # weeks before the other shards
    (stale / "findings.json").write_text(json.dumps(document))
    shards = [str(sample / "shard-1"), str(stale), str(sample / "shard-3")]
    assert main(["merge", *shards, "--out", str(tmp_path / "merged")]) == EXIT_USAGE
    assert main(["merge", *shards, "--within", "1000", "--no-history",
                 "--out", str(tmp_path / "merged")]) == EXIT_FINDINGS


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0"])
def test_shard_must_be_i_of_n(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["scan", "--sample", "--shard", text])
    assert exit_.value.code == EXIT_USAGE
    assert "--shard" in capsys.readouterr().err


def test_shard_of_is_sha256_of_the_lower_case_id_and_spreads_evenly() -> None:
    sub = "3F7C2A9E-5B1D-4E8A-9C6F-0D2B7E4A1C35"
    expected = int(hashlib.sha256(sub.lower().encode()).hexdigest(), 16) % 8 + 1
    assert shard_of(sub, 8) == shard_of(sub.lower(), 8) == expected
    assert Shard(expected, 8).owns(sub) and not Shard(expected % 8 + 1, 8).owns(sub)
    spread = Counter(shard_of(subscription_id(n), 8) for n in range(4000))
    assert set(spread) == set(range(1, 9))
    assert min(spread.values()) > 400  # 500 each on average


def test_rows_belong_to_the_subscription_in_their_column_or_id() -> None:
    sub = subscription_id(7)
    assert subscription_of({"subscriptionId": sub}) == sub
    assert subscription_of({"id": f"/subscriptions/{sub}/resourceGroups/rg/x"}) == sub
    assert subscription_of({"id": "/providers/Microsoft.Authorization/roleDefinitions/x"}) \
        is None


def test_sharded_snapshot_scans_merge_too(tmp_path: Path) -> None:
    source = tmp_path / "export"
    assert _scan("--sample", "--no-history", "--out", str(tmp_path / "whole")) == EXIT_FINDINGS
    (tmp_path / "whole" / "snapshot").rename(source)
    assert _scan("--snapshot", str(source), "--no-history", "--out",
                 str(tmp_path / "direct")) == EXIT_FINDINGS
    for index in (1, 2):
        _scan("--snapshot", str(source), "--shard", f"{index}/2", "--out",
              str(tmp_path / f"s{index}"))
    assert main(["merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--no-history", "--out",
                 str(tmp_path / "merged")]) == EXIT_FINDINGS
    assert _without_scan(tmp_path / "merged") == _without_scan(tmp_path / "direct")


# --- live shards --------------------------------------------------------------------------------

SUBSCRIPTIONS = [subscription_id(0x50 + n) for n in range(6)]
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AzureServer]:
    with serve(monkeypatch, tmp_path) as server:
        graph = server.resource_graph
        graph.add("authorizationresources", role_definition_row(CONTRIBUTOR, "Contributor",
                                                                actions=("*",)))
        for n, sub in enumerate(SUBSCRIPTIONS):
            principal = f"5f1c7a0e-0000-4000-8000-{n:012x}"
            graph.add_subscription(sub)
            graph.add("resources", environment_row(sub),
                      job_row(sub, f"job-{n}", identity=system_identity(principal)),
                      job_row(sub, f"other-{n}", replica_timeout=86400))
            graph.add("authorizationresources", role_assignment_row(sub, principal, CONTRIBUTOR))
        yield server


def test_live_shards_read_only_their_subscriptions_and_merge_to_one_scan(
        azure: AzureServer, tmp_path: Path) -> None:
    assert _scan("--auth", "cli", "--no-history", "--out", str(tmp_path / "whole")) \
        == EXIT_FINDINGS
    shards = []
    for index in range(1, N + 1):
        before = len(azure.graph_bodies())
        out = tmp_path / f"shard-{index}"
        _scan("--auth", "cli", "--shard", f"{index}/{N}", "--out", str(out))
        shards.append(str(out))
        asked = {s.lower() for body in azure.graph_bodies()[before:]
                 if "resourcecontainers" not in body["query"]
                 for s in body.get("subscriptions") or []}
        assert asked == {s for s in SUBSCRIPTIONS if shard_of(s, N) == index}
    assert main(["merge", *shards, "--no-history", "--out", str(tmp_path / "merged")]) \
        == EXIT_FINDINGS
    assert _without_scan(tmp_path / "merged") == _without_scan(tmp_path / "whole")
    assert _document(tmp_path / "merged")["scan"]["counts"]["jobs"] == 2 * len(SUBSCRIPTIONS)


def test_a_live_shard_of_explicit_subscriptions_asks_for_nothing_else(
        azure: AzureServer, tmp_path: Path) -> None:
    mine = [s for s in SUBSCRIPTIONS if shard_of(s, N) == 1]
    others = [s for s in SUBSCRIPTIONS if shard_of(s, N) != 1]
    args = [a for s in mine + others for a in ("--subscription", s)]
    assert _scan("--auth", "cli", *args, "--shard", f"1/{N}", "--out",
                 str(tmp_path / "one")) in (0, EXIT_FINDINGS)
    asked = {s.lower() for body in azure.graph_bodies() for s in body.get("subscriptions") or []}
    assert asked == {s.lower() for s in mine}
    scope = _document(tmp_path / "one")["scan"]["scope"]
    assert scope["subscriptions"] == mine + others and scope["shard"]["index"] == 1


def test_a_live_shard_that_owns_no_subscription_is_complete_and_empty(
        azure: AzureServer, tmp_path: Path) -> None:
    sub = SUBSCRIPTIONS[0]
    other = next(i for i in range(1, N + 1) if i != shard_of(sub, N))
    out = tmp_path / "empty"
    assert _scan("--auth", "cli", "--subscription", sub, "--shard", f"{other}/{N}", "--out",
                 str(out)) == 0
    assert azure.graph_bodies() == []
    scan = _document(out)["scan"]
    assert scan["complete"] is True and scan["counts"]["jobs"] == 0
