"""Stored timestamps: one text form per instant, whatever the order of the calls."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from stateport import _time

instants = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 30), timezones=st.just(UTC)
)
offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)


def _expected(value: datetime) -> str:
    u = value.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:"
        f"{u.second:02d}.{u.microsecond:06d}Z"
    )


@given(st.lists(st.tuples(instants, offsets), min_size=1, max_size=30))
def test_to_text_is_the_utc_instant_at_any_offset_and_in_any_order(
    values: list[tuple[datetime, timezone]],
) -> None:
    # the cache of the last second formatted must never lend one second's text
    # to another: seconds here jump back and forth (to the same second of another
    # minute, hour, day or year), and repeat
    for instant, offset in values:
        near = [instant + timedelta(**{unit: 1}) for unit in ("minutes", "hours", "days")]
        year_on = instant + timedelta(days=366)
        for value in (instant, instant.astimezone(offset), *near, year_on, instant):
            text = _time.to_text(value)
            assert text == _expected(value)
            assert _time.from_text(text) == value


def test_to_text_from_threads_agrees() -> None:
    base = datetime(2026, 11, 22, 3, 4, 5, tzinfo=UTC)
    wrong: list[tuple[datetime, str]] = []

    def work(k: int) -> None:
        for i in range(2000):
            value = base + timedelta(seconds=(i * 7 + k) % 5, microseconds=i)
            text = _time.to_text(value)
            if text != _expected(value):
                wrong.append((value, text))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
