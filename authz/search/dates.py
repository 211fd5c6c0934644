"""Phrases of time in words: periods ("next week", "in 30 days", "for two weeks") and dates ("31 March").

Pure: the caller passes ``today``. A month counts 30 days and a year 365, as admins mean them
roughly; a date without a year is its next occurrence from ``today`` on.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

UNIT_DAYS = {
    "day": 1,
    "days": 1,
    "week": 7,
    "weeks": 7,
    "fortnight": 14,
    "fortnights": 14,
    "month": 30,
    "months": 30,
    "year": 365,
    "years": 365,
}
NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fourteen": 14,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "sixty": 60,
    "ninety": 90,
    "couple": 2,
    "few": 3,
}
MONTHS = (
    {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
    | {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
    | {"sept": 9}
)
WEEKDAYS = {name.lower(): number for number, name in enumerate(calendar.day_name)}
# The longest period a question may ask about: ten years.
MAX_DAYS = 3650

_FUTURE = frozenset({"next", "coming", "following", "upcoming"})
_PAST = frozenset({"last", "past", "previous"})
_LEADS = frozenset({"in", "within", "over", "during", "inside", "for", "until", "till"})
_DAY = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\Z")
_YEAR = re.compile(r"(\d{4})\Z")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})\Z")


@dataclass(frozen=True)
class Period:
    """A stretch of ``days`` from today, forward or (``past``) back, read from ``length`` words."""

    days: int
    past: bool
    length: int


def days_number(text: str) -> int | None:
    """``text`` as a count of days when it is written in ASCII digits, from 1 to ``MAX_DAYS``.

    ASCII only: ``str.isdigit`` also says yes to "²" and "①", which ``int`` cannot read.
    """
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 0 < number <= MAX_DAYS else None


def _number(word: str) -> int | None:
    if word.isascii() and word.isdigit():
        return days_number(word)
    return NUMBER_WORDS.get(word)


def period_at(words: list[str], i: int, today: date | None = None) -> Period | None:
    """The period phrase starting at ``words[i]``, or None.

    "next week", "this month", "in the next 30 days", "within two weeks", "for a fortnight",
    "last 7 days", "tomorrow", and with ``today`` also "before 31 March" or "by 2027-01-15".
    """
    j = i
    if j < len(words) and words[j] in _LEADS:
        j += 1
        if j < len(words) and words[j] == "the":
            j += 1
    past = False
    if j < len(words) and words[j] in _FUTURE | _PAST | {"this"}:
        past = words[j] in _PAST
        j += 1
    count = _number(words[j]) if j < len(words) else None
    if count is not None and words[j] in ("a", "an") and j + 1 < len(words) and words[j + 1] == "couple":
        count, j = 2, j + 1
    if count is not None and j + 1 < len(words) and words[j + 1] == "of":  # "a couple of weeks"
        j += 1
    k = j + 1 if count is not None else j
    if k < len(words) and words[k] in UNIT_DAYS and (count is not None or j > i):
        days = (count or 1) * UNIT_DAYS[words[k]]
        return Period(days, past, k + 1 - i) if days <= MAX_DAYS else None
    word = words[i] if i < len(words) else ""
    if word in ("today", "tonight", "tomorrow"):
        return Period(1, False, 1)
    if word == "yesterday":
        return Period(1, True, 1)
    if today is not None and word in ("before", "by", "until", "till"):
        found = date_at(words, i + 1, today)
        if found is not None and found[0] > today:
            return Period(min((found[0] - today).days, MAX_DAYS), False, 1 + found[1])
    return None


def date_at(words: list[str], i: int, today: date) -> tuple[date, int] | None:
    """The date written at ``words[i]`` and the number of words it took, or None.

    2027-01-15, 31 March, 31st of March 2027, March 31, Friday (the next one after today).
    """
    if i >= len(words):
        return None
    word = words[i]
    iso = _ISO.match(word)
    if iso:
        return _date(int(iso[1]), int(iso[2]), int(iso[3]), 1)
    if word in WEEKDAYS:
        ahead = (WEEKDAYS[word] - today.weekday() - 1) % 7 + 1
        return today + timedelta(days=ahead), 1
    if word == "next" and i + 1 < len(words) and words[i + 1] in WEEKDAYS:
        found = date_at(words, i + 1, today)
        return (found[0], 2) if found else None
    day = _DAY.match(word)
    if day:
        j = i + 1
        if j < len(words) and words[j] == "of":
            j += 1
        if j < len(words) and words[j] in MONTHS:
            return _with_year(int(day[1]), MONTHS[words[j]], words, j + 1, i, today)
        return None
    if word in MONTHS and i + 1 < len(words):
        day = _DAY.match(words[i + 1])
        if day:
            return _with_year(int(day[1]), MONTHS[word], words, i + 2, i, today)
    return None


def _with_year(
    day: int, month: int, words: list[str], j: int, i: int, today: date
) -> tuple[date, int] | None:
    year = _YEAR.match(words[j]) if j < len(words) else None
    if year:
        return _date(int(year[1]), month, day, j + 1 - i)
    found = _date(today.year, month, day, j - i)
    if found is not None and found[0] < today:
        found = _date(today.year + 1, month, day, j - i)
    return found


def _date(year: int, month: int, day: int, length: int) -> tuple[date, int] | None:
    try:
        return date(year, month, day), length
    except ValueError:
        return None
