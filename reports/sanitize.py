"""Neutralising text from Azure before a report shows it.

Names, tags and messages come from whoever can write to the subscription. Two helpers are shared
by every writer: `visible` makes hidden characters visible (and keeps the workbook's XML valid),
and `is_formula_like` tells a writer that a spreadsheet would otherwise run the text as a formula.
"""

from __future__ import annotations

import re

# Characters a spreadsheet takes as the start of a formula (OWASP "CSV injection"), including
# the tab and carriage return that some importers strip before looking.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

REPLACEMENT = "\N{REPLACEMENT CHARACTER}"

# C0 controls other than tab, newline and carriage return (XML 1.0 forbids them, so openpyxl
# refuses them), DEL and C1 controls, and the bidirectional overrides and isolates that can make
# text read differently from what it is ("Trojan Source").
_HIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """`text` with hidden control characters shown as U+FFFD, so nothing is silently dropped."""
    if text.isprintable():  # none of _HIDDEN is printable: the common case needs no search
        return text
    return _HIDDEN.sub(REPLACEMENT, text)


def is_formula_like(text: str) -> bool:
    """Whether a spreadsheet would treat `text` as a formula if it were typed or imported."""
    return text.startswith(FORMULA_TRIGGERS)
