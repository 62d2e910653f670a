"""The public request form at /o/<org_slug>/request: no login, CSRF on, works without JS.

Not behind the org gate on purpose: strangers write in here. The only org data these pages
show is the org's display name. Every accepted submission redirects (303) to the same
thanks page, which carries no ids, so the answer never says whether the address was known.
Rate limits live in `helpdesk/ratelimits.py` (per client address and per submitted address).
"""

from __future__ import annotations

import math
import time
from typing import Any

from flask import Blueprint, current_app, redirect, request, url_for
from flask_limiter.errors import RateLimitExceeded
from redis.exceptions import RedisError
from werkzeug.wrappers import Response

from helpdesk.db import get_session
from helpdesk.errors import error_response
from helpdesk.htmx import render
from helpdesk.models import BODY_MAX, SUBJECT_MAX, Organization
from helpdesk.services import public_requests
from helpdesk.services.errors import NotFound, ValidationError
from helpdesk.services.validation import EMAIL_MAX

bp = Blueprint("request_form", __name__, url_prefix="/o/<org_slug>/request")

FIELDS = ("name", "email", "subject", "description")
MAX_LENGTHS = {"name": public_requests.NAME_MAX, "email": EMAIL_MAX, "subject": SUBJECT_MAX,
               "description": BODY_MAX}  # fmt: skip


def _org(org_slug: str) -> Organization:
    return public_requests.find_public_org(get_session(), org_slug)


def _form_page(org: Organization, status: int = 200, **extra: Any) -> Response:
    ctx: dict[str, Any] = {
        "public_org": org,
        "form": dict.fromkeys(FIELDS, ""),
        "errors": {},
        "notice": None,
        "limits": MAX_LENGTHS,
        **extra,
    }
    return render("request_form/form.html", status=status, **ctx)


def _typed() -> dict[str, str]:
    """What the person typed, to show again (never the honeypot)."""
    return {name: request.form.get(name, "") for name in FIELDS}


@bp.get("")
def show(org_slug: str) -> Response:
    return _form_page(_org(org_slug))


@bp.post("")  # rate limits: helpdesk/ratelimits.py
def submit(org_slug: str) -> Response:
    org = _org(org_slug)
    typed = _typed()
    data = public_requests.PublicRequest(**typed, website=request.form.get("website", ""))
    try:
        public_requests.submit_request(get_session(), org, data)
    except ValidationError as exc:
        return _form_page(org, status=422, form=typed, errors=exc.errors)
    return redirect(url_for("request_form.thanks", org_slug=org.slug), code=303)


@bp.get("/thanks")
def thanks(org_slug: str) -> Response:
    return render("request_form/thanks.html", public_org=_org(org_slug))


@bp.errorhandler(RateLimitExceeded)
def _too_many(_exc: RateLimitExceeded) -> Response:
    """429 with the form and its text kept, saying when the form takes requests again."""
    wait = _seconds_until_reset()
    notice = (
        "You have sent several requests in a short time, so this one was not sent. "
        f"To keep the form free of spam, please try again {_in_words(wait)}."
    )
    return _refused(429, notice, wait)


@bp.errorhandler(RedisError)
def _limits_unavailable(_exc: RedisError) -> Response:
    """503 while the rate-limit store is down (fail closed), with the text kept."""
    notice = (
        "The form cannot take requests for a moment, so this one was not sent. "
        "Please try again in a minute."
    )
    return _refused(503, notice, 30)


def _refused(status: int, notice: str, retry_after: int) -> Response:
    response: Response
    try:
        org = _org((request.view_args or {}).get("org_slug", ""))
    except NotFound:
        response = error_response(status, notice)
    else:
        response = _form_page(org, status=status, form=_typed(), notice=notice)
    response.headers["Retry-After"] = str(retry_after)
    return response


def _seconds_until_reset() -> int:
    current = current_app.extensions["helpdesk.limiter"].current_limit
    if current is None:
        return 60
    return max(1, math.ceil(current.reset_at - time.time()))


def _in_words(seconds: int) -> str:
    """Say how long to wait, rounded up so the person is not refused again."""
    if seconds <= 60:
        return "in a minute"
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return f"in {minutes} minutes"
    return f"in about {math.ceil(minutes / 60)} hours"
