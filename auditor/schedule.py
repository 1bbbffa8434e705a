"""Five-field cron expressions as Container Apps evaluates them (UTC), and their shortest gap.

The shortest gap between two consecutive firings decides whether runs can overlap. Every firing
day has the same set of times of day (minute and hour fields do not depend on the day), so the
gap is the smaller of the tightest step inside a day and the step from a day's last firing to the
next firing day's first; only the spacing of firing days needs a walk over the calendar, which
repeats every 400 years and in practice shows its tightest step within a few years.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# Name, lowest, highest, names allowed.
_NO_NAMES: dict[str, int] = {}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, _NO_NAMES), ("hour", 0, 23, _NO_NAMES),
    ("day of month", 1, 31, _NO_NAMES), ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))
_WALK_DAYS = 366 * 8  # two leap cycles: enough to meet Feb 29 and every weekday/date pairing


class CronError(ValueError):
    """The expression is not a valid five-field cron expression; the text says why."""


@dataclass(frozen=True, slots=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def fires_on(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_date = day.day in self.days
        by_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return by_date or by_weekday  # classic cron: either field may match
        return by_date and by_weekday


def parse(expression: str) -> Cron:
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(f"expected 5 fields (minute hour day month weekday), got {len(parts)}")
    values = [_parse_field(text, *spec) for text, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in values[4])
    return Cron(frozenset(values[0]), frozenset(values[1]), frozenset(values[2]),
                frozenset(values[3]), weekdays,
                days_restricted=parts[2] not in ("*", "?"),
                weekdays_restricted=parts[4] not in ("*", "?"))


def _parse_field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    found: set[int] = set()
    for item in text.lower().split(","):
        span, _, step_text = item.partition("/")
        step = _number(step_text, name, names={}) if step_text else 1
        if step < 1:
            raise CronError(f"{name}: step must be at least 1 in '{item}'")
        if span in ("*", "?"):
            start, end = low, high
        elif "-" in span:
            first, _, last = span.partition("-")
            start, end = _number(first, name, names), _number(last, name, names)
        else:
            start = _number(span, name, names)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise CronError(f"{name}: '{item}' is outside {low}-{high}")
        found.update(range(start, end + 1, step))
    return found


def _number(text: str, name: str, names: dict[str, int]) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise CronError(f"{name}: '{text}' is not a number")
    return int(text)


@lru_cache(maxsize=4096)
def shortest_gap_seconds(expression: str) -> int | None:
    """Seconds between the two closest consecutive firings; None if it never fires."""
    cron = parse(expression)
    times = sorted(h * 60 + m for h in cron.hours for m in cron.minutes)
    fires, day_step = _firing_days(replace(cron, minutes=frozenset(), hours=frozenset()))
    if not fires:
        return None
    within_day = min((b - a for a, b in itertools.pairwise(times)), default=None)
    across_days = (day_step * 1440 - times[-1] + times[0]) if day_step is not None else None
    gaps = [g for g in (within_day, across_days) if g is not None]
    return min(gaps) * 60 if gaps else None


@lru_cache(maxsize=1024)
def _firing_days(days: Cron) -> tuple[bool, int | None]:
    """Whether a cron fires on any day, and the fewest days between two firing days.

    Keyed by the day fields only (minutes and hours emptied): the walk over the calendar is the
    slow part, and an estate's many expressions ("17 3 * * *", "40 22 * * *") share a few day
    patterns.
    """
    start = date(2024, 1, 1)
    firing = [d for d in (start + timedelta(days=i) for i in range(_WALK_DAYS))
              if days.fires_on(d)]
    steps = [(b - a).days for a, b in itertools.pairwise(firing)]
    return bool(firing), min(steps) if steps else None


def firings(expression: str, after: datetime, until: datetime, limit: int) -> list[datetime]:
    """Up to `limit` firing times in (after, until], in order (times in UTC)."""
    cron = parse(expression)
    times = sorted(h * 60 + m for h in cron.hours for m in cron.minutes)
    found: list[datetime] = []
    day = after.astimezone(UTC).date()
    while day <= until.date() and len(found) < limit:
        if cron.fires_on(day):
            midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
            found += [moment for t in times
                      if after < (moment := midnight + timedelta(minutes=t)) <= until]
        day += timedelta(days=1)
    return found[:limit]
