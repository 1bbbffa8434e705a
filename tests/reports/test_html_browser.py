"""report.html in a real browser: Debian's headless Chromium, driven over the DevTools Protocol.

The page is the report of the sample estate plus one job whose name, id and tags are hostile
markup. The tests type and click as a person would and read back what the page shows.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import main
from tests.reports.chromium import Page, browser

pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="Debian's chromium is not installed (CI installs it: apt-get install chromium)")

AS_OF = "2026-11-20T00:00:00Z"
PWN = "window.__pwned = (window.__pwned || 0) + 1"
HOSTILE_NAME = f'<img src=x onerror="{PWN}">'
HOSTILE_OWNER = f"</script><script>{PWN}</script>"
HOSTILE_ID_TAIL = f"<svg onload={PWN}>"
# Runs before the page's own script, outside its CSP: records policy violations.
RECORD_VIOLATIONS = ("window.__violations = []; document.addEventListener("
                     "'securitypolicyviolation', (e) => window.__violations.push("
                     "e.violatedDirective + ' ' + e.blockedURI));")

VISIBLE_ROWS = ("[...document.querySelectorAll('#findings-body tr')]"
                ".filter((tr) => tr.getClientRects().length > 0)")


def _hostile_job(sample: Path) -> dict[str, Any]:
    """The sample's `az containerapp job show` export, renamed and tagged with markup."""
    job: dict[str, Any] = json.loads(
        (sample / "job-acr-image-purge.show.json").read_text(encoding="utf-8"))
    job["id"] = job["id"].rsplit("/", 1)[0] + "/" + HOSTILE_ID_TAIL
    job["name"] = HOSTILE_NAME
    job["identity"] = None
    job["tags"] = {"owner": HOSTILE_OWNER}
    return job


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reports of the sample estate plus the hostile job, as the CLI writes them."""
    root = tmp_path_factory.mktemp("html-browser")
    exports = root / "exports"
    exports.mkdir()
    with as_file(files("auditor.sample_estate")) as sample_dir:
        sample = Path(sample_dir)
        for path in sample.glob("*.json"):
            shutil.copy(path, exports / path.name)
        (exports / "hostile.show.json").write_text(json.dumps(_hostile_job(sample)),
                                                   encoding="utf-8")
        folder = root / "reports"
        code = main(["scan", "--snapshot", str(exports), "--waivers",
                     str(sample / "waivers.toml"), "--out", str(folder), "--as-of", AS_OF])
    assert code == 1
    return folder


@pytest.fixture(scope="module")
def findings(out: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(
        (out / "findings.json").read_text(encoding="utf-8"))["findings"]
    return found


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with browser(tmp_path_factory.mktemp("chromium") / "profile") as devtools:
        yield devtools


@pytest.fixture
def page(chromium: Any, out: Path) -> Iterator[Page]:
    opened = Page(chromium)
    try:
        opened.open((out / "report.html").as_uri(), before_load=RECORD_VIOLATIONS)
        yield opened
    finally:
        opened.close()


def counter(page: Page) -> str:
    text: str = page.evaluate("document.getElementById('findings-counter').textContent")
    return text


def shown(page: Page) -> list[dict[str, str]]:
    """The rows a person sees, as {grid header: cell text}."""
    rows: list[dict[str, str]] = page.evaluate(
        "(() => { const heads = [...document.querySelectorAll('#findings thead th')]"
        ".map((th) => th.textContent.trim());"
        f" return {VISIBLE_ROWS}.map((tr) => Object.fromEntries("
        "[...tr.cells].map((td, i) => [heads[i], td.innerText.trim()]))); })()")
    return rows


def choose(page: Page, select: str, label_start: str) -> None:
    """Pick the option whose label starts with `label_start`, as a change from the user."""
    assert page.evaluate(
        f"(() => {{ const s = document.getElementById({json.dumps(select)});"
        f" const o = [...s.options].find((o) => o.text.startsWith({json.dumps(label_start)}));"
        " if (!o) return false; s.value = o.value;"
        " s.dispatchEvent(new Event('input', {bubbles: true}));"
        " s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()")


def test_page_shows_every_finding_and_fetches_nothing(page: Page, findings: list[Any],
                                                      tmp_path: Path) -> None:
    screenshot = page.screenshot(tmp_path / "report.png")
    print(f"screenshot: {screenshot}")
    total = len(findings)
    assert counter(page) == f"{total} of {total} findings shown"
    assert len(shown(page)) == total
    assert page.evaluate("document.querySelectorAll('#charts svg').length") == 2
    assert page.evaluate("document.getElementById('completeness').textContent").startswith(
        "Complete scan")
    assert [u for u in page.requested_urls() if not u.startswith("file:")] == []
    assert page.evaluate("window.__violations") == []  # the style and script hashes match
    assert page.console_errors() == []


def test_severity_filter_shows_only_that_severity(page: Page, findings: list[Any]) -> None:
    critical = [f for f in findings if f["severity"] == "critical"]
    assert 0 < len(critical) < len(findings)
    choose(page, "filter-severity", "critical")
    rows = shown(page)
    assert {r["Severity"] for r in rows} == {"critical"}
    assert len(rows) == len(critical)
    assert counter(page) == f"{len(critical)} of {len(findings)} findings shown"
    page.click("#filter-reset")
    assert counter(page) == f"{len(findings)} of {len(findings)} findings shown"


def test_search_box_narrows_to_one_job(page: Page, findings: list[Any]) -> None:
    job = "customer-churn-scoring"
    expected = [f for f in findings if f["resource_name"] == job]
    assert expected
    page.type_into("#filter-text", job)
    rows = shown(page)
    assert {r["Resource name"] for r in rows} == {job}
    assert len(rows) == len(expected)
    assert counter(page) == f"{len(expected)} of {len(findings)} findings shown"


def test_filters_combine(page: Page, findings: list[Any]) -> None:
    expected = [f for f in findings if f["severity"] == "high" and f["status"] == "unknown"]
    assert expected
    choose(page, "filter-severity", "high")
    choose(page, "filter-status", "unknown")
    rows = shown(page)
    assert {(r["Severity"], r["Status"]) for r in rows} == {("high", "unknown")}
    assert len(rows) == len(expected)


def test_clicking_a_header_sorts_by_that_column(page: Page) -> None:
    before = [r["Check"] for r in shown(page)]
    page.click("#findings thead button[data-column='1']")  # Check
    ascending = [r["Check"] for r in shown(page)]
    assert ascending == sorted(before) != before
    assert page.evaluate("document.querySelector('#findings thead th:nth-child(2)')"
                         ".getAttribute('aria-sort')") == "ascending"
    page.click("#findings thead button[data-column='1']")
    assert [r["Check"] for r in shown(page)] == sorted(before, reverse=True)


def test_hostile_values_are_text_and_nothing_runs(page: Page, findings: list[Any]) -> None:
    hostile = [f for f in findings if f["resource_name"] == HOSTILE_NAME]
    assert hostile and all(f["owner"] == HOSTILE_OWNER for f in hostile)
    page.type_into("#filter-text", "<img src=x")
    rows = shown(page)
    assert len(rows) == len(hostile)
    assert {(r["Resource name"], r["Owner"]) for r in rows} == {(HOSTILE_NAME, HOSTILE_OWNER)}
    # The markup stayed text: no element came from it and none of its script ran.
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('img, #findings svg, iframe').length") == 0
    assert page.evaluate("document.scripts.length") == 2  # the data block and the page script
    owners = page.evaluate("[...document.getElementById('filter-owner').options]"
                           ".map((o) => o.text)")
    assert f"{HOSTILE_OWNER} ({len(hostile)})" in owners
    # Details hold the id and evidence as text, and the portal link escapes the id.
    page.evaluate(f"{VISIBLE_ROWS}.forEach((tr) => tr.querySelector('details').open = true)")
    details = page.evaluate(f"{VISIBLE_ROWS}[0].querySelector('dl').innerText")
    assert HOSTILE_ID_TAIL in details
    link = page.evaluate(f"{VISIBLE_ROWS}[0].querySelector('a').href")
    assert link.startswith("https://portal.azure.com/") and "<" not in link
    assert page.evaluate("window.__violations") == []
    assert [u for u in page.requested_urls() if not u.startswith("file:")] == []
    # Trusted Types: the page refuses HTML strings, so no later code can inject markup either.
    refused = page.evaluate("(() => { try { document.body.innerHTML = '<b>x</b>'; return ''; }"
                            " catch (e) { return e.name; } })()")
    assert refused == "TypeError"
