"""Read the runbook: the command lines of its `sh` blocks and the commands named in prose.

A command line is a non-empty, non-comment line of a fenced block tagged `sh` (indented
fences inside list items count), with `\\` continuations joined and a trailing ` # comment`
removed. Placeholders are `<lowercase-words>` in angle brackets.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)\s*$")
TRAILING_COMMENT = re.compile(r"\s+#(\s.*)?$")
PLACEHOLDER = re.compile(r"<[a-z][a-z0-9-]*>")
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
# Inline code starting with one of these (and carrying arguments) is a command, and
# every command must be in a `sh` block (where the drill sees it).
COMMAND_WORDS = frozenset(
    {
        "flask",
        "alembic",
        "pg_dump",
        "pg_restore",
        "psql",
        "createdb",
        "dropdb",
        "curl",
        "make",
        "python",
        "python3",
        "redis-cli",
        "gunicorn",
        ".venv/bin/flask",
        ".venv/bin/alembic",
        ".venv/bin/python",
    }
)


@dataclass(frozen=True)
class Command:
    """One command line of a `sh` block and the runbook line it starts on."""

    text: str
    line: int


def sh_commands(markdown: str) -> list[Command]:
    """Every command line of every `sh` block, in document order."""
    commands: list[Command] = []
    fence: str | None = None
    is_sh = False
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(markdown.splitlines(), start=1):
        match = FENCE.match(raw)
        if fence is None:
            if match:
                fence, is_sh = match.group(1), match.group(2) == "sh"
            continue
        if match and match.group(1).startswith(fence) and not match.group(2):
            fence = None
            continue
        if not is_sh:
            continue
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(TRAILING_COMMENT.sub("", line))
        commands.append(Command(" ".join(part for part in pending if part), start))
        pending = []
    return commands


def _prose(markdown: str) -> str:
    """The runbook without its fenced blocks (each replaced by an empty line)."""
    kept: list[str] = []
    fence: str | None = None
    for raw in markdown.splitlines():
        match = FENCE.match(raw)
        if fence is None and match:
            fence = match.group(1)
            continue
        if fence is not None:
            if match and match.group(1).startswith(fence) and not match.group(2):
                fence = None
            continue
        kept.append(raw)
    return "\n".join(kept)


def program(command: str) -> str | None:
    """The program a command line runs (after leading VAR=value assignments)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    while words and ASSIGNMENT.match(words[0]):
        words = words[1:]
    return words[0] if words else None


def prose_commands(markdown: str) -> list[str]:
    """Inline code outside the blocks that is a command with arguments (`make run`, …)."""
    found = []
    for match in INLINE_CODE.finditer(_prose(markdown)):
        code = " ".join(match.group(2).split())
        if " " in code and program(code) in COMMAND_WORDS:
            found.append(code)
    return found


def placeholders(command: str) -> list[str]:
    """The placeholders of a command, in order (`<org-slug>`, …)."""
    return PLACEHOLDER.findall(command)


def substitute(command: str, values: Mapping[str, str]) -> str:
    """Replace every placeholder; an unknown one raises KeyError naming it."""
    missing = sorted({p for p in placeholders(command) if p not in values})
    if missing:
        raise KeyError(f"no drill value for placeholder(s) {', '.join(missing)} in: {command}")
    return PLACEHOLDER.sub(lambda m: values[m.group(0)], command)


def uncovered(commands: Iterable[str], drilled: Iterable[str], excused: Iterable[str]) -> list[str]:
    """Runbook commands that no drill step runs and no allow-list entry excuses."""
    known = set(drilled) | set(excused)
    return sorted({c for c in commands if c not in known})


def stale(commands: Iterable[str], drilled: Iterable[str], excused: Iterable[str]) -> list[str]:
    """Drill steps and allow-list entries whose command is no longer in the runbook."""
    present = set(commands)
    return sorted({c for c in [*drilled, *excused] if c not in present})
