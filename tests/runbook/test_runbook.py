"""docs/runbook.md cannot rot: every command in its `sh` blocks is drilled or excused.

The coverage tests compare the runbook's command lines with the drills' steps
(tests/runbook/drills.py) exactly, both ways. The extractor/matcher tests below prove the
check bites: a new `flask --app wsgi …` line, a changed option or a command left in prose
each make it fail.
"""

from __future__ import annotations

import pytest

from tests.runbook.drills import NOT_DRILLED, PLACEHOLDERS, SCENARIOS, drilled_commands
from tests.runbook.extract import (
    placeholders,
    prose_commands,
    sh_commands,
    stale,
    substitute,
    uncovered,
)
from tests.runbook.runner import ROOT, Step

RUNBOOK = ROOT / "docs" / "runbook.md"


def runbook_text() -> str:
    return RUNBOOK.read_text(encoding="utf-8")


def runbook_commands(text: str | None = None) -> list[str]:
    return [c.text for c in sh_commands(runbook_text() if text is None else text)]


# --- the real runbook -----------------------------------------------------------------


def test_every_runbook_command_is_drilled_or_excused() -> None:
    missing = uncovered(runbook_commands(), drilled_commands(), NOT_DRILLED)
    assert not missing, (
        "runbook commands that no drill runs (add a Step with the exact line to a scenario "
        "in tests/runbook/drills.py, or an entry with the reason in NOT_DRILLED):\n  "
        + "\n  ".join(missing)
    )


def test_every_drill_runs_a_command_the_runbook_has() -> None:
    gone = stale(runbook_commands(), drilled_commands(), NOT_DRILLED)
    assert not gone, (
        "drill steps or NOT_DRILLED entries whose line is not (or no longer) in "
        "docs/runbook.md — update them to the runbook's exact text:\n  " + "\n  ".join(gone)
    )


def test_commands_named_in_prose_are_in_sh_blocks() -> None:
    in_blocks = set(runbook_commands())
    loose = [c for c in prose_commands(runbook_text()) if c not in in_blocks]
    assert not loose, (
        "commands written inline in prose escape the drill: put them in a ```sh block "
        "(or name them without the command, e.g. 'the status command'):\n  " + "\n  ".join(loose)
    )


def test_placeholders_follow_the_convention_and_have_drill_values() -> None:
    used = {p for command in runbook_commands() for p in placeholders(command)}
    expected_in = {
        p
        for scenario in SCENARIOS
        for item in scenario.items
        if isinstance(item, Step) and item.expect
        for p in placeholders(item.expect)
    }
    assert used | expected_in <= set(PLACEHOLDERS), sorted(used | expected_in - set(PLACEHOLDERS))


def test_runbook_has_commands_and_every_exception_says_why() -> None:
    commands = runbook_commands()
    assert len(commands) > 40
    assert all(command in commands for command in NOT_DRILLED)
    short = [command for command, why in NOT_DRILLED.items() if len(why) < 30]
    assert not short, f"say why each is not drilled and where it is exercised: {short}"


def test_runbook_keeps_the_seed_sections_in_order() -> None:
    headings = [line for line in runbook_text().splitlines() if line.startswith("## ")]
    seed = [
        "## Dev environment setup",
        "## Database migrations and rollback",
        "## Seeding strategy",
        "## Background jobs",
        "## Observability and health checks",
        "## Release checklist",
        "## Incident response",
    ]
    positions = [headings.index(h) for h in seed]
    assert positions == sorted(positions), headings


# --- the extractor and the matcher ----------------------------------------------------

SAMPLE = """\
# Title

Prose with `flask --app wsgi jobs status` and a bare `pg_dump` mention.

```sh
flask --app wsgi jobs status
# a comment line
alembic upgrade head   # trailing comment
curl -fsS \\
  "$BASE_URL/healthz"
```

- In a list:

  ```sh
  flask --app wsgi seed demo
  ```

```text
flask --app wsgi not-a-command   (output, not a sh block)
```

```ini
STORAGE=s3
```
"""


def test_extractor_reads_sh_blocks_only_joining_continuations_and_dropping_comments() -> None:
    found = sh_commands(SAMPLE)
    assert [c.text for c in found] == [
        "flask --app wsgi jobs status",
        "alembic upgrade head",
        'curl -fsS "$BASE_URL/healthz"',
        "flask --app wsgi seed demo",
    ]
    assert [c.line for c in found] == [6, 8, 9, 16]


def test_a_new_flask_command_without_a_drill_fails_the_coverage_check() -> None:
    text = runbook_text() + "\n```sh\nflask --app wsgi audit export --org <org-slug>\n```\n"
    missing = uncovered(runbook_commands(text), drilled_commands(), NOT_DRILLED)
    assert missing == ["flask --app wsgi audit export --org <org-slug>"]


def test_a_changed_option_is_a_new_command_and_leaves_its_drill_stale() -> None:
    old = "flask --app wsgi jobs dead"
    text = runbook_text().replace(f"{old}\n", f"{old} --limit 5\n")
    commands = runbook_commands(text)
    assert uncovered(commands, drilled_commands(), NOT_DRILLED) == [f"{old} --limit 5"]
    assert stale(commands, drilled_commands(), NOT_DRILLED) == [old]


def test_a_command_left_in_prose_is_found() -> None:
    text = "Run `make migrate` or `flask --app wsgi jobs status --json`, not `pg_dump`.\n"
    assert prose_commands(text) == ["make migrate", "flask --app wsgi jobs status --json"]
    assert prose_commands(SAMPLE) == ["flask --app wsgi jobs status"]


def test_placeholders_are_substituted_and_an_unknown_one_is_named() -> None:
    command = "flask --app wsgi tokens create --email <email> --org <org-slug>"
    assert placeholders(command) == ["<email>", "<org-slug>"]
    values = {"<email>": "a@b.test", "<org-slug>": "acme"}
    filled = substitute(command, values)
    assert filled == "flask --app wsgi tokens create --email a@b.test --org acme"
    with pytest.raises(KeyError, match="<org-slug>"):
        substitute(command, {"<email>": "a@b.test"})
    assert placeholders('psql -c "select 1 where 2 < 3"') == []
