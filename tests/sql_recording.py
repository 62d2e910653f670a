"""Record the SQL statements an app's engine sends (statement-count and shape tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import event


@contextmanager
def statements_sent(app: Flask) -> Iterator[list[str]]:
    """Every statement the app's engine sends while inside."""
    engine = app.extensions["helpdesk.engine"]
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
