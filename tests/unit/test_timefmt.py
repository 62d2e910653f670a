from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from helpdesk.timefmt import ago

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
