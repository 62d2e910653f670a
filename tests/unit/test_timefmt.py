from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from helpdesk.timefmt import ago, timetag

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=5), "just now"),
        (timedelta(minutes=5), "5 min ago"),
        (timedelta(hours=3, minutes=59), "3 h ago"),
        (timedelta(days=2), "2 d ago"),
        (timedelta(days=20), "Nov 07"),
        (timedelta(days=400), "Oct 23, 2025"),
    ],
)
def test_ago(delta: timedelta, text: str) -> None:
    assert ago(NOW - delta, now=NOW) == text


def test_timetag_shows_relative_time_with_absolute_utc_on_hover() -> None:
    when = datetime(2026, 11, 27, 9, 5, 7, tzinfo=UTC)
    assert timetag(when, now=NOW) == (
        '<time datetime="2026-11-27T09:05:07+00:00" title="2026-11-27 09:05 UTC">2 h ago</time>'
    )
    assert 'title="2026-11-27 09:05:07 UTC"' in timetag(when, seconds=True, now=NOW)


def test_timetag_converts_other_zones_to_utc() -> None:
    berlin = timezone(timedelta(hours=1))
    tag = timetag(datetime(2026, 11, 27, 10, 0, tzinfo=berlin), now=NOW)
    assert 'datetime="2026-11-27T09:00:00+00:00"' in tag and "09:00 UTC" in tag


def test_timetag_with_microseconds_and_an_early_year() -> None:
    when = datetime(987, 3, 4, 5, 6, 7, 890, tzinfo=UTC)
    tag = timetag(when, seconds=True, now=NOW)
    assert 'datetime="0987-03-04T05:06:07.000890+00:00"' in tag
    assert 'title="0987-03-04 05:06:07 UTC">Mar 04, 987<' in tag
