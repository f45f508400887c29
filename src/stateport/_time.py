"""Timestamps as stored: UTC, ISO 8601 with microseconds and a ``Z``.

The fixed width makes the text sort in time order, so stored timestamps can
serve as (parts of) sort keys.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .errors import ValidationError

__all__ = ["check_datetime", "from_text", "now", "to_text"]

_SECOND = "%04d-%02d-%02dT%02d:%02d:%02d"
# the last second formatted, by its number since 0001-01-01 (an exact int):
# timestamps come in bursts within one second, and formatting the date and
# time part is most of the cost
_last: tuple[int, str] = (-1, "")


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def check_datetime(value: Any, name: str) -> datetime:
    """``value`` if it is a timezone-aware datetime, as UTC; else ValidationError."""
    if not isinstance(value, datetime):
        raise ValidationError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{name} must carry a timezone (use datetime.now(UTC))")
    return value.astimezone(UTC)


def to_text(value: datetime) -> str:
    """The stored form of an aware datetime: ``2026-11-22T01:02:03.000004Z``."""
    global _last
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    second = value.second + 60 * (value.minute + 60 * (value.hour + 24 * value.toordinal()))
    last = _last  # one read: another thread may replace it meanwhile
    if last[0] != second:
        last = (
            second,
            _SECOND % (value.year, value.month, value.day, value.hour, value.minute, value.second),
        )
        _last = last
    return f"{last[1]}.{value.microsecond:06d}Z"


def from_text(text: str) -> datetime:
    """The datetime of a stored timestamp."""
    value = datetime.fromisoformat(text)  # stored with a Z: already UTC
    return value if value.tzinfo is UTC else value.astimezone(UTC)
