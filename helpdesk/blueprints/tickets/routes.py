"""Agent and requester ticket pages: list, new, detail, reply, field changes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, request, url_for
from flask_login import current_user
from redis.exceptions import RedisError
from werkzeug.wrappers import Response

from helpdesk.blueprints import gate, upload_forms
from helpdesk.blueprints.urls import safe_local_path
from helpdesk.db import get_session, read_only
from helpdesk.extensions import get_redis
from helpdesk.htmx import is_htmx, render, trigger
from helpdesk.models import BODY_MAX, Channel, Priority, Status, Ticket
from helpdesk.rendering import render_markdown
from helpdesk.services import (
    access_links,
    attachments,
    canned,
    ordering,
    orgs,
    presence,
    queries,
    sla_view,
    ticket_rows,
    tickets,
    views,
)
from helpdesk.services import bulk as bulk_service
from helpdesk.services.errors import ValidationError
from helpdesk.services.permissions import load_ticket
from helpdesk.services.validation import positive_int

bp = Blueprint("tickets", __name__, url_prefix="/o/<org_slug>")
gate.install(bp)
upload_forms.accept_uploads(
    bp, {"tickets.create", "tickets.comment"}, lambda _args: current_user.is_authenticated
)

BULK_FIELDS = ("status", "priority", "assignee_email", "add_tags", "remove_tags")


def _common(with_agents: bool = True) -> dict[str, Any]:
    """Context every ticket page shares; `with_agents=False` skips the agent picker's query."""
    member = gate.current_member()
    session = get_session()
    return {
        "org": gate.current_org(),
        "member": member,
        "statuses": [s.value for s in Status],
        "priorities": [p.value for p in Priority],
        "agents": orgs.staff_members(session) if member.is_staff and with_agents else [],
        "sorts": ordering.SORTS,
    }


@bp.get("/tickets")
@read_only
def index(org_slug: str) -> Response:
    args = {k: request.args.get(k, "") for k in queries.FILTER_KEYS}
    return _list(org_slug, args)


def _list(org_slug: str, args: dict[str, str], **extra: Any) -> Response:
    """The list page (or its rows) for these filters; `extra` carries form errors."""
    session, member = get_session(), gate.current_member()
    errors: dict[str, str] = {}
    try:
        filters = queries.parse_filter(args)
        cursor = request.args.get("cursor") or None
        page = queries.list_tickets(
            session, member, filters, cursor, _page_size(), ticket_rows.LIST
        )
    except ValidationError as exc:
        errors, page = exc.errors, queries.Page([], None)
    current: dict[str, Any] = {k: v for k, v in args.items() if v}
    next_url = None
    if page.next_cursor:
        next_url = url_for("tickets.index", org_slug=org_slug, cursor=page.next_cursor, **current)
    block = "more_rows" if request.args.get("cursor") else "rows"
    status = 422 if errors or extra.get("view_errors") else 200
    ctx = {"view_errors": {}, "view_name": "", "current_filters": current, **extra}
    # A fragment is the rows only: no view tabs, counters or agent picker to load.
    fragment = is_htmx()
    views_list = [] if fragment else views.list_views(session, member)
    counts = [] if fragment else views.view_counts(session, member, views_list)
    return render(
        "tickets/list.html", block=block, status=status, page=page, args=args, errors=errors,
        next_url=next_url, views=list(zip(views_list, counts, strict=True)),
        count_cap=views.COUNT_CAP, sla_choices=queries.SLA_CHOICES, **ctx,
        **_common(with_agents=not fragment),
    )  # fmt: skip


@bp.post("/tickets/views")
def save_view(org_slug: str) -> Response:
    filters = {k: request.form.get(f"filter_{k}", "") for k in queries.FILTER_KEYS}
    name, shared = request.form.get("name", ""), request.form.get("shared") == "1"
    try:
        views.save_view(get_session(), gate.current_member(), name, filters, shared)
    except ValidationError as exc:
        return _list(org_slug, filters, view_errors=exc.errors, view_name=name)
    params: dict[str, Any] = {k: v for k, v in filters.items() if v}
    return redirect(url_for("tickets.index", org_slug=org_slug, **params), code=303)


@bp.post("/tickets/views/<int:view_id>/delete")
def delete_view(org_slug: str, view_id: int) -> Response:
    views.delete_view(get_session(), gate.current_member(), view_id)
    return redirect(url_for("tickets.index", org_slug=org_slug), code=303)


def _page_size() -> int:
    return int(current_app.config["PAGE_SIZE"])


@bp.get("/tickets/new")
def new(org_slug: str) -> Response:
    return render("tickets/new.html", form={"priority": "normal"}, errors={},
                  upload=upload_forms.limits(), **_common())  # fmt: skip


@bp.post("/tickets")
def create(org_slug: str) -> Response:
    form = {k: request.form.get(k, "") for k in ("subject", "body", "priority", "requester_email",
                                                 "requester_name")}  # fmt: skip
    data = tickets.NewTicket(**form)
    session, files = get_session(), upload_forms.incoming_files()
    try:
        uploads = upload_forms.check_files(session, files)
        ticket = tickets.open_ticket(
            session, gate.current_org(), gate.current_member(), data, Channel.WEB, uploads
        )
    except upload_forms.FAILURES as exc:
        status, errors = upload_forms.failure(exc, bool(files))
        response = render("tickets/new.html", status=status, form=form, errors=errors,
                          upload=upload_forms.limits(), **_common())  # fmt: skip
        return upload_forms.retry_later(response)
    return redirect(url_for("tickets.show", org_slug=org_slug, number=ticket.number), code=303)


def _detail(
    number: int, status: int = 200, block: str | None = None, loaded: Ticket | None = None,
    **extra: Any,
) -> Response:  # fmt: skip
    """The ticket page, or one of its blocks: a block loads only what it shows.

    `loaded` is the ticket a service call of this request already loaded (and authorized).
    """
    session, member = get_session(), gate.current_member()
    ticket = loaded if loaded is not None else load_ticket(session, member, number)
    staff, part = member.is_staff, block if is_htmx() else None  # no JS: the whole page
    ctx: dict[str, Any] = {"ticket": ticket, "reply": {"body": "", "internal": False},
                           "reply_errors": {}, "field_errors": {}}  # fmt: skip
    if part in (None, "conversation"):
        ctx["comments"] = queries.conversation(session, member, ticket)
        ctx["canned"] = canned.canned_titles(session, member)
        ctx["files"] = upload_forms.by_comment(attachments.list_for_ticket(session, member, ticket))
        ctx["upload"] = upload_forms.limits()
    if part in (None, "side"):
        ctx["events"] = queries.history(session, ticket) if staff else []
        ctx["others"] = queries.requester_tickets(session, ticket) if staff else []
        ctx["sla_timeline"] = sla_view.timeline(session, ticket) if staff else []
        ctx["active_links"] = access_links.active_link_count(session, ticket) if staff else 0
    ctx.update(_common(with_agents=part != "conversation"), **extra)
    return render("tickets/detail.html", block=block, status=status, **ctx)


@bp.get("/tickets/<int:number>")
@read_only
def show(org_slug: str, number: int) -> Response:
    return _detail(number)


@bp.post("/tickets/<int:number>/comments")
def comment(org_slug: str, number: int) -> Response:
    body = request.form.get("body", "")
    internal = request.form.get("internal") == "1"
    set_status = request.form.get("set_status") or None
    seen_up_to = positive_int(request.form.get("seen_up_to", ""))
    reply = {"body": body, "internal": internal}
    session, member, files = get_session(), gate.current_member(), upload_forms.incoming_files()
    ticket = load_ticket(session, member, number) if files else None
    try:
        uploads = upload_forms.check_files(session, files, ticket)
        added = tickets.add_comment(session, member, number, body, internal, Channel.WEB,
                                    set_status, seen_up_to, uploads)  # fmt: skip
    except upload_forms.FAILURES as exc:
        status, errors = upload_forms.failure(exc, bool(files))
        response = _detail(number, status, "conversation", reply=reply, reply_errors=errors)
        return upload_forms.retry_later(response)
    if not is_htmx():
        return redirect(url_for("tickets.show", org_slug=org_slug, number=number), code=303)
    response = _detail(number, block="conversation", loaded=tickets.ticket_of(session, added))
    toast = "Note added" if internal else "Reply sent"
    return trigger(response, toast=toast + upload_forms.with_files(len(files)))


@bp.post("/tickets/<int:number>/canned")
def insert_canned(org_slug: str, number: int) -> Response:
    """The reply box with a canned reply appended, placeholders filled (nothing saved)."""
    session, member = get_session(), gate.current_member()
    ticket = load_ticket(session, member, number)
    draft = request.form.get("body", "")
    canned_id = positive_int(request.form.get("canned_id", ""))
    if canned_id is None:
        return render("tickets/_reply_body.html", body=draft)
    text = canned.fill(session, member, canned_id, ticket)
    body = f"{draft.rstrip()}\n\n{text}" if draft.strip() else text
    return render("tickets/_reply_body.html", body=body)


@bp.post("/preview")
def preview(org_slug: str) -> Response:
    """Render a draft exactly as it will be stored (nothing is saved)."""
    body = request.form.get("body", "")[:BODY_MAX]
    return render("tickets/_preview.html", html=render_markdown(body))


@bp.post("/tickets/<int:number>/presence")
def presence_beat(org_slug: str, number: int) -> Response:
    """Heartbeat from an open ticket page; answers who else is there (staff only)."""
    session, member = get_session(), gate.current_member()
    ticket = load_ticket(session, member, number)
    others: list[tuple[str, str]] = []
    if member.is_staff:
        mode = "replying" if request.form.get("replying") == "1" else "viewing"
        try:
            marks = presence.heartbeat(get_redis(), member.org_id, ticket.id, member.user_id, mode)
        except RedisError:
            marks = []  # presence is a courtesy: never an error on the ticket page
        others = orgs.display_names(session, marks)
    return render("tickets/_presence.html", others=others)


@bp.post("/tickets/<int:number>/fields")
def fields(org_slug: str, number: int) -> Response:
    changes = {k: request.form[k] for k in ("status", "priority", "assignee_email", "tags")
               if k in request.form}  # fmt: skip
    try:
        events = tickets.update_fields(get_session(), gate.current_member(), number, changes)
    except ValidationError as exc:
        return _detail(number, 422, "side", field_errors=exc.errors)
    if not is_htmx():
        return redirect(url_for("tickets.show", org_slug=org_slug, number=number), code=303)
    response = _detail(number, block="side")
    return trigger(response, toast=f"{len(events)} change(s) saved" if events else "No changes")


@bp.post("/tickets/<int:number>/revoke-links")
def revoke_links(org_slug: str, number: int) -> Response:
    """Revoke every emailed link to this ticket (staff); the requester can be sent a new one."""
    count = access_links.revoke_links(get_session(), gate.current_member(), number)
    if not is_htmx():
        return redirect(url_for("tickets.show", org_slug=org_slug, number=number), code=303)
    toast = f"Revoked {count} link{'s' if count != 1 else ''}" if count else "No links to revoke"
    return trigger(_detail(number, block="side"), toast=toast)


@bp.post("/tickets/bulk")
def bulk(org_slug: str) -> Response:
    numbers = request.form.getlist("tickets")
    changes: dict[str, Any] = {k: request.form[k] for k in BULK_FIELDS if request.form.get(k)}
    if changes.get("assignee_email") == "none":
        changes["assignee_email"] = None
    back = safe_local_path(request.form.get("next")) or url_for("tickets.index", org_slug=org_slug)
    try:
        result = bulk_service.bulk_update(get_session(), gate.current_member(), numbers, changes)
    except ValidationError as exc:
        return render("tickets/bulk.html", block="result", status=422, errors=exc.errors,
                      tickets=[], back=back, **_common())  # fmt: skip
    if not is_htmx():
        return redirect(back, code=303)
    changed = [t.number for t in result.tickets]
    rows = queries.list_rows(get_session(), gate.current_member(), changed)
    response = render("tickets/bulk.html", block="result", errors={}, tickets=rows,
                      back=back, **_common())  # fmt: skip
    count = len(result.tickets)
    return trigger(response, toast=f"Updated {count} ticket{'s' if count != 1 else ''}")
