"""CSV output that is safe to open in a spreadsheet.

Why: a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return before one)
is read by Excel, LibreOffice and Google Sheets as a formula, so text a user typed (a ticket
subject, a tag, a filter) could run `=HYPERLINK(…)` or a DDE command on the machine of the
admin who opens the export (CSV / formula injection, OWASP). Such cells get a leading
apostrophe, which spreadsheets show as plain text. The full-width forms of those characters
are treated the same, since some spreadsheet locales read them as formula starters too.
Quoting and embedded newlines are left to the `csv` module.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def escape_cell(value: object) -> str:
    """Return the cell's text, with a leading apostrophe if a spreadsheet would run it."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """Yield each row as one escaped CSV line (for streaming a response)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([escape_cell(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
