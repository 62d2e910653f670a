"""Emailed ticket links (`/t/<token>`) and the requester's token-free ticket page (`/r/…`).

GET /t/<token> writes nothing to the database (mail scanners open links too): a valid link
puts a grant for its ticket into the session and answers 303 to /r/<org>/<number>, so the
token does not stay in the address bar, the history or a Referer. Every response here
carries `Referrer-Policy: no-referrer` and `Cache-Control: no-store`. A bad link gets a
page saying what to do: 404 not valid, 410 expired (a fresh link is emailed, at most once
an hour), 410 revoked. The per-address rate limit on /t/ is in helpdesk/ratelimits.py.

/r/<org>/<number> serves whoever holds a grant for that ticket — its token re-checked on
every request — or a logged-in member who may see the ticket (staff are sent to the agent
page on GET). Anyone else gets the login page on GET and 404 on POST, whether or not the
org or ticket exists: nothing here reveals what exists to a caller without access.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, NoReturn

from flask import Blueprint, abort, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from helpdesk.blueprints import upload_forms
from helpdesk.blueprints.links import grants
from helpdesk.blueprints.tickets import attachments as attachment_views
from helpdesk.db import get_session
from helpdesk.extensions import get_redis
from helpdesk.htmx import is_htmx, render, trigger
from helpdesk.models import Attachment, Channel, Membership, Organization, Ticket
from helpdesk.services import access_links, attachments, orgs, tickets
from helpdesk.services.access_links import Grant, LinkCheck, LinkState
from helpdesk.services.errors import ValidationError
from helpdesk.services.permissions import can_view_ticket
from helpdesk.services.validation import positive_int
from helpdesk.tenancy import set_tenant

log = logging.getLogger(__name__)

bp = Blueprint("links", __name__)


def _may_upload(view_args: dict[str, Any]) -> bool:
    """Files are received from a logged-in user or a browser holding a link to this ticket."""
    if current_user.is_authenticated:
        return True
    return grants.find(view_args.get("org_slug", ""), view_args.get("number", 0)) is not None


upload_forms.accept_uploads(bp, {"links.reply"}, _may_upload)

REFUSALS = {
    LinkState.UNKNOWN: (
        404, "Link not valid", "This link is not valid. Ask the help desk for a new link."
    ),
    LinkState.EXPIRED: (
        410, "Link expired", "This link has expired — we've emailed you a fresh one."
    ),
    LinkState.REVOKED: (410, "Link revoked", "This link was revoked — ask for a new one."),
}  # fmt: skip


@dataclass(frozen=True)
class Access:
    """Who acts on which ticket; `link` is None for a logged-in member."""

    member: Membership
    ticket: Ticket
    org: Organization
    link: LinkCheck | None


@bp.after_request
def _private(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/t/<path:token>")  # any shape: a mangled link still gets the clear page
def open_link(token: str) -> Response:
    check = access_links.check_token(get_session(), token)
    if check.state is not LinkState.VALID or check.member is None or check.ticket is None:
        return _refused(check)
    grants.remember(Grant.of(check))
    target = url_for("links.ticket", org_slug=check.member.org.slug, number=check.ticket.number)
    return redirect(target, code=303)


def _refused(check: LinkCheck) -> Response:
    if check.state is LinkState.EXPIRED:
        access_links.request_fresh_link(get_redis(), check)
    status, title, message = REFUSALS[check.state]
    return render("links/problem.html", status=status, title=title, message=message)


def _access(org_slug: str, number: int) -> Access | Response:
    """Load the ticket and decide who may act on it; a Response when nobody here may."""
    grant = grants.find(org_slug, number)
    if grant is None and not current_user.is_authenticated:
        return _log_in_first()  # before any lookup: the same answer for every org and number
    session = get_session()
    org = orgs.find_org(session, org_slug)
    ticket = None
    if org is not None:
        set_tenant(session, org.id)
        ticket = access_links.find_ticket(session, number)
    if grant is not None:
        check = access_links.check_grant(session, grant, ticket) if ticket else access_links.UNKNOWN
        if check.state is LinkState.VALID and check.member is not None and ticket is not None:
            return Access(check.member, ticket, check.member.org, check)
        grants.forget(grant)  # a dead link's grant is dropped: the next visit starts afresh
        return _refused(check)
    member = orgs.find_membership(session, org.id, current_user.id) if org else None
    if ticket is None or member is None or not member.user.active:
        _denied()
    if not can_view_ticket(member, ticket):
        _denied()
    return Access(member, ticket, member.org, None)


def _denied() -> NoReturn:
    route = request.url_rule.rule if request.url_rule else None  # never the raw path
    log.info("tenancy.denied", extra={"event": "tenancy.denied", "route": route,
                                      "user_id": current_user.id})  # fmt: skip
    abort(404)


def _log_in_first() -> Response:
    if request.method == "GET":
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    abort(404)


def _page(access: Access, status: int = 200, **extra: Any) -> Response:
    ctx: dict[str, Any] = {
        "org_name": access.org.name,
        "org_slug": access.org.slug,
        "ticket": access.ticket,
        "comments": access_links.public_conversation(get_session(), access.ticket),
        "files": _public_files(access),
        "upload": upload_forms.limits(),
        "reply": {"body": ""},
        "reply_errors": {},
        "solve_errors": {},
        **extra,
    }
    return render("links/ticket.html", block="ticket", status=status, **ctx)


def _public_files(access: Access) -> dict[int | None, list[Attachment]]:
    """The ticket's files this page shows: never one of an internal note, whoever asks."""
    found = attachments.list_for_ticket(get_session(), access.member, access.ticket)
    return upload_forms.by_comment(a for a in found if not a.internal)


def _back(access: Access) -> Response:
    target = url_for("links.ticket", org_slug=access.org.slug, number=access.ticket.number)
    return redirect(target, code=303)


@bp.get("/r/<org_slug>/<int:number>")
def ticket(org_slug: str, number: int) -> Response:
    access = _access(org_slug, number)
    if isinstance(access, Response):
        return access
    if access.link is None and access.member.is_staff:
        return redirect(url_for("tickets.show", org_slug=org_slug, number=number), code=303)
    return _page(access)


@bp.post("/r/<org_slug>/<int:number>/comments")
def reply(org_slug: str, number: int) -> Response:
    access = _access(org_slug, number)
    if isinstance(access, Response):
        return access
    body = request.form.get("body", "")
    seen_up_to = positive_int(request.form.get("seen_up_to", ""))
    session, files = get_session(), upload_forms.incoming_files()
    if access.link is not None:
        access_links.record_use(access.link)  # committed with the reply, or not at all
    try:
        uploads = upload_forms.check_files(session, files, access.ticket)
        tickets.add_comment(session, access.member, number, body, False, Channel.WEB,
                            None, seen_up_to, uploads)  # fmt: skip
    except upload_forms.FAILURES as exc:
        session.rollback()
        status, errors = upload_forms.failure(exc, bool(files))
        response = _page(access, status, reply={"body": body}, reply_errors=errors)
        return upload_forms.retry_later(response)
    if not is_htmx():
        return _back(access)
    return trigger(_page(access), toast="Reply sent" + upload_forms.with_files(len(files)))


@bp.post("/r/<org_slug>/<int:number>/solve")
def solve(org_slug: str, number: int) -> Response:
    access = _access(org_slug, number)
    if isinstance(access, Response):
        return access
    session = get_session()
    if access.link is not None:
        access_links.record_use(access.link)
    try:
        events = access_links.solve_by_requester(session, access.member, number)
    except ValidationError as exc:
        session.rollback()
        return _page(access, 422, solve_errors=exc.errors)
    if not is_htmx():
        return _back(access)
    message = "Marked as solved. Thank you!" if events else "This ticket is already solved"
    return trigger(_page(access), toast=message)


@bp.get("/r/<org_slug>/<int:number>/attachments/<int:attachment_id>/download")
def attachment_download(org_slug: str, number: int, attachment_id: int) -> Response:
    """A file of this ticket (never of an internal note), for whoever may see the page."""
    access = _access(org_slug, number)
    if isinstance(access, Response):
        return access
    return attachment_views.download_or_error(access.member, attachment_id, access.ticket)


@bp.get("/r/<org_slug>/<int:number>/attachments/<int:attachment_id>/status")
def attachment_status(org_slug: str, number: int, attachment_id: int) -> Response:
    """The scan badge of one of this ticket's files (it polls itself until settled)."""
    access = _access(org_slug, number)
    if isinstance(access, Response):
        return access
    attachment = attachments.load_public_on_ticket(
        get_session(), access.member, access.ticket, attachment_id
    )
    return attachment_views.badge(attachment)
