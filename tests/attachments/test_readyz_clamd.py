"""/readyz checks clamd when CLAMD_URL is configured: uploads are not downloadable without it."""

from __future__ import annotations

from flask import Flask

from tests.attachments.clamd_fixture import Clamd


def test_readyz_reports_clamd(app: Flask, app_clamd: str, clamd: Clamd) -> None:
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["checks"]["clamd"] == {"ok": True, "detail": "ok"}
    with clamd.stopped():
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json["checks"]["clamd"]["detail"] == "clamd does not answer PING at CLAMD_URL"
    assert client.get("/readyz").status_code == 200


def test_readyz_has_no_clamd_check_without_clamd_url(app: Flask) -> None:
    assert "clamd" not in app.test_client().get("/readyz").json["checks"]
