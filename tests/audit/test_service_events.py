"""The services append audit events in the same transaction as the change, ids not PII,
and a refused change appends nothing. Beta's chain never sees alpha's work."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Attachment, Channel, Role, ScanStatus
from helpdesk.scanning import ScanResult
from helpdesk.services import (
    access_links,
    api_tokens,
    audit,
    bulk,
    canned,
    scans,
    sla_admin,
    tickets,
    views,
    webhooks,
)
from helpdesk.services.errors import Conflict, Forbidden, ValidationError
from helpdesk.storage import DiskStorage, new_key
from helpdesk.tenancy import tenant_scope
from tests.audit.helpers import events
from tests.factories import make_member, make_ticket

HOOK = "https://93.184.215.14/hooks/T0SECRETPATH?key=QUERYSECRET"


def actions(session: Session, org_id: int) -> list[str]:
    return [e.action for e in events(session, org_id)]


def last(session: Session, org_id: int, action: str) -> Any:
    found = events(session, org_id, action)
    assert found, f"no {action} event"
    return found[-1]


def assert_unchanged_after(session: Session, org_id: int, before: list[str]) -> None:
    assert actions(session, org_id) == before
    assert audit.verify(session, org_id).ok


def test_members_added_by_the_factories_and_by_staff_are_audited(
    session: Session, world: dict[str, Any]
) -> None:
    alpha, beta = world["alpha"], world["beta"]
    for side in (alpha, beta):
        created = events(session, side["org"].id, "membership.created")
        assert [(e.data["role"], e.actor_id) for e in created] == [
            ("admin", None), ("agent", None), ("requester", None),
        ]  # fmt: skip
        assert created[0].data["user_id"] == side["admin"].user_id
    ticket = make_ticket(session, alpha["org"], alpha["agent"], "newcomer@example.test")
    added = last(session, alpha["org"].id, "membership.created")
    assert (added.actor_id, added.data["user_id"]) == (alpha["agent"].user_id, ticket.requester_id)
    assert "newcomer" not in json.dumps(added.data)
    assert len(events(session, beta["org"].id, "membership.created")) == 3


def test_ticket_created_updated_and_commented(session: Session, world: dict[str, Any]) -> None:
    alpha, beta = world["alpha"], world["beta"]
    org, agent = alpha["org"], alpha["agent"]
    beta_before = actions(session, beta["org"].id)
    ticket = make_ticket(session, org, agent, alpha["requester"].user, priority="high")
    created = last(session, org.id, "ticket.created")
    assert (created.actor_id, created.target_type, created.target_id) == (
        agent.user_id, "ticket", str(ticket.id),
    )  # fmt: skip
    assert created.data == {"number": 1, "priority": "high", "channel": "web",
                            "requester_id": alpha["requester"].user_id}  # fmt: skip
    with tenant_scope(session, org.id):
        change = {"priority": "low", "tags": "vip, billing", "assignee_email": "agent@alpha.test"}
        tickets.update_fields(session, agent, 1, change)
        comment = tickets.add_comment(session, agent, 1, "The secret body text", internal=True)
    updated = last(session, org.id, "ticket.updated")
    assert updated.data == {
        "priority": {"old": "high", "new": "low"},
        "tags": {"old": [], "new": ["vip", "billing"]},
        "assignee_id": {"old": None, "new": agent.user_id},
    }
    noted = last(session, org.id, "comment.created")
    assert (noted.target_type, noted.target_id) == ("comment", str(comment.id))
    assert noted.data == {"ticket_id": ticket.id, "number": 1, "internal": True, "channel": "web"}
    with tenant_scope(session, org.id):
        tickets.add_comment(session, agent, 1, "A public reply")  # new -> open
    assert last(session, org.id, "ticket.updated").data == {"status": {"old": "new", "new": "open"}}
    everything = json.dumps([list(e) for e in events(session, org.id)], default=str)
    assert "secret body" not in everything and "public reply" not in everything
    assert "@alpha.test" not in everything and "Printer on fire" not in everything
    assert_unchanged_after(session, beta["org"].id, beta_before)


def test_refused_changes_append_nothing(session: Session, world: dict[str, Any]) -> None:
    alpha = world["alpha"]
    org, agent, requester = alpha["org"], alpha["agent"], alpha["requester"]
    make_ticket(session, org, agent, requester.user)
    before = actions(session, org.id)
    with tenant_scope(session, org.id):
        with pytest.raises(ValidationError):
            tickets.update_fields(session, agent, 1, {"priority": "whenever"})
        session.rollback()
        with pytest.raises(ValidationError):
            tickets.add_comment(session, agent, 1, "   ")
        session.rollback()
        with pytest.raises(Forbidden):
            tickets.update_fields(session, requester, 1, {"priority": "urgent"})
        session.rollback()
        with pytest.raises(ValidationError):
            bulk.bulk_update(session, agent, [1, 99], {"priority": "urgent"})
        session.rollback()
        tickets.update_fields(session, agent, 1, {"priority": "normal"})  # no change at all
    assert_unchanged_after(session, org.id, before)


def test_bulk_changes_append_one_event_per_changed_ticket(
    session: Session, world: dict[str, Any]
) -> None:
    org, agent = world["alpha"]["org"], world["alpha"]["agent"]
    for priority in ("normal", "urgent", "low"):
        make_ticket(session, org, agent, priority=priority)
    with tenant_scope(session, org.id):
        bulk.bulk_update(session, agent, [1, 2, 3], {"priority": "urgent", "add_tags": ["x"]})
    changed = events(session, org.id, "ticket.updated")
    assert len(changed) == 3
    assert changed[0].data == {"priority": {"old": "normal", "new": "urgent"},
                               "tags": {"old": [], "new": ["x"]}}  # fmt: skip
    assert changed[1].data == {"tags": {"old": [], "new": ["x"]}}
    assert {e.actor_id for e in changed} == {agent.user_id}


def test_api_tokens_created_and_revoked_without_the_secret(
    session: Session, world: dict[str, Any]
) -> None:
    alpha, beta = world["alpha"], world["beta"]
    beta_before = actions(session, beta["org"].id)
    member = alpha["agent"]
    with tenant_scope(session, member.org_id):
        token, plaintext = api_tokens.create_token(session, member, "CI script")
        api_tokens.revoke_token(session, member, token.id)
        api_tokens.revoke_token(session, member, token.id)  # already revoked: nothing new
    made, revoked = events(session, member.org_id)[-2:]
    assert (made.action, made.target_type, made.target_id) == ("token.created", "api_token",
                                                               str(token.id))  # fmt: skip
    assert made.data == {"prefix": plaintext[:10], "user_id": member.user_id, "expires_at": None}
    assert (revoked.action, revoked.data) == ("token.revoked", {"prefix": plaintext[:10]})
    assert plaintext not in json.dumps([list(e) for e in events(session, member.org_id)])
    assert_unchanged_after(session, beta["org"].id, beta_before)


def test_webhooks_are_audited_by_host_never_by_url_or_secret(
    session: Session, world: dict[str, Any]
) -> None:
    admin = world["alpha"]["admin"]
    now = utcnow()
    with tenant_scope(session, admin.org_id):
        data = webhooks.WebhookInput(url=HOOK, events=["ticket.created"])
        endpoint, secret = webhooks.create_endpoint(session, admin, data, (), now)
        off = webhooks.WebhookInput(events=["*"], active=False)
        webhooks.update_endpoint(session, admin, endpoint.id, off, (), now)
        webhooks.update_endpoint(session, admin, endpoint.id, webhooks.WebhookInput(), (), now)
        _, rotated = webhooks.rotate_secret(session, admin, endpoint.id, now)
        webhooks.enable_endpoint(session, admin, endpoint.id, now)
        webhooks.delete_endpoint(session, admin, endpoint.id)
    found = [e for e in events(session, admin.org_id) if e.action.startswith("webhook.")]
    assert [e.action for e in found] == ["webhook.created", "webhook.updated",
                                         "webhook.secret_rotated", "webhook.updated",
                                         "webhook.deleted"]  # fmt: skip
    assert {e.target_id for e in found} == {str(endpoint.id)}
    assert found[0].data == {"host": "93.184.215.14", "events": ["ticket.created"], "active": True}
    assert found[1].data == {
        "host": "93.184.215.14",
        "events": {"old": ["ticket.created"], "new": ["*"]},
        "active": {"old": True, "new": False},
        "changed": ["active", "events"],
    }
    assert found[3].data["active"] == {"old": False, "new": True}
    text = json.dumps([list(e) for e in found])
    for secret_part in ("T0SECRETPATH", "QUERYSECRET", secret, rotated):
        assert secret_part not in text


def test_sla_policies_and_calendars_are_audited(session: Session, world: dict[str, Any]) -> None:
    admin = world["alpha"]["admin"]
    now = utcnow()
    with tenant_scope(session, admin.org_id):
        hours = {"mon": [["09:00", "17:00"]]}
        calendar = sla_admin.create_calendar(
            session, admin, sla_admin.CalendarInput("Office", "Europe/Berlin", hours, [])
        )
        with pytest.raises(ValidationError):  # the name is taken: refused, nothing appended
            sla_admin.create_calendar(
                session, admin, sla_admin.CalendarInput("Office", "UTC", hours, [])
            )
        sla_admin.update_calendar(session, admin, calendar.id, sla_admin.CalendarInput("Desk"))
        policy = sla_admin.PolicyInput(60, 480, str(calendar.id), [75])
        sla_admin.save_policy(session, admin, "high", policy, now)
        with pytest.raises(Conflict):
            sla_admin.delete_calendar(session, admin, calendar.id)  # still used
        sla_admin.save_policy(
            session, admin, "high", sla_admin.PolicyInput(30, 240, "24x7", []), now
        )
        sla_admin.delete_policy(session, admin, "high")
        sla_admin.delete_calendar(session, admin, calendar.id)
    found = [e for e in events(session, admin.org_id)
             if e.target_type in ("calendar", "sla_policy")]  # fmt: skip
    assert [e.action for e in found] == [
        "calendar.created", "calendar.updated", "sla_policy.created", "sla_policy.updated",
        "sla_policy.deleted", "calendar.deleted",
    ]  # fmt: skip
    assert found[0].data["name"] == "Office" and found[1].data["name"] == "Desk"
    assert found[0].data["timezone"] == "Europe/Berlin"
    assert found[2].target_id == "high"
    assert found[2].data["calendar_id"] == calendar.id
    assert found[3].data["first"] == 30 and found[3].data["calendar_id"] is None
    assert audit.verify(session, admin.org_id).ok


def test_canned_reply_and_saved_view_deletions(session: Session, world: dict[str, Any]) -> None:
    alpha = world["alpha"]
    agent, admin = alpha["agent"], alpha["admin"]
    with tenant_scope(session, agent.org_id):
        reply = canned.create_canned(session, agent, "Thanks", "Thanks, {requester_name}!")
        view = views.save_view(session, admin, "Urgent", {"priority": "urgent"}, shared=True)
        with pytest.raises(Forbidden):
            views.delete_view(session, agent, view.id)
        session.rollback()
        canned.delete_canned(session, agent, reply.id)
        views.delete_view(session, admin, view.id)
    gone_reply, gone_view = events(session, agent.org_id)[-2:]
    assert (gone_reply.action, gone_reply.target_id, gone_reply.actor_id) == (
        "canned_reply.deleted", str(reply.id), agent.user_id,
    )  # fmt: skip
    assert gone_reply.data == {"created_by_id": agent.user_id}
    assert (gone_view.action, gone_view.data) == ("view.deleted",
                                                  {"shared": True, "owner_id": None})  # fmt: skip


def test_access_link_revocations(app: Flask, session: Session, world: dict[str, Any]) -> None:
    alpha = world["alpha"]
    agent = alpha["agent"]
    ticket = make_ticket(session, alpha["org"], agent, alpha["requester"].user)
    with app.app_context(), tenant_scope(session, agent.org_id):
        first, _ = access_links.mint_link(session, ticket)
        second, _ = access_links.mint_link(session, ticket)
        session.commit()
        assert access_links.revoke_links(session, agent, ticket.number) == 2
        assert access_links.revoke_links(session, agent, ticket.number) == 0  # nothing to revoke
    revoked = events(session, agent.org_id, "access_link.revoked")
    assert len(revoked) == 1
    assert revoked[0].data == {"number": ticket.number, "token_ids": [first.id, second.id]}


@pytest.mark.parametrize(
    ("result", "status", "signature"),
    [
        (ScanResult("clean", None, ""), "clean", None),
        (ScanResult("infected", "Eicar-Test-Signature", ""), "infected", "Eicar-Test-Signature"),
        (ScanResult("error", None, "clamd is down"), "error", None),
    ],
)
def test_scan_verdicts_are_audited(
    app: Flask, session: Session, world: dict[str, Any], tmp_path: Path,
    result: ScanResult, status: str, signature: str | None,
) -> None:  # fmt: skip
    alpha = world["alpha"]
    ticket = make_ticket(session, alpha["org"], alpha["agent"])
    storage = DiskStorage(tmp_path)
    key = new_key(ticket.org_id)
    storage.put(key, io.BytesIO(b"hello"), 5, "text/plain")
    with app.app_context(), tenant_scope(session, ticket.org_id):
        rows = [Attachment(ticket_id=ticket.id, filename=f"f{n}.txt", content_type="text/plain",
                           size=5, sha256="0" * 64, storage_key=key,
                           scan_status=ScanStatus.PENDING.value) for n in range(2)]  # fmt: skip
        session.add_all(rows)
        session.commit()
        rows[0].scan_attempts = 1
        scans.record(session, rows[0], result, storage, utcnow())
    verdicts = events(session, ticket.org_id, "attachment.scanned")
    twins = 2 if status == "infected" else 1  # identical content is blocked with it
    assert [(e.target_id, e.data["status"], e.data["signature"]) for e in verdicts] == [
        (str(row.id), status, signature) for row in rows[:twins]
    ]
    assert verdicts[0].data["ticket_id"] == ticket.id and verdicts[0].actor_id is None
    assert "f0.txt" not in json.dumps(verdicts[0].data)
    assert audit.verify(session, ticket.org_id).ok


def test_the_public_request_form_membership_is_the_requester_s_own(
    session: Session, world: dict[str, Any]
) -> None:
    from helpdesk.services import public_requests

    org = world["alpha"]["org"]
    data = public_requests.PublicRequest(name="Pat", email="pat@example.test",
                                         subject="Help", description="Please")  # fmt: skip
    ticket = public_requests.submit_request(session, org, data)
    assert ticket is not None
    joined = last(session, org.id, "membership.created")
    assert joined.actor_id == joined.data["user_id"] == ticket.requester_id
    assert joined.data["role"] == Role.REQUESTER.value
    assert last(session, org.id, "ticket.created").data["channel"] == Channel.WEB.value
    make_member(session, org, Role.AGENT)
    assert audit.verify(session, org.id).ok
