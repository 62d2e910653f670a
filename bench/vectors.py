"""Search vectors for generated tickets, built in Python exactly as the app builds them.

Why not let PostgreSQL compute them: `to_tsvector` over a million tickets' subjects and
five million messages costs minutes of one core, which alone would break the 10-minute
load budget. The app keeps a ticket's vector as a concatenation (services/search.py):
`setweight(to_tsvector(subject), 'A') || setweight(to_tsvector(left(body, 10000)), 'B')
|| …` in message order. Concatenation is simple arithmetic on positions, so the generator
asks PostgreSQL once for the parsed form of every distinct message body and every
vocabulary word, then concatenates here and writes the tsvector's text form with COPY.
`tsvector || tsvector` shifts the right side's positions by the largest position on the
left, clamps positions at 16,383 and keeps at most 256 positions per lexeme; this module
does the same (PostgreSQL's tsvector_concat and add_pos). The tests compare the result
with PostgreSQL's own concatenation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import psycopg

MAX_POS = 16383  # MAXENTRYPOS - 1
MAX_NUM_POS = 256  # positions kept per lexeme by a concatenation
BODY_CHARS = 10_000  # services/search.py indexes this much of each message


@dataclass(frozen=True)
class Parsed:
    """A parsed text: (lexeme, positions) pairs, and what concatenation needs to shift them."""

    lexemes: tuple[tuple[str, tuple[int, ...]], ...]
    max_pos: int  # the largest position
    max_count: int  # the most positions any one lexeme has
    # "'lexeme':{},{} 'other':{}" and a getter picking each position's string from a
    # window of the position table: formatting a shifted body is then all C code.
    template: str = ""
    getter: Callable[[Sequence[str]], Any] | None = field(default=None, compare=False)


def parse_bodies(conn: psycopg.Connection, bodies: Sequence[str]) -> list[Parsed]:
    """Ask PostgreSQL for the parsed form of each message body (one round trip)."""
    rows = conn.execute(
        "SELECT b.i, v.lexeme, v.positions FROM unnest(%s::text[]) WITH ORDINALITY AS b(body, i),"
        " unnest(to_tsvector('english'::regconfig, left(b.body, %s))) AS v",
        (list(bodies), BODY_CHARS),
    )
    found: dict[int, list[tuple[str, tuple[int, ...]]]] = {}
    for index, lexeme, positions in rows:
        found.setdefault(int(index) - 1, []).append((lexeme, tuple(positions)))
    return [_parsed(found.get(i, [])) for i in range(len(bodies))]


def _parsed(lexemes: list[tuple[str, tuple[int, ...]]]) -> Parsed:
    top = max((p[-1] for _lexeme, p in lexemes if p), default=0)
    count = max((len(p) for _l, p in lexemes), default=0)
    flat = [p for _lexeme, positions in lexemes for p in positions]
    template = " ".join(
        f"'{_quote(lexeme).replace('{', '{{').replace('}', '}}')}':" + ",".join(["{}"] * len(p))
        for lexeme, p in lexemes
    )
    getter = None
    if flat:
        pick = itemgetter(*flat)
        getter = pick if len(flat) > 1 else lambda window: (pick(window),)
    return Parsed(tuple(lexemes), top, count, template, getter)


def _quote(lexeme: str) -> str:
    return lexeme.replace("\\", "\\\\").replace("'", "''")


def word_lexemes(conn: psycopg.Connection, words: Iterable[str]) -> dict[str, str | None]:
    """Each word's lexeme in the 'english' configuration (None for a stop word)."""
    unique = sorted(set(words))
    rows = conn.execute(
        "SELECT w, (SELECT lexeme FROM unnest(to_tsvector('english'::regconfig, w)) LIMIT 1)"
        " FROM unnest(%s::text[]) AS w",
        (unique,),
    )
    lexemes = {word: lexeme for word, lexeme in rows}
    multi = conn.execute(
        "SELECT w FROM unnest(%s::text[]) AS w"
        " WHERE length(to_tsvector('english'::regconfig, w)) > 1",
        (unique,),
    ).fetchall()
    if multi:  # e.g. a hyphenated word: the subject arithmetic below would be wrong
        raise ValueError(f"words that parse into several lexemes: {[r[0] for r in multi]}")
    return lexemes


def parse_words(words: Sequence[str], lexemes: dict[str, str | None]) -> Parsed:
    """The parsed form of plain words separated by spaces: position = word index."""
    found: dict[str, list[int]] = {}
    for position, word in enumerate(words, 1):
        lexeme = lexemes[word]
        if lexeme is not None:
            found.setdefault(lexeme, []).append(position)
    return _parsed([(k, tuple(v)) for k, v in found.items()])


# "1A", "2A", … and "1B", …: position strings looked up, not formatted, in the hot loop.
_POS = {w: [f"{p}{w}" for p in range(MAX_POS + 1)] for w in "AB"}


def concat_text(subject: Parsed, bodies: Sequence[Parsed]) -> str:
    """The text form of setweight(subject, 'A') || setweight(body, 'B') || … in order.

    Lexemes repeated across parts are written once per part: PostgreSQL's tsvector input
    merges them and sorts their positions, which gives the concatenation's exact value.
    """
    parts = [subject, *bodies]
    if sum(p.max_pos for p in parts) >= MAX_POS or sum(p.max_count for p in parts) > 255:
        return _concat_limited([(subject, _POS["A"]), *((b, _POS["B"]) for b in bodies)])
    names = _POS["B"]
    pieces = [_shifted(subject, _POS["A"], 0)] if subject.getter else []
    offset = subject.max_pos
    for body in bodies:
        if body.getter is not None:
            pieces.append(_shifted(body, names, offset))
            offset += body.max_pos  # every earlier position is at most the new offset
    return " ".join(pieces)


def _shifted(part: Parsed, names: list[str], offset: int) -> str:
    assert part.getter is not None
    return part.template.format(*part.getter(names[offset : offset + part.max_pos + 1]))


def _concat_limited(parts: list[tuple[Parsed, list[str]]]) -> str:
    """The same, when positions reach 16,383 or a lexeme could exceed 256 positions."""
    merged: dict[str, list[str]] = {}
    last: dict[str, int] = {}
    offset = top = 0
    for part, names in parts:
        for lexeme, positions in part.lexemes:
            out = merged.get(lexeme)
            if out is None:
                out = merged[lexeme] = []
                last[lexeme] = 0
            elif len(out) >= MAX_NUM_POS or last[lexeme] == MAX_POS:
                continue
            for p in positions:
                shifted = p + offset if p + offset < MAX_POS else MAX_POS
                out.append(names[shifted])
                last[lexeme] = shifted
                if len(out) >= MAX_NUM_POS or shifted == MAX_POS:
                    break
            top = max(top, last[lexeme])
        offset = top  # the next part shifts by the largest position so far
    return " ".join(f"'{_quote(lx)}':{','.join(positions)}" for lx, positions in merged.items())
