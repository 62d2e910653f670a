"""Admin pages for SLA policies (one per priority) and business calendars."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for
from werkzeug.wrappers import Response

from helpdesk.blueprints.admin import forms
from helpdesk.blueprints.admin.base import admin, bp, page_context
from helpdesk.db import get_session, utcnow
from helpdesk.htmx import render
from helpdesk.services import sla_admin
from helpdesk.services.errors import Conflict, ValidationError


def _sla_page(status: int = 200, **extra: Any) -> Response:
    session, member = get_session(), admin()
    policies = sla_admin.list_policies(session, member)
    values = {priority: forms.policy_values(policy) for priority, policy in policies.items()}
    values.update(extra.pop("values", {}))
    ctx = page_context(
        "sla",
        policies=policies,
        values=values,
        calendars=sla_admin.list_calendars(session, member),
        always=sla_admin.ALWAYS,
        **extra,
    )
    return render("admin/sla.html", status=status, **ctx)


@bp.get("/sla")
def sla(org_slug: str) -> Response:
    return _sla_page()


@bp.post("/sla/<priority>")
def save_policy(org_slug: str, priority: str) -> Response:
    data = forms.policy_input(request.form)
    try:
        sla_admin.save_policy(get_session(), admin(), priority, data, utcnow())
    except ValidationError as exc:
        typed = {priority: forms.policy_form_values(request.form)}
        return _sla_page(422, values=typed, row_errors={priority: exc.errors})
    return redirect(url_for("admin.sla", org_slug=org_slug, _anchor=f"sla-{priority}"), code=303)


@bp.post("/sla/<priority>/delete")
def delete_policy(org_slug: str, priority: str) -> Response:
    sla_admin.delete_policy(get_session(), admin(), priority)
    return redirect(url_for("admin.sla", org_slug=org_slug), code=303)


def _calendars_page(status: int = 200, **extra: Any) -> Response:
    session, member = get_session(), admin()
    ctx = page_context(
        "calendars",
        calendars=sla_admin.list_calendars(session, member),
        usage=sla_admin.calendar_usage(session, member),
        days=forms.DAY_NAMES,
        **{"form": forms.calendar_values(None), **extra},
    )
    return render("admin/calendars.html", status=status, **ctx)


@bp.get("/calendars")
def calendars(org_slug: str) -> Response:
    return _calendars_page()


@bp.post("/calendars")
def create_calendar(org_slug: str) -> Response:
    try:
        sla_admin.create_calendar(get_session(), admin(), forms.calendar_input(request.form))
    except ValidationError as exc:
        return _calendars_page(422, form=request.form.to_dict(), errors=exc.errors)
    return redirect(url_for("admin.calendars", org_slug=org_slug), code=303)


def _calendar_page(calendar_id: int, status: int = 200, **extra: Any) -> Response:
    session, member = get_session(), admin()
    calendar = sla_admin.get_calendar(session, member, calendar_id)
    ctx = page_context(
        "calendars",
        calendar=calendar,
        used_by=sla_admin.calendar_usage(session, member).get(calendar.id, []),
        form=extra.pop("form", None) or forms.calendar_values(calendar),
        days=forms.DAY_NAMES,
        **extra,
    )
    return render("admin/calendar.html", status=status, **ctx)


@bp.get("/calendars/<int:calendar_id>")
def calendar(org_slug: str, calendar_id: int) -> Response:
    return _calendar_page(calendar_id)


@bp.post("/calendars/<int:calendar_id>")
def update_calendar(org_slug: str, calendar_id: int) -> Response:
    data = forms.calendar_input(request.form)
    try:
        sla_admin.update_calendar(get_session(), admin(), calendar_id, data)
    except ValidationError as exc:
        return _calendar_page(calendar_id, 422, form=request.form.to_dict(), errors=exc.errors)
    return redirect(url_for("admin.calendar", org_slug=org_slug, calendar_id=calendar_id), code=303)


@bp.post("/calendars/<int:calendar_id>/delete")
def delete_calendar(org_slug: str, calendar_id: int) -> Response:
    try:
        sla_admin.delete_calendar(get_session(), admin(), calendar_id)
    except Conflict as exc:
        return _calendar_page(calendar_id, 409, conflict=str(exc))
    return redirect(url_for("admin.calendars", org_slug=org_slug), code=303)
