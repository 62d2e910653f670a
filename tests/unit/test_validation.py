from __future__ import annotations

import pytest

from helpdesk.services.validation import normalize_email, parse_tags, positive_int


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Dana@Example.COM ", "dana@example.com"),
        ("a.b+c@sub.example.org", "a.b+c@sub.example.org"),
        ("no-at-sign", None),
        ("two@@example.com", None),
        ("spaces in@example.com", None),
        ("x@localhost", None),
        ("x@-bad.com", None),
        ("<x>@example.com", None),
        ("a" * 250 + "@example.com", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_normalize_email(raw: object, expected: str | None) -> None:
    assert normalize_email(raw) == expected


def test_parse_tags() -> None:
    assert parse_tags("Billing, vip  vip") == ["billing", "vip"]
    assert parse_tags(["a", "b-c"]) == ["a", "b-c"]
    assert parse_tags("") == []
    assert parse_tags("<script>") is None
    assert parse_tags([1]) is None
    assert parse_tags([f"t{i}" for i in range(21)]) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12", 12),
        (7, 7),
        ("0", None),
        ("-3", None),
        ("abc", None),
        ("١٢", None),
        (True, None),
        ("9999999999", None),
        ("1e3", None),
    ],
)
def test_positive_int(raw: object, expected: int | None) -> None:
    assert positive_int(raw) == expected
