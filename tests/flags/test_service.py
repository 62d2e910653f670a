"""The flag service: the registry, the stored state, the audit event, the cache and its limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session, sessionmaker

from helpdesk.models import FeatureFlag
from helpdesk.services import audit, flags
from helpdesk.services.errors import ValidationError
from tests.flags.helpers import site_events

KNOWN = [
    "attachments_upload",
    "attachments_download",
    "public_form",
    "inbound_email",
    "webhooks",
    "api_writes",
]


class Clock:
    """A settable monotonic clock for the flag cache."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    ticking = Clock()
    monkeypatch.setattr(flags, "monotonic", ticking)
    return ticking


@pytest.fixture
def ctx(app: Flask) -> Iterator[Flask]:
    with app.app_context():
        yield app


def flip_elsewhere(session: Session, name: str, enabled: bool) -> None:
    """What another process's flip looks like from here: the row changes, no cache is told."""
    session.merge(FeatureFlag(name=name, enabled=enabled, reason="elsewhere"))
    session.commit()


def test_the_registry_holds_exactly_the_incident_switches() -> None:
    assert list(flags.FLAGS) == KNOWN
    for flag in flags.FLAGS.values():
        assert flag.description.startswith("Off: ") and flag.description.endswith(".")
        assert "\n" not in flag.description
        assert flag.when_unreadable is False


def test_no_row_means_on(ctx: Flask, session: Session) -> None:
    assert all(flags.is_enabled(session, name) for name in KNOWN)
    states = flags.list_flags(session)
    assert [s.name for s in states] == KNOWN
    assert all(s.enabled and s.updated_at is None and s.reason == "" for s in states)


@pytest.mark.parametrize("name", ["nope", "", "Webhooks", "webhooks "])
def test_unknown_names_are_refused_with_the_known_names(
    ctx: Flask, session: Session, name: str
) -> None:
    for call in (
        lambda: flags.is_enabled(session, name),
        lambda: flags.set_flag(session, name, False, None, "x"),
    ):
        with pytest.raises(ValidationError) as caught:
            call()
        message = caught.value.errors["name"]
        assert f"unknown flag {name!r}" in message
        assert all(known in message for known in KNOWN)
    assert site_events(session) == []


def test_set_writes_the_row_and_the_audit_event_together(
    ctx: Flask, session: Session, world
) -> None:
    actor = world["alpha"]["admin"].user_id
    assert flags.set_flag(session, "webhooks", False, actor, "  receiver\nleaking   data ") is True
    assert flags.is_enabled(session, "webhooks") is False  # seen at once in this process
    session.expire_all()
    row = session.get(FeatureFlag, "webhooks")
    assert row is not None
    assert (row.enabled, row.reason, row.updated_by_id) == (False, "receiver leaking data", actor)
    (event,) = site_events(session)
    assert (event.actor_id, event.target_type, event.target_id) == (
        actor,
        "feature_flag",
        "webhooks",
    )
    assert event.data == {"enabled": False, "previous": True, "changed": True,
                          "reason": "receiver leaking data", "via": "web"}  # fmt: skip
    assert audit.verify(session, None).ok
    (state,) = [s for s in flags.list_flags(session) if s.name == "webhooks"]
    assert (state.enabled, state.updated_by) == (False, "admin@alpha.test")
    assert state.updated_at is not None


def test_a_no_op_is_audited_but_leaves_the_row(ctx: Flask, session: Session) -> None:
    flags.set_flag(session, "public_form", False, None, "spam wave", via="cli")
    session.expire_all()
    first = session.get(FeatureFlag, "public_form")
    assert first is not None
    since = first.updated_at
    assert flags.set_flag(session, "public_form", False, None, "still spam", via="cli") is False
    assert flags.set_flag(session, "api_writes", True, None, "") is False  # on, and no row
    session.expire_all()
    row = session.get(FeatureFlag, "public_form")
    assert row is not None and (row.reason, row.updated_at) == ("spam wave", since)
    assert session.get(FeatureFlag, "api_writes") is None
    events = site_events(session)
    assert [(e.target_id, e.data["changed"]) for e in events] == [
        ("public_form", True), ("public_form", False), ("api_writes", False)
    ]  # fmt: skip
    assert events[1].data["reason"] == "still spam"
    assert audit.verify(session, None).ok


def test_a_too_long_reason_changes_nothing(ctx: Flask, session: Session) -> None:
    with pytest.raises(ValidationError) as caught:
        flags.set_flag(session, "webhooks", False, None, "x" * 501)
    assert "500 characters or fewer" in caught.value.errors["reason"]
    session.rollback()
    assert flags.is_enabled(session, "webhooks") is True
    assert session.get(FeatureFlag, "webhooks") is None and site_events(session) == []


@pytest.mark.parametrize(("text", "value"), [("on", True), ("OFF", False), (" off ", False)])
def test_states_are_on_or_off(text: str, value: bool) -> None:
    assert flags.parse_state(text) is value


@pytest.mark.parametrize("text", ["true", "false", "1", "", "of", "enabled"])
def test_other_states_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        flags.parse_state(text)
    assert caught.value.errors == {"state": "use on or off"}


def test_another_process_flip_is_seen_when_the_cache_expires(
    ctx: Flask, session: Session, clock: Clock
) -> None:
    assert ctx.config["FLAG_CACHE_SECONDS"] == 5
    assert flags.is_enabled(session, "inbound_email") is True  # snapshot taken at t=1000
    flip_elsewhere(session, "inbound_email", False)
    clock.now += 4.9
    assert flags.is_enabled(session, "inbound_email") is True  # still the snapshot
    clock.now += 0.1
    assert flags.is_enabled(session, "inbound_email") is False  # 5 s: read again
    flip_elsewhere(session, "inbound_email", True)
    clock.now += 5
    assert flags.is_enabled(session, "inbound_email") is True


def test_the_cache_time_is_a_setting(
    ctx: Flask, session: Session, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ctx.config, "FLAG_CACHE_SECONDS", 0)
    assert flags.is_enabled(session, "api_writes") is True
    flip_elsewhere(session, "api_writes", False)
    assert flags.is_enabled(session, "api_writes") is False  # 0: every check reads


def test_the_cache_is_one_query_per_period(
    ctx: Flask, session: Session, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    real = flags._read
    monkeypatch.setattr(flags, "_read", lambda s: reads.append(1) or real(s))
    for name in KNOWN * 3:
        flags.is_enabled(session, name)
    assert len(reads) == 1
    clock.now += 5
    flags.is_enabled(session, "webhooks")
    assert len(reads) == 2


def test_a_flip_during_a_read_is_not_hidden_by_that_read(
    ctx: Flask, session: Session, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = flags._read

    def racing(s: Session) -> dict[str, bool]:
        states = real(s)  # read just before this process's own flip commits
        flags.set_flag(session, "webhooks", False, None, "meanwhile")
        return states

    monkeypatch.setattr(flags, "_read", racing)
    assert flags.is_enabled(session, "webhooks") is True  # the read answers its own caller
    monkeypatch.setattr(flags, "_read", real)
    assert flags.is_enabled(session, "webhooks") is False  # but it was not kept


@pytest.fixture
def unreadable(database_url: str) -> Iterator[Session]:
    """A session on a server that is not there (connection refused)."""
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2")
    dead = sessionmaker(bind=engine)()
    yield dead
    dead.close()
    engine.dispose()


def test_unreadable_flags_keep_the_last_known_state(
    ctx: Flask,
    session: Session,
    unreadable: Session,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    flip_elsewhere(session, "webhooks", False)
    assert flags.is_enabled(session, "webhooks") is False
    assert flags.is_enabled(session, "public_form") is True
    clock.now += 5
    assert flags.is_enabled(unreadable, "webhooks") is False
    assert flags.is_enabled(unreadable, "public_form") is True
    assert "flags_unreadable error=OperationalError using=last known state" in caplog.text


def test_unreadable_flags_with_nothing_known_fail_closed(
    ctx: Flask, unreadable: Session, caplog: pytest.LogCaptureFixture
) -> None:
    assert [flags.is_enabled(unreadable, name) for name in KNOWN] == [False] * len(KNOWN)
    assert "using=fail-safe defaults" in caplog.text
    assert caplog.text.count("flags_unreadable") == 1  # the fallback is cached too


def test_reads_run_outside_the_callers_transaction(
    ctx: Flask, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    flip_elsewhere(session, "webhooks", False)
    monkeypatch.setitem(ctx.config, "FLAG_CACHE_SECONDS", 0)
    session.execute(update(FeatureFlag).values(enabled=True, reason="not committed yet"))
    assert flags.is_enabled(session, "webhooks") is False  # only committed state counts
    session.commit()  # the caller's work goes on untouched
    assert flags.is_enabled(session, "webhooks") is True
    session.expire_all()
    row = session.get(FeatureFlag, "webhooks")
    assert row is not None and row.reason == "not committed yet"


def test_rows_of_retired_flags_are_ignored(ctx: Flask, session: Session) -> None:
    session.add(FeatureFlag(name="old_switch", enabled=False))
    session.commit()
    assert [s.name for s in flags.list_flags(session)] == KNOWN
    assert flags.is_enabled(session, "webhooks") is True
