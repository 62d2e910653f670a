"""Small input checks shared by forms, the API and commands."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

EMAIL_MAX = 254
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_EMAIL_RE = re.compile(rf"^[^@\s<>\"'(),;:\\\x00-\x1f\x7f]+@{_LABEL}(?:\.{_LABEL})+$")
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,39}$")
MAX_TAGS = 20


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def one_line(value: object) -> str:
    """A single line of text: control and bidi-override characters dropped, spaces collapsed.

    PostgreSQL refuses NUL in text, and bidi overrides let a subject or name display as
    something else; neither belongs in a one-line field.
    """
    if not isinstance(value, str):
        return ""
    return " ".join(_CONTROL.sub(" ", value).split())


def normalize_email(value: object) -> str | None:
    """Return the lower-cased address, or None when it is not a plausible email."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if not email or len(email) > EMAIL_MAX or not _EMAIL_RE.match(email):
        return None
    return email


def choice(value: object, allowed: type[StrEnum]) -> str | None:
    """Return value if it is one of the enum's values, else None."""
    if isinstance(value, str) and value in {v.value for v in allowed}:
        return value
    return None


def choices_text(allowed: type[StrEnum]) -> str:
    return ", ".join(v.value for v in allowed)


def parse_tags(value: object) -> list[str] | None:
    """Accept a list or a comma/space separated string; None when any tag is malformed."""
    items: Iterable[object]
    if isinstance(value, str):
        items = [t for t in re.split(r"[,\s]+", value) if t]
    elif isinstance(value, list):
        items = value
    else:
        return None
    tags: list[str] = []
    for item in items:
        if not isinstance(item, str):
            return None
        tag = item.strip().lower()
        if not TAG_RE.match(tag):
            return None
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        return None
    return tags


def positive_int(value: object) -> int | None:
    """Parse a positive integer from a string or int; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
        number = int(value)
        return number if number > 0 else None
    return None
