"""Times as people at a school in Japan read them: the one home for Japan time.

The database keeps naive UTC; pages, sheets and the student's history show Japan time.
Japan has kept no daylight saving time since 1951, so a fixed +09:00 is exact and needs no
time-zone database (a slim container image may not carry one).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

JAPAN = timezone(timedelta(hours=9), "JST")


def in_japan(moment: datetime) -> datetime:
    """A stored moment (naive UTC, or aware) in Japan time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(JAPAN)


def japan_date(moment: datetime | None) -> str | None:
    """The day it was in Japan, YYYY-MM-DD (what the school's calendar says)."""
    return None if moment is None else in_japan(moment).strftime("%Y-%m-%d")


def japan_minute(moment: datetime | None) -> str:
    """YYYY-MM-DD HH:MM in Japan, or "" for no moment."""
    return "" if moment is None else in_japan(moment).strftime("%Y-%m-%d %H:%M")


WEEKDAYS_JA = "月火水木金土日"
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
             "Dec")


def japan_day_and_time(moment: datetime | None, lang: str = "ja") -> str:
    """The way a child reads a moment: 「12月1日（月） 8:43」 (full-width brackets, the hour
    without a leading zero), or "Mon 1 Dec 8:43" on the English pages; "" for no moment."""
    if moment is None:
        return ""
    local = in_japan(moment)
    clock = f"{local.hour}:{local.minute:02d}"
    if lang == "ja":
        return f"{local.month}月{local.day}日（{WEEKDAYS_JA[local.weekday()]}） {clock}"
    return f"{WEEKDAYS_EN[local.weekday()]} {local.day} {MONTHS_EN[local.month - 1]} {clock}"


def japan_today(now: datetime | None = None) -> date:
    return in_japan(now or datetime.now(UTC)).date()


def japan_iso_of_epoch(epoch: float) -> str:
    """ISO 8601 in Japan time, to the second, of a Unix time."""
    return datetime.fromtimestamp(epoch, JAPAN).isoformat(timespec="seconds")


def japan_day_bounds(day: date) -> tuple[datetime, datetime]:
    """The Japan day ``day`` as a half-open range of stored (naive UTC) moments, to filter
    the database by the day the school lived (00:00–24:00 in Japan is 15:00–15:00 UTC)."""
    start = datetime.combine(day, datetime.min.time(), JAPAN).astimezone(UTC)
    start = start.replace(tzinfo=None)
    return start, start + timedelta(days=1)


def japan_hour_of_utc_hour(utc_hour: int) -> int:
    """The hour on a Japan clock when a UTC clock shows ``utc_hour`` (0–23)."""
    return (utc_hour + 9) % 24


def japan_second(moment: datetime | None) -> str:
    """YYYY-MM-DD HH:MM:SS in Japan, or "" for no moment (the audit log's column)."""
    return "" if moment is None else in_japan(moment).strftime("%Y-%m-%d %H:%M:%S")
