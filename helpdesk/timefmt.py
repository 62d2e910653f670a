"""Human times for templates: "5 min ago", with the absolute UTC time kept for hover."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from markupsafe import Markup

from helpdesk.db import utcnow

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def ago(when: datetime, now: datetime | None = None) -> str:
    """A short relative time ("just now", "5 min ago", "3 h ago", "2 d ago", or a date)."""
    current = now or utcnow()
    seconds = (current - when).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 7 * 86400:
        return f"{int(seconds // 86400)} d ago"
    day = f"{MONTHS[when.month - 1]} {when.day:02d}"  # strftime("%b %d"), without its cost
    return day if when.year == current.year else f"{day}, {when.year}"


def timetag(when: datetime, seconds: bool = False, now: datetime | None = None) -> Markup:
    """`<time>` with the relative time shown and the absolute UTC time on hover.

    One filter for what templates wrote as three expressions per row (isoformat, strftime,
    ago): list and thread pages render it 50 to 300 times, so it is built in one go.
    """
    w = when if when.tzinfo is UTC else when.astimezone(UTC)  # columns come back in UTC
    iso = w.isoformat()  # "2026-11-27T09:05:03[.123456]+00:00"
    absolute = f"{iso[:10]} {iso[11:19] if seconds else iso[11:16]}"
    # Every piece is made here from a datetime: digits, '-', ':', '+', 'T' and the fixed
    # words of ago(). Nothing can need escaping, so no escaping formatter (Markup.format
    # took 5.7 µs a tag, this 0.4; a list page has 50 tags, a long thread 300).
    tag = f'<time datetime="{iso}" title="{absolute} UTC">{ago(w, now)}</time>'
    return Markup(tag)  # noqa: S704 - no user text, see above


def init_app(app: Flask) -> None:
    app.add_template_filter(ago)
    app.add_template_filter(timetag)
