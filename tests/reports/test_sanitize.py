"""The shared neutralisation helpers: hidden characters shown, formula starts recognised."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from reports.sanitize import REPLACEMENT, is_formula_like, visible


@pytest.mark.parametrize("text", ['=HYPERLINK("http://evil")', "+1", "-2+3", "@SUM(A1)",
                                  "\t=1", "\r=1"])
def test_formula_starts_are_recognised(text: str) -> None:
    assert is_formula_like(text)


@pytest.mark.parametrize("text", ["job-a", "", " =1", "a=b", "#N/A", "1+1"])
def test_ordinary_text_is_not_formula_like(text: str) -> None:
    assert not is_formula_like(text)


def test_hidden_characters_become_visible_and_layout_stays() -> None:
    text = "a\x00b\x1bc\u202ed\x7fe\tf\ng\rh"
    assert visible(text) == f"a{REPLACEMENT}b{REPLACEMENT}c{REPLACEMENT}d{REPLACEMENT}e\tf\ng\rh"


def test_ordinary_unicode_is_kept() -> None:
    text = "J\u00f6rg\u2019s job \u2013 \u6771\u4eac \u2713 \U0001f680"
    assert visible(text) == text


@given(st.text())
def test_visible_text_is_always_accepted_by_openpyxl(text: str) -> None:
    # openpyxl refuses (raises on) exactly these characters in a cell.
    assert ILLEGAL_CHARACTERS_RE.search(visible(text)) is None
