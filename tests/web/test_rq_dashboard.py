"""/ops/rq: rq-dashboard for site operators only; state changes need POST and CSRF."""

from __future__ import annotations

import pytest
from flask import Flask
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy.orm import Session

from helpdesk.blueprints.ops.rq import build_dashboard
from helpdesk.models import User
from helpdesk.security_headers import CSP, RQ_DASHBOARD_CSP
from tests.browser import Browser, as_user


@pytest.fixture
def redis(app: Flask) -> Redis:
    conn: Redis = app.extensions["helpdesk.redis"]
    return conn


def make_operator(session: Session, member, value: bool = True) -> User:
    user = session.get(User, member.user_id)
    assert user is not None
    user.is_operator = value
    session.commit()
    return user


@pytest.fixture
def operator(app: Flask, session: Session, world, password: str) -> Browser:
    make_operator(session, world["alpha"]["agent"])
    return as_user(app, "agent@alpha.test", password)


@pytest.fixture
def failed_job_id(redis: Redis) -> str:
    q = Queue("default", connection=redis)
    job = q.enqueue("operator.truediv", args=(1, 0))
    SimpleWorker([q], connection=redis).work(burst=True)
    assert job.id in q.failed_job_registry
    return job.id


def csrf_cookie(browser: Browser) -> str:
    cookie = browser.client.get_cookie("_csrf_token", path="/ops/rq")
    assert cookie is not None, "the dashboard must hand its JavaScript a CSRF token"
    return cookie.value


DASHBOARD_URLS = [
    "/ops/rq",
    "/ops/rq/",
    "/ops/rq/0/view/workers",
    "/ops/rq/0/view/jobs",
    "/ops/rq/0/data/queues.json",
    "/ops/rq/0/data/workers.json",
    "/ops/rq/static/js/jquery-3.5.1.min.js",
]


@pytest.mark.parametrize("url", DASHBOARD_URLS)
def test_operator_sees_the_dashboard(operator: Browser, url: str) -> None:
    response = operator.get(url)
    assert response.status_code == 200, (url, response.status_code)
    if response.mimetype == "text/html":
        assert response.headers["Content-Security-Policy"] == RQ_DASHBOARD_CSP
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"


def test_pages_link_inside_the_mount_and_show_queues(operator: Browser, redis: Redis) -> None:
    Queue("notify", connection=redis).enqueue("operator.add", args=(1, 2))
    html = operator.get("/ops/rq/").get_data(as_text=True)
    assert "RQ dashboard" in html
    assert 'href="/ops/rq/0/view/workers"' in html
    assert 'src="/ops/rq/static/js/jquery-3.5.1.min.js"' in html
    queues = operator.get("/ops/rq/0/data/queues.json").json
    assert {q["name"]: q["count"] for q in queues["queues"]}["notify"] == 1


def test_csrf_cookie_is_scoped_to_the_dashboard(operator: Browser, app: Flask) -> None:
    response = operator.get("/ops/rq/")
    header = next(h for h in response.headers.getlist("Set-Cookie") if "_csrf_token" in h)
    assert "Path=/ops/rq" in header and "SameSite=Strict" in header
    assert "HttpOnly" not in header  # rq-dashboard's JavaScript must read it
    assert csrf_cookie(operator)


@pytest.mark.parametrize("email", ["admin@alpha.test", "agent@beta.test", "requester@alpha.test"])
def test_staff_without_the_operator_flag_get_404(
    app: Flask, world, password: str, email: str
) -> None:
    browser = as_user(app, email, password)
    for url in [*DASHBOARD_URLS, "/ops/rq/requeue/default"]:
        response = browser.get(url)
        assert response.status_code == 404, url
        assert response.headers["Content-Security-Policy"] == CSP  # no relaxed policy
        assert "_csrf_token" not in " ".join(response.headers.getlist("Set-Cookie"))
    response = browser.post("/ops/rq/requeue/default", htmx=True)  # even with our CSRF token
    assert response.status_code == 404


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_anonymous_gets_404(client, method: str) -> None:
    for url in ("/ops/rq/", "/ops/rq/requeue/default", "/ops/rq/0/data/queues.json"):
        assert client.open(url, method=method).status_code == 404


def test_revoking_the_flag_closes_the_dashboard_at_once(
    operator: Browser, session: Session, world
) -> None:
    assert operator.get("/ops/rq/").status_code == 200
    make_operator(session, world["alpha"]["agent"], value=False)
    assert operator.get("/ops/rq/").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/ops/rq/requeue/default",
        "/ops/rq/queue/default/failed/empty",
        "/ops/rq/queue/default/compact",
        "/ops/rq/job/{job}/requeue",
        "/ops/rq/job/{job}/delete",
    ],
)
def test_state_changes_refuse_get(
    operator: Browser, redis: Redis, failed_job_id: str, path: str
) -> None:
    response = operator.get(path.format(job=failed_job_id))
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} <= {"POST", "OPTIONS"}
    assert failed_job_id in Queue("default", connection=redis).failed_job_registry


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_post_without_a_valid_csrf_token_is_refused(
    operator: Browser, redis: Redis, failed_job_id: str, token: str | None
) -> None:
    headers = {"X-CSRFToken": token} if token else {}
    for path in ("/ops/rq/requeue/default", f"/ops/rq/job/{failed_job_id}/delete"):
        response = operator.client.post(path, headers=headers)
        assert response.status_code == 400
        assert "did not come from this site" in response.get_data(as_text=True)
    assert failed_job_id in Queue("default", connection=redis).failed_job_registry


def test_post_with_the_cookie_token_requeues(
    operator: Browser, redis: Redis, failed_job_id: str
) -> None:
    operator.get("/ops/rq/0/view/jobs")
    headers = {"X-CSRFToken": csrf_cookie(operator)}  # what the dashboard's jQuery sends
    response = operator.client.post("/ops/rq/requeue/default", headers=headers)
    assert response.status_code == 200 and response.json == {"count": 1, "status": "OK"}
    queue = Queue("default", connection=redis)
    assert queue.job_ids == [failed_job_id] and queue.failed_job_registry.count == 0


def test_post_to_a_read_only_page_is_405(operator: Browser) -> None:
    headers = {"X-CSRFToken": csrf_cookie_after_visit(operator)}
    response = operator.client.post("/ops/rq/0/data/queues.json", headers=headers)
    assert response.status_code == 405


def csrf_cookie_after_visit(browser: Browser) -> str:
    browser.get("/ops/rq/")
    return csrf_cookie(browser)


@pytest.mark.parametrize(
    "url", ["/ops/rq/1/view/jobs", "/ops/rq/0/view/job/no-such-job", "/ops/rq/nowhere"]
)
def test_unknown_instances_jobs_and_pages_are_404(operator: Browser, url: str) -> None:
    assert operator.get(url).status_code == 404


def test_the_dashboard_never_shows_redis_credentials(redis: Redis) -> None:
    dashboard = build_dashboard("redis://user:hunter2@127.0.0.1:6379/0", redis)
    html = dashboard.test_client().get("/").get_data(as_text=True)
    assert "redis://127.0.0.1:6379/0" in html
    assert "hunter2" not in html and "user:" not in html


def test_the_rest_of_the_site_keeps_the_strict_policy(operator: Browser) -> None:
    assert operator.get("/login", follow_redirects=True).headers["Content-Security-Policy"] == CSP
