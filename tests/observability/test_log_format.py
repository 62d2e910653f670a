"""The log line format: one JSON object per line whatever the input, redaction, set-up."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from flask import Flask

from helpdesk import create_app, logs
from helpdesk.config import Settings
from tests.observability.conftest import CapturedLines

HOSTILE = 'quote" back\\slash\nnew line\r\x00nul\x1b[31m \u2028 <script>' + "A" * 10_000


@pytest.fixture
def logger() -> logging.Logger:
    return logging.getLogger("helpdesk.tests.observability")


@pytest.mark.parametrize(
    ("text", "gone", "kept"),
    [
        ("login failed for Pat.Doe@Example.COM", "Pat.Doe@Example.COM", "[email]"),
        ("GET /r/x?email=pat%40example.com", "pat%40example.com", "[email]"),
        ("header Authorization: Bearer abc.def.ghi123", "abc.def.ghi123", "Authorization: "),
        ("sent bearer hdk_AbCdEf0123456789", "AbCdEf0123456789", "bearer [redacted]"),
        ("form password=hunter2&next=/o", "hunter2", "password=[redacted]"),
        ("{'new_password': 'hunter2', 'token_id': 5}", "hunter2", "'token_id': 5"),
        ('{"csrf_token": "IjA4ZjM.abc"}', "IjA4ZjM", '"csrf_token": "[redacted]"'),
        ("Cookie: session=.eJw1jDEK; remember_token=7|abc", "eJw1jDEK", "Cookie: [redacted]"),
        (
            "GET /t/AbCdEfGhIjKlMnOpQrStUvWx01 HTTP/1.1",
            "AbCdEfGhIjKlMnOpQrStUvWx01",
            "/t/[redacted]",
        ),
        ("POST /reset/AbCdEfGhIjKlMnOpQrStUvWx", "AbCdEfGhIjKlMnOpQrStUvWx", "/reset/[redacted]"),
        ("signed v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=", "K5oZfzN95Z9U", "v1,[redacted]"),
        ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqr", "whsec_[redacted]"),
        ("client 203.0.113.77 blocked", "203.0.113.77", "203.0.113.0/24"),
        ("client 2001:db8:85a3:7:8a2e:370:7334:1 blocked", "8a2e", "2001:db8:85a3::/48"),
    ],
)
def test_redact_masks_what_identifies_or_authorizes(text: str, gone: str, kept: str) -> None:
    masked = logs.redact(text)
    assert gone not in masked and kept in masked
    assert logs.redact(masked) == masked  # applying it twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "delivery_failed delivery_id=3 token_id=9 attempts=2",
        "sla_sweep fired=3 at 10:20:30 took 0.25 s",
        "CIDR 127.0.0.0/8 allowed; version 3.1.9",
        "attachment_infected signature=Eicar-Test-Signature quarantined=True",
        "http.request route=/t/<path:token> and /reset/<path:token>",
    ],
)
def test_redact_leaves_ids_times_and_names_alone(text: str) -> None:
    assert logs.redact(text) == text


def test_every_line_is_one_json_object_whatever_the_input(
    logger: logging.Logger, log_lines: CapturedLines
) -> None:
    logger.warning("hostile %s", HOSTILE, extra={"reason": HOSTILE, "user_agent": HOSTILE})
    try:
        raise ValueError("boom\nfor pat@example.com")
    except ValueError:
        logger.exception("it_failed job=%s", HOSTILE[:40])
    logger.info("bad %s %s format", "only one")  # a broken format string still logs
    lines = log_lines.raw()
    assert len(lines) == 3
    first, second, third = (json.loads(line) for line in lines)
    assert first["event"].startswith("hostile") and len(first["reason"]) < 2_100
    assert "\n" not in lines[0] and "\x00" not in lines[0] and "\u2028" not in lines[0]
    assert second["event"] == "it_failed" and "ValueError: boom" in second["exc"]
    assert "pat@example.com" not in lines[1] and "[email]" in second["exc"]
    assert third["event"] == "bad" and third["message"] == "bad %s %s format"


def test_only_allow_listed_extras_are_written(
    logger: logging.Logger, log_lines: CapturedLines
) -> None:
    logger.info(
        "auth.login_failed",
        extra={"event": "auth.login_failed", "user_id": 3, "email": "x@y.test", "body": "hi",
               "password": "pw-123456", "reason": "bad_password", "ticket_ids": [1, 2]},
    )  # fmt: skip
    (line,) = log_lines.parsed()
    assert line["event"] == "auth.login_failed" and line["user_id"] == 3
    assert line["reason"] == "bad_password" and line["ticket_ids"] == [1, 2]
    assert not {"email", "body", "password", "message"} & set(line)
    assert "x@y.test" not in log_lines.text and "pw-123456" not in log_lines.text


def test_key_value_messages_get_their_first_word_as_event(
    logger: logging.Logger, log_lines: CapturedLines
) -> None:
    logger.info("delivery_failed delivery_id=%s attempts=%s", 4, 2)
    logger.info("Starting gunicorn 23.0.0")
    first, second = log_lines.parsed()
    assert first["event"] == "delivery_failed"
    assert first["message"] == "delivery_failed delivery_id=4 attempts=2"
    assert second["event"] == "Starting gunicorn 23.0.0" and "message" not in second
    assert first["request_id"] is None and first["org_id"] is None


@pytest.mark.parametrize(
    "raw",
    [
        "x" * 65,  # too long
        "short",  # too short
        "evil\nX-Injected: 1",
        'req-"quoted"-0001',
        "req-\x00\x1b-00001",
        "req id with spaces",
    ],
)
def test_malformed_request_ids_are_replaced_never_logged(
    client, log_lines: CapturedLines, raw: str
) -> None:
    response = client.get("/login", environ_base={"HTTP_X_REQUEST_ID": raw})
    echoed = response.headers["X-Request-ID"]
    assert echoed != raw and re.fullmatch(r"[0-9a-f]{32}", echoed)
    (line,) = log_lines.events("http.request")
    assert line["request_id"] == echoed
    assert raw not in log_lines.text and "X-Injected" not in log_lines.text


def test_hostile_user_agents_and_paths_keep_one_line_per_request(
    client, log_lines: CapturedLines
) -> None:
    agents = [HOSTILE, '"}{"level":"CRITICAL', "\u0000" * 50, "Mozilla/5.0 (pat@example.com)"]
    paths = ["/o/x%0a%22%00/t/" + "A" * 10_000, '/"}\n{"event":"forged"}', "/t/%0a%0d%00" * 20]
    for agent in agents:
        client.get("/login", environ_base={"HTTP_USER_AGENT": agent})
    for path in paths:
        client.get(path)
    lines = log_lines.events("http.request")
    assert len(lines) == len(agents) + len(paths) == len(log_lines.raw())
    assert {line["route"] for line in lines} <= {"/login", "unmatched", "/t/<path:token>"}
    assert all(len(line.get("user_agent") or "") <= 120 for line in lines)
    assert "forged" not in log_lines.text and "pat@example.com" not in log_lines.text


def test_configure_is_idempotent_and_text_format_stays_one_line(
    settings: Settings,
) -> None:
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        for _ in range(3):
            create_app(settings)
        mine = [h for h in root.handlers if getattr(h, logs.HANDLER_MARK, False)]
        assert len(mine) == 1
        stream = io.StringIO()
        handler = logs.build_handler("text", stream=stream)
        record = logging.makeLogRecord(
            {"name": "x", "levelno": 20, "levelname": "INFO", "msg": "evil\nline pat@x.io"}
        )
        handler.handle(record)
        assert stream.getvalue().count("\n") == 1 and "pat@x.io" not in stream.getvalue()
    finally:
        root.handlers, root.level = saved


def test_app_logger_has_no_extra_text_handler(app: Flask, log_lines: CapturedLines) -> None:
    app.logger.warning("app_logger_line")
    assert len(log_lines.raw()) == 1 and app.logger.handlers == []


def test_gunicorn_writes_no_access_line_even_with_an_access_log_set(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The app logs each request (route template, no raw path); gunicorn must not add one."""
    from gunicorn.config import Config

    from helpdesk import gunicorn_conf

    cfg = Config()
    cfg.set("accesslog", "-")  # the setting that would make gunicorn's own Logger write
    cfg.set("logger_class", gunicorn_conf.logger_class)
    log = cfg.logger_class(cfg)
    assert not log.access_log_enabled
    log.access(None, None, {"PATH_INFO": "/t/secret-link-token"}, None)
    assert "secret-link-token" not in capsys.readouterr().out


def test_a_gunicorn_worker_freezes_what_it_built_at_start_up() -> None:
    """Start-up objects leave the collector's sight, so a full collection stays short."""
    import gc

    from helpdesk import gunicorn_conf

    assert gc.get_freeze_count() == 0
    try:
        gunicorn_conf.post_worker_init(None)
        assert gc.get_freeze_count() > 10_000  # modules, app, templates: all frozen
    finally:
        gc.unfreeze()
