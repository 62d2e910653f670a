"""Human times for templates: "5 min ago", with the absolute UTC time kept for hover."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from helpdesk.db import utcnow


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
    return when.strftime("%b %d") if when.year == current.year else when.strftime("%b %d, %Y")


def init_app(app: Flask) -> None:
    app.add_template_filter(ago)
