from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditor.check import failed, passed
from auditor.errors import InputError
from auditor.results import Result
from auditor.waivers import WaiverState, apply_waivers, load_waivers
from checks.identity import managed_identity
from checks.secrets import key_vault_secrets
from tests.factories import make_job

KNOWN = ["CAJ-001", "CAJ-003"]
AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
ENTRY = '''
[[waiver]]
check = "{check}"
resource = "{resource}"
justification = "Legacy job, replaced in Q1"
approver = "ciso@contoso.com"
ticket = "CHG-1"
expires = {expires}
'''


def write(tmp_path: Path, *entries: dict[str, str]) -> Path:
    path = tmp_path / "waivers.toml"
    path.write_text("# accepted risks\n" + "".join(ENTRY.format(**e) for e in entries))
    return path


def entry(check: str = "CAJ-001", resource: str = "*/jobs/legacy-*",
          expires: str = "2027-01-31") -> dict[str, str]:
    return {"check": check, "resource": resource, "expires": expires}


def results() -> list[Result]:
    legacy, modern = make_job(name="legacy-export"), make_job(name="modern-export")
    return [Result(managed_identity, legacy, failed("no identity")),
            Result(key_vault_secrets, legacy, failed("stored secret")),
            Result(managed_identity, modern, passed("ok"))]


def test_live_waiver_marks_matching_findings_only(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, entry()), KNOWN)
    applied, (review,) = apply_waivers(results(), waivers, AS_OF)
    assert [r.waived for r in applied] == [True, False, False]
    assert applied[0].outcome.status.value == "fail", "a waived result keeps its status"
    assert review.state is WaiverState.APPLIED and review.matched == 1
    assert review.waiver.source == f"{tmp_path / 'waivers.toml'}:3"


def test_expired_waiver_stops_applying(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, entry(expires="2026-11-19")), KNOWN)
    applied, (review,) = apply_waivers(results(), waivers, AS_OF)
    assert not applied[0].waived and applied[0].expired_waiver is not None
    assert review.state is WaiverState.EXPIRED


def test_waiver_on_its_expiry_day_still_applies(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, entry(expires="2026-11-20")), KNOWN)
    applied, _ = apply_waivers(results(), waivers, AS_OF)
    assert applied[0].waived


def test_waiver_that_matches_nothing_open_is_stale(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, entry(resource="*/jobs/modern-*")), KNOWN)
    applied, (review,) = apply_waivers(results(), waivers, AS_OF)
    assert not any(r.waived for r in applied)
    assert review.state is WaiverState.STALE and review.matched == 0


def test_resource_match_is_case_insensitive_like_azure_ids(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, entry(resource="*/RESOURCEGROUPS/RG-BATCH/*")),
                           KNOWN)
    applied, _ = apply_waivers(results(), waivers, AS_OF)
    assert applied[0].waived


@pytest.mark.parametrize(("text", "message", "line"), [
    pytest.param(ENTRY.format(**entry(check="CAJ-999")), "unknown check 'CAJ-999'", 2,
                 id="unknown-check"),
    pytest.param(ENTRY.format(**entry(expires='"next year"')), "is not a date", 2,
                 id="bad-date"),
    pytest.param(ENTRY.format(**entry(expires='"2027-02-30"')), "is not a date", 2,
                 id="impossible-date"),
    pytest.param(ENTRY.format(**entry()).replace('ticket = "CHG-1"\n', ""),
                 "'ticket' is missing", 2, id="missing-ticket"),
    pytest.param(ENTRY.format(**entry()) + 'owner = "x"\n', "unknown key 'owner'", 2,
                 id="unknown-key"),
    pytest.param("\n\n" + ENTRY.format(**entry()) + ENTRY.format(**entry(check="nope")),
                 "unknown check 'nope'", 12, id="second-waiver-line"),
])
def test_bad_waivers_name_file_and_line(tmp_path: Path, text: str, message: str,
                                        line: int) -> None:
    path = tmp_path / "w.toml"
    path.write_text(text)
    with pytest.raises(InputError) as raised:
        load_waivers(path, KNOWN)
    assert str(raised.value).startswith(f"{path}:{line}: ") and message in str(raised.value)


def test_unparseable_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text("[[waiver]\n")
    with pytest.raises(InputError, match="invalid TOML"):
        load_waivers(path, KNOWN)
    with pytest.raises(InputError, match="does not exist"):
        load_waivers(tmp_path / "none.toml", KNOWN)


def test_shipped_example_file_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "waivers.toml"
    assert load_waivers(example, KNOWN) == ()
