"""`make smoke-e2e` (scripts/smoke_e2e.py) in Chromium against a live test server: it logs
in as a seeded agent, creates, views, comments on and solves a ticket — and fails loudly,
with a screenshot, when it cannot log in. End-to-end like tests/e2e (Debian's Chromium)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Comment, Ticket
from helpdesk.tenancy import tenant_scope

ROOT = Path(__file__).resolve().parents[2]


def smoke_e2e(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(ROOT))}
    return subprocess.run(  # noqa: S603 - our own script
        [sys.executable, "-m", "scripts.smoke_e2e", *args],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_smoke_e2e_creates_views_comments_and_solves_a_ticket(
    live_url: str, world, password: str, session: Session, tmp_path: Path
) -> None:
    done = smoke_e2e(
        "--screenshot",
        str(tmp_path / "failure.png"),
        BASE_URL=live_url,
        SMOKE_EMAIL="agent@alpha.test",
        SMOKE_PASSWORD=password,
        SMOKE_ORG="alpha",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[:5] == [
        "ok    log in",
        "ok    create a ticket",
        "ok    view it from the list",
        "ok    add a comment (internal note)",
        "ok    mark it solved",
    ]
    assert "smoke-e2e ok: 'Smoke test " in done.stdout
    with tenant_scope(session, world["alpha"]["org"].id):
        ticket = session.scalars(select(Ticket)).one()
        notes = session.scalars(select(Comment).where(Comment.internal)).all()
    assert ticket.subject.startswith("Smoke test ")
    assert ticket.status == "solved"
    assert [n.body_md for n in notes] == ["Smoke note: the comment box works."]
    assert not (tmp_path / "failure.png").exists()


def test_smoke_e2e_fails_loudly_with_a_screenshot(live_url: str, world, tmp_path: Path) -> None:
    shot = tmp_path / "failure.png"
    done = smoke_e2e(
        "--screenshot",
        str(shot),
        BASE_URL=live_url,
        SMOKE_EMAIL="agent@alpha.test",
        SMOKE_PASSWORD="not the password",
        SMOKE_ORG="alpha",
    )
    assert done.returncode == 1
    assert done.stdout.startswith("FAIL  log in: ")
    assert f"smoke-e2e FAILED at 'log in' on {live_url}/login" in done.stdout
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_smoke_e2e_names_what_is_missing() -> None:
    done = smoke_e2e(BASE_URL="http://127.0.0.1:9", SMOKE_EMAIL="a@b.test")
    assert done.returncode == 2
    assert "set SMOKE_PASSWORD, SMOKE_ORG (SMOKE_PASSWORD only in the environment)" in done.stderr
