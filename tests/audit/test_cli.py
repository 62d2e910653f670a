"""`flask audit verify`: one line per chain, exit 0 / 1 / 2, and a structured log event."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from tests.audit.helpers import append, tamper
from tests.factories import make_org


@pytest.fixture
def chains(session: Session) -> tuple[int, int]:
    acme, zeta = make_org(session, "acme").id, make_org(session, "zeta").id
    append(session, acme, 5)
    append(session, zeta, 2)
    append(session, None, 3, action="test.site")
    return acme, zeta


def run(app: Flask, *args: str):  # type: ignore[no-untyped-def]
    return app.test_cli_runner().invoke(args=["audit", "verify", *args])


def test_every_chain_intact_exits_0(app: Flask, chains: tuple[int, int]) -> None:
    result = run(app)
    assert result.exit_code == 0, result.stdout
    lines = result.stdout.splitlines()
    assert [line.split(" (head ")[0] for line in lines] == [
        "org acme: 5 events, intact",
        "org zeta: 2 events, intact",
        "site: 3 events, intact",
    ]


def test_one_org(app: Flask, chains: tuple[int, int]) -> None:
    result = run(app, "--org", "zeta")
    assert result.exit_code == 0
    assert result.stdout.startswith("org zeta: 2 events, intact (head ")
    assert len(result.stdout.splitlines()) == 1


def test_an_org_without_events_is_intact(app: Flask, session: Session) -> None:
    make_org(session, "fresh")
    result = run(app, "--org", "fresh")
    assert (result.exit_code, result.stdout.split(" (head ")[0]) == (
        0,
        "org fresh: 0 events, intact",
    )


def test_a_broken_chain_exits_1_and_names_the_seq(
    app: Flask, session: Session, chains: tuple[int, int]
) -> None:
    acme, _zeta = chains
    tamper(session, "UPDATE audit_events SET data = '{}' WHERE org_id = :o AND seq = 4", o=acme)
    result = run(app)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "org acme: BROKEN at seq 4: hash does not match the event's content: it was changed"
    )
    assert lines[1].startswith("org zeta: 2 events, intact")  # the other chains are still checked
    assert lines[2].startswith("site: 3 events, intact")
    assert run(app, "--org", "zeta").exit_code == 0


def test_a_broken_site_chain_exits_1(app: Flask, session: Session, chains: tuple[int, int]) -> None:
    tamper(session, "DELETE FROM site_audit_events WHERE seq = 3")
    result = run(app)
    assert result.exit_code == 1
    assert "site: BROKEN at seq 3: chain ends at seq 2 but its head records seq 3" in result.stdout


@pytest.mark.parametrize("slug", ["nope", "ACME", "../acme", ""])
def test_an_unknown_org_is_a_usage_error(app: Flask, chains: tuple[int, int], slug: str) -> None:
    result = run(app, "--org", slug)
    assert result.exit_code == 2
    assert "there is no org" in result.stderr
    assert result.stdout == ""


def test_each_outcome_is_logged_as_a_structured_event(
    app: Flask, session: Session, chains: tuple[int, int], caplog: pytest.LogCaptureFixture
) -> None:
    acme, zeta = chains
    tamper(session, "DELETE FROM audit_events WHERE org_id = :o AND seq = 2", o=zeta)
    with caplog.at_level(logging.INFO, logger="helpdesk.audit_cli"):
        run(app)
    found = [r for r in caplog.records if r.getMessage() == "audit.verify"]
    seen = [(r.levelname, r.event, r.org_id, r.count, r.broken_seq) for r in found]  # type: ignore[attr-defined]
    assert seen == [
        ("INFO", "audit.verify", acme, 5, None),
        ("ERROR", "audit.verify", zeta, 1, 2),
        ("INFO", "audit.verify", None, 3, None),
    ]
