"""The public request form: anyone may write to an org without an account.

Why this module is careful about what it reveals: the form answers strangers, so nothing in
its answer may tell them whether an address already has an account (peers leaked that through
signup and forgot-password forms). Every accepted submission — new address, known requester,
the org's own staff, a deactivated account, a bot that filled the honeypot — gets the same
answer; only the logs (ids and reasons, never addresses or text) tell them apart.

What a submission may do: create a password-less user for a new address and a requester
membership for it, then open a ticket for that person. It never changes an existing account
(name, role, password) and never grants anything: a staff member who uses the form is simply
the requester of the new ticket, with the role they already had.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from helpdesk.models import Channel, Organization, Priority, Role, Ticket
from helpdesk.services import orgs, tickets
from helpdesk.services.errors import NotFound, ValidationError
from helpdesk.services.validation import EMAIL_MAX, normalize_email, one_line
from helpdesk.tenancy import tenant_scope

log = logging.getLogger(__name__)

NAME_MAX = orgs.NAME_MAX


@dataclass(frozen=True)
class PublicRequest:
    """What the form sends, as typed (strings straight from the form)."""

    name: str = ""
    email: str = ""
    subject: str = ""
    description: str = ""
    website: str = ""  # the honeypot: people leave it empty, form-filling bots do not


@dataclass(frozen=True)
class CleanRequest:
    name: str
    email: str
    subject: str
    description: str


def find_public_org(session: Session, slug: str) -> Organization:
    """Return the org whose form this is, or raise NotFound."""
    org = orgs.find_org(session, slug)
    if org is None:
        raise NotFound("There is no request form at this address. Check the link you followed.")
    return org


def clean_request(data: PublicRequest) -> CleanRequest:
    """Check every field at once; raise ValidationError naming each bad one."""
    errors: dict[str, str] = {}
    name = one_line(data.name)
    if len(name) > NAME_MAX:
        errors["name"] = f"keep your name to {NAME_MAX} characters or fewer"
    email = normalize_email(data.email)
    if email is None:
        errors["email"] = _email_problem(data.email)
    subject = description = ""
    try:
        subject = tickets.clean_subject(data.subject)
    except ValidationError as exc:
        errors.update(exc.errors)
    try:
        description = tickets.clean_body(data.description, field="description")
    except ValidationError as exc:
        errors.update(exc.errors)
    if errors or email is None:
        raise ValidationError(errors)
    return CleanRequest(name, email, subject, description)


def _email_problem(value: str) -> str:
    text = value.strip()
    if not text:
        return "enter your email address: we send the link to follow your request there"
    if len(text) > EMAIL_MAX:
        return f"keep the email address to {EMAIL_MAX} characters or fewer"
    return "enter a valid email address, like name@example.com"


def submit_request(session: Session, org: Organization, data: PublicRequest) -> Ticket | None:
    """Open a ticket from the public form; None when the submission is quietly dropped.

    Raises ValidationError for bad input. A filled honeypot or a deactivated account is
    dropped without a trace in the database; the caller answers exactly as for a ticket.
    """
    if data.website.strip():
        log.info("public_request_dropped org_id=%s reason=honeypot", org.id)
        return None
    clean = clean_request(data)
    with tenant_scope(session, org.id):
        try:
            return _open(session, org, clean)
        except IntegrityError:
            # The same new address submitted twice at once: the other insert won the race.
            session.rollback()
            return _open(session, org, clean)


def _open(session: Session, org: Organization, clean: CleanRequest) -> Ticket | None:
    user = orgs.ensure_user(session, clean.email, clean.name)
    if not user.active:
        session.rollback()
        log.info("public_request_dropped org_id=%s reason=inactive_account", org.id)
        return None
    member = orgs.ensure_member(session, org, user, Role.REQUESTER, actor_id=user.id)
    data = tickets.NewTicket(
        subject=clean.subject,
        body=clean.description,
        priority=Priority.NORMAL.value,
        # Read only when the address belongs to staff: open_ticket then files the ticket
        # for that same person (ensure_* find them; their role is left as it is).
        requester_email=user.email,
        requester_name=user.name,
    )
    ticket = tickets.open_ticket(session, org, member, data, Channel.WEB)
    log.info(
        "public_request_accepted org_id=%s ticket_id=%s requester_id=%s",
        org.id,
        ticket.id,
        user.id,
    )
    return ticket
