"""Request metrics: counters by route template, bounded labels, database errors, readiness,
and several processes summed through PROMETHEUS_MULTIPROC_DIR as under gunicorn."""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from helpdesk import create_app, gunicorn_conf, request_metrics
from helpdesk.config import Settings
from tests.observability.conftest import Samples, free_port, sample, scrape

REQUESTS = "helpdesk_http_requests_total"
DENIED = "helpdesk_http_denied_total"
ROOT = Path(__file__).resolve().parents[2]


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return sample(after, name, **labels) - sample(before, name, **labels)


def test_counters_move_by_route_method_and_status(
    app: Flask, client: FlaskClient, world, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "LINK_LIMIT_IP", "2 per minute")
    before = scrape(client)
    calls = [
        ("/login", client.get("/login").status_code),
        ("unmatched", client.get("/no/such/page").status_code),
        ("/api/v1/orgs/<org_slug>/tickets", client.get("/api/v1/orgs/alpha/tickets").status_code),
    ]
    for _ in range(3):
        calls.append(("/t/<path:token>", client.get("/t/" + "x" * 32).status_code))
    after = scrape(client)

    assert [status for _route, status in calls] == [200, 404, 401, 404, 404, 429]
    for (route, status), times in Counter(calls).items():
        labels = {"route": route, "method": "GET", "status": str(status)}
        assert delta(before, after, REQUESTS, **labels) == times, (route, status)
    assert delta(before, after, DENIED, status="404") == 3
    assert delta(before, after, DENIED, status="401") == 1
    assert delta(before, after, DENIED, status="429") == 1
    assert delta(before, after, DENIED, status="403") == 0
    duration = "helpdesk_http_request_duration_seconds_count"
    assert delta(before, after, duration, route="/login", method="GET") == 1
    bucket = "helpdesk_http_request_duration_seconds_bucket"
    assert delta(before, after, bucket, route="/login", method="GET", le="10.0") == 1


def test_denied_statuses_are_exposed_before_anything_is_denied(client: FlaskClient) -> None:
    samples = scrape(client)
    for status in ("401", "403", "404", "429"):
        assert (DENIED, frozenset({("status", status)})) in samples


def test_random_paths_and_methods_keep_labels_bounded(app: Flask, client: FlaskClient) -> None:
    pieces = [secrets.token_urlsafe(12) for _ in range(40)]
    for piece in pieces:
        client.get(f"/{piece}/x")
        client.open(f"/o/{piece}", method="PROPFIND")
    samples = scrape(client)
    labels = [dict(labels) for name, labels in samples if name == REQUESTS]
    templates = {rule.rule for rule in app.url_map.iter_rules()} | {"unmatched"}
    assert {label["route"] for label in labels} <= templates
    # Earlier tests in the same process may have counted API PUT/PATCH/DELETE calls too:
    # the bound is the standard methods plus "OTHER", and PROPFIND is never a label.
    assert {label["method"] for label in labels} <= {*request_metrics.METHODS, "OTHER"}
    assert "PROPFIND" not in {label["method"] for label in labels}
    assert not [p for p in pieces if any(p in str(label) for label in labels)]


def test_database_errors_are_counted(settings: Settings, client: FlaskClient) -> None:
    broken = dataclasses.replace(
        settings, database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone"
    )
    app = create_app(broken)
    try:
        before = scrape(client)
        assert app.test_client().get("/healthz").status_code == 503
        after = scrape(client)
    finally:
        app.extensions["helpdesk.engine"].dispose()
    assert delta(before, after, "helpdesk_db_errors_total") >= 1


def test_ready_gauge_follows_the_readiness_checks(settings: Settings, client: FlaskClient) -> None:
    healthy = scrape(client)
    assert sample(healthy, "helpdesk_ready") == 1
    assert sample(healthy, "helpdesk_ready_check", check="redis") == 1
    down = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(down)
    try:
        samples = scrape(app.test_client())
    finally:
        app.extensions["helpdesk.engine"].dispose()
    assert sample(samples, "helpdesk_ready") == 0
    assert sample(samples, "helpdesk_ready_check", check="redis") == 0
    assert sample(samples, "helpdesk_ready_check", check="database") == 1


# --- several processes --------------------------------------------------------------------

WRITER = """
import sys
from helpdesk import create_app

app = create_app()
client = app.test_client()
for _ in range(int(sys.argv[1])):
    assert client.get("/login").status_code == 200
assert client.get("/no-such-page").status_code == 404
if sys.argv[2] == "scrape":
    sys.stdout.write(client.get("/metrics").get_data(as_text=True))
app.extensions["helpdesk.engine"].dispose()
"""


def _run_writer(settings: Settings, metrics_dir: Path, requests: int, scrape: bool) -> str:
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "HELPDESK_ENV": "test",
        "SECRET_KEY": settings.secret_key,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "LOG_LEVEL": "WARNING",
    }
    args = [sys.executable, "-c", WRITER, str(requests), "scrape" if scrape else "-"]
    done = subprocess.run(  # noqa: S603 - our interpreter, our script
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_processes_write_their_own_files_and_metrics_sums_them(
    settings: Settings, tmp_path: Path
) -> None:
    gunicorn_conf.prepare_metrics_dir(tmp_path)
    (tmp_path / "counter_999999.db").write_bytes(b"stale from an earlier run")
    gunicorn_conf.prepare_metrics_dir(tmp_path)  # what the gunicorn master does at start
    assert list(tmp_path.iterdir()) == []

    _run_writer(settings, tmp_path, requests=3, scrape=False)
    body = _run_writer(settings, tmp_path, requests=2, scrape=True)

    pids = {p.stem.rsplit("_", 1)[1] for p in tmp_path.glob("counter_*.db")}
    assert len(pids) == 2  # one file set per process
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    login = {"route": "/login", "method": "GET", "status": "200"}
    assert sample(samples, REQUESTS, **login) == 5
    assert sample(samples, REQUESTS, route="unmatched", method="GET", status="404") == 2
    assert sample(samples, DENIED, status="404") == 2
    count = "helpdesk_http_request_duration_seconds_count"
    assert sample(samples, count, route="/login", method="GET") == 5
    assert sample(samples, "helpdesk_ready") == 1  # the scrape-time collectors still answer
    assert sample(samples, "helpdesk_queue_depth", queue="sla") == 0
