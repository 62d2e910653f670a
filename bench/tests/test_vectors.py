"""Search vectors and COPY text built in Python equal what PostgreSQL makes of them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from bench import pgcopy, vectors
from bench.tests.conftest import database
from bench.words import CONTENT, RARE_WORDS, subject_text, subject_words
from helpdesk import embedded
from tests.conftest_services import recreate_database

VECTOR = "setweight(to_tsvector('english'::regconfig, left(%s, 10000)), '{}')"


@pytest.fixture(scope="module")
def conn() -> Iterator[psycopg.Connection]:
    url = database("helpdesk_bench_test_vectors")
    recreate_database(url)
    with psycopg.connect(embedded.libpq_url(url)) as connection:
        yield connection


def postgres_concat(conn: psycopg.Connection, subject: str, bodies: list[str]) -> str:
    sql = " || ".join([VECTOR.format("A")] + [VECTOR.format("B")] * len(bodies))
    row = conn.execute(f"SELECT ({sql})::text", [subject, *bodies]).fetchone()
    assert row is not None
    return str(row[0])


def python_concat(conn: psycopg.Connection, words: list[str], bodies: list[str]) -> str:
    lexemes = vectors.word_lexemes(conn, words)
    text = vectors.concat_text(
        vectors.parse_words(words, lexemes), vectors.parse_bodies(conn, bodies)
    )
    row = conn.execute("SELECT %s::tsvector::text", (text,)).fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize(
    "bodies",
    [
        [],
        ["The printer fails, again!", "", "printer printer **printer** `code` x-200 e-mail"],
        ["printer " * 300],  # one lexeme past 255 positions in one body
        ["printer invoice " * 200, "printer " * 200, "invoice printer"],  # past 256 merged
        [" ".join(f"word{i % 997} filler" for i in range(1600))] * 12,  # past position 16,383
        ["See https://example.com/a/1 and it's \"quoted\" or O'Brien's {braces} back\\slash"],
    ],
)
def test_concatenation_matches_postgres(conn: psycopg.Connection, bodies: list[str]) -> None:
    words = ["the", "printer", "fails", "again", "printer", "bakx"]
    assert python_concat(conn, words, bodies) == postgres_concat(conn, " ".join(words), bodies)


def test_generated_subjects_parse_like_postgres(conn: psycopg.Connection) -> None:
    import random

    rng = random.Random(3)  # noqa: S311
    for _ in range(200):
        words = subject_words(rng)
        text = subject_text(words)
        assert python_concat(conn, words, []) == postgres_concat(conn, text, [])


def test_every_vocabulary_word_is_one_token(conn: psycopg.Connection) -> None:
    lexemes = vectors.word_lexemes(conn, [*CONTENT, *RARE_WORDS])
    assert lexemes["printer"] == "printer" and lexemes[RARE_WORDS[0]] == RARE_WORDS[0]
    with pytest.raises(ValueError, match="several lexemes"):
        vectors.word_lexemes(conn, ["e-mail"])


def test_copy_text_escapes_and_timestamps(conn: psycopg.Connection) -> None:
    text = "tab\there\nnew line \\ back"
    assert pgcopy.escape(text) == "tab\\there\\nnew line \\\\ back"
    when = datetime(2026, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
    assert pgcopy.ts(when.timestamp()) == "2026-02-03 04:05:06.789012+00"
    row = conn.execute("SELECT %s::timestamptz", (pgcopy.ts(when.timestamp()),)).fetchone()
    assert row == (when,)
