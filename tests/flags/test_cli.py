"""`flask flags list` and `flask flags set NAME on|off [--reason]`: state, audit, clear errors."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.models import FeatureFlag
from helpdesk.services import flags
from tests.flags.helpers import site_events


def run(app: Flask, *args: str):
    return app.test_cli_runner().invoke(args=["flags", *args])


def test_list_shows_every_flag_with_its_state_and_what_off_does(
    app: Flask, session: Session
) -> None:
    result = run(app, "list")
    assert result.exit_code == 0, result.output
    for flag in flags.FLAGS.values():
        assert f"{flag.name}" in result.output and flag.description in result.output
    assert result.output.count("never changed") == len(flags.FLAGS)


def test_set_off_and_on_again(app: Flask, session: Session) -> None:
    result = run(app, "set", "webhooks", "off", "--reason", "receiver leaking data")
    assert result.exit_code == 0, result.output
    assert "webhooks is now off" in result.output
    session.expire_all()
    row = session.get(FeatureFlag, "webhooks")
    assert row is not None and (row.enabled, row.reason, row.updated_by_id) == (
        False, "receiver leaking data", None
    )  # fmt: skip
    listing = run(app, "list").output
    line = next(x for x in listing.splitlines() if x.startswith("webhooks "))
    assert " off " in line and "since " in line and "reason: receiver leaking data" in line
    again = run(app, "set", "webhooks", "OFF")
    assert again.exit_code == 0 and "was already off; nothing changed" in again.output
    assert run(app, "set", "webhooks", "on").exit_code == 0
    events = site_events(session)
    assert [(e.data["enabled"], e.data["changed"], e.data["via"]) for e in events] == [
        (False, True, "cli"), (False, False, "cli"), (True, True, "cli")
    ]  # fmt: skip
    session.expire_all()
    assert session.get(FeatureFlag, "webhooks").enabled is True  # type: ignore[union-attr]


def test_an_unknown_flag_fails_naming_the_known_ones(app: Flask, session: Session) -> None:
    result = run(app, "set", "uploads", "off")
    assert result.exit_code == 1
    assert "unknown flag 'uploads'" in result.output
    assert all(name in result.output for name in flags.FLAGS)
    assert site_events(session) == []


@pytest.mark.parametrize("state", ["true", "false", "1", "disable"])
def test_only_on_and_off_are_accepted(app: Flask, session: Session, state: str) -> None:
    result = run(app, "set", "webhooks", state)
    assert result.exit_code == 2
    assert f"'{state}' is not one of 'on', 'off'" in result.output
    assert session.get(FeatureFlag, "webhooks") is None


def test_a_too_long_reason_is_refused(app: Flask, session: Session) -> None:
    result = run(app, "set", "webhooks", "off", "--reason", "x" * 600)
    assert result.exit_code == 1 and "500 characters or fewer" in result.output
    assert session.get(FeatureFlag, "webhooks") is None and site_events(session) == []


def test_list_mentions_an_env_switch_that_is_off(
    app: Flask, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "UPLOADS_ENABLED", False)
    line = next(
        x for x in run(app, "list").output.splitlines() if x.startswith("attachments_upload")
    )
    assert "(also off: UPLOADS_ENABLED=false)" in line
