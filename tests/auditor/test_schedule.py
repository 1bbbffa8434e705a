from __future__ import annotations

from datetime import date

import pytest

from auditor.schedule import CronError, parse, shortest_gap_seconds


@pytest.mark.parametrize(("expression", "gap"), [
    ("*/5 * * * *", 300),
    ("0,10 3 * * *", 600),
    ("0 * * * *", 3600),
    ("0 2 * * *", 86400),
    ("30 23 * * 5", 7 * 86400),
    ("0 9-17 * * MON-FRI", 3600),
    ("*/15 9-17 * * 1-5", 900),
    ("0 22,2 * * *", 4 * 3600),  # 22:00 to 02:00 the next day is the tight gap
    ("55 23 * * 1,2", 86400),
    ("0 0 1 * *", 28 * 86400),  # February
    ("0 0 31 * *", 31 * 86400),  # 31 Jul to 31 Aug; months without a 31st are skipped
    ("0 0 29 2 *", 1461 * 86400),  # leap days only
    ("0 0 1,15 * 1", 86400),  # day-of-month OR weekday, as cron defines it
    ("5/20 * * * *", 1200),
    ("0 0 * * 7", 7 * 86400),  # 7 is Sunday too
])
def test_shortest_gap(expression: str, gap: int) -> None:
    assert shortest_gap_seconds(expression) == gap


def test_day_of_month_or_weekday_rule() -> None:
    cron = parse("0 0 13 * 5")
    assert cron.fires_on(date(2026, 11, 13))  # a Friday the 13th
    assert cron.fires_on(date(2026, 11, 20))  # any Friday
    assert cron.fires_on(date(2026, 10, 13))  # any 13th
    assert not cron.fires_on(date(2026, 11, 19))
    both = parse("0 0 * * 5")
    assert not both.fires_on(date(2026, 11, 13 + 1))


def test_never_firing_schedule() -> None:
    assert shortest_gap_seconds("0 0 31 2 *") is None


@pytest.mark.parametrize(("expression", "message"), [
    ("* * * *", "expected 5 fields"),
    ("* * * * * *", "expected 5 fields"),
    ("60 * * * *", "minute"),
    ("* 24 * * *", "hour"),
    ("* * 0 * *", "day of month"),
    ("* * * 13 *", "month"),
    ("* * * * 8", "day of week"),
    ("*/0 * * * *", "step"),
    ("5-1 * * * *", "outside"),
    ("a * * * *", "not a number"),
    ("* * * FOO *", "not a number"),
])
def test_invalid_expressions_say_why(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        parse(expression)
