"""COPY text format by hand: the generator's rows become tab-separated lines in big chunks.

Why by hand: psycopg's `write_row` adapts every value through its dumpers, which costs
more per row than building the line here; a million tickets and five million messages
spend most of their load time in this loop. Values are escaped as COPY's text format
requires (backslash, tab, newline, carriage return) and NULL is `\\N`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

NULL = "\\N"
CHUNK_BYTES = 1 << 20
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAYS: dict[int, str] = {}


def escape(text: str) -> str:
    """A value for COPY's text format."""
    return text.translate(_ESCAPES)


def ts(seconds: float) -> str:
    """A timestamptz literal (UTC, microseconds) for Unix time `seconds`."""
    whole, micros = divmod(round(seconds * 1_000_000), 1_000_000)
    day, rest = divmod(whole, 86400)
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d ")
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{prefix}{hours:02d}:{minutes:02d}:{secs:02d}.{micros:06d}+00"


def ts_or_null(seconds: float | None) -> str:
    return NULL if seconds is None else ts(seconds)


def text_array(values: Iterable[str]) -> str:
    """A text[] literal of simple words (letters, digits, '-' and '_': no quoting needed)."""
    return "{" + ",".join(values) + "}"


class CopyStream:
    """One open COPY … FROM STDIN on its own connection, fed whole lines, flushed in chunks."""

    def __init__(self, conn: psycopg.Connection, table: str, columns: str) -> None:
        self.conn = conn
        self.rows = 0
        self._cursor = conn.cursor()
        self._copy_cm = self._cursor.copy(f"COPY {table} ({columns}) FROM STDIN")
        self._copy = self._copy_cm.__enter__()
        self._lines: list[str] = []
        self._size = 0

    def add(self, line: str) -> None:
        """Queue one line (without its newline)."""
        self._lines.append(line)
        self._size += len(line) + 1
        self.rows += 1
        if self._size >= CHUNK_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._lines:
            self._copy.write("\n".join(self._lines) + "\n")
            self._lines, self._size = [], 0

    def close(self) -> None:
        """Finish the COPY (the caller commits the connection)."""
        self.flush()
        self._copy_cm.__exit__(None, None, None)
        self._cursor.close()


def line(*values: Any) -> str:
    """A line from values that are already COPY text (strings) or ints."""
    return "\t".join(v if isinstance(v, str) else str(v) for v in values)
