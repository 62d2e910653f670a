"""Browser smoke test of a deployment: log in, create a ticket, view it, comment, solve it.

`make smoke-e2e BASE_URL=https://helpdesk.example.com SMOKE_EMAIL=… SMOKE_ORG=…` with
`SMOKE_PASSWORD` in the environment (never on the command line). Use a dedicated agent
account: the ticket it creates names that account as requester, the comment is an internal
note (nobody is emailed) and the ticket ends solved, so the smoke leaves no open work.

Drives Debian's Chromium through Playwright (the way tests/e2e launches it). Every step
prints one line; the first one that fails prints what went wrong, saves a screenshot
(`--screenshot`, default instance/smoke-e2e-failure.png) and exits 1. Any browser console
error (a CSP violation, a script error, a missing asset) fails the smoke too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_TIMEOUT_MS = 15_000


@dataclass(frozen=True)
class Target:
    """Where to smoke and as whom."""

    base_url: str
    email: str
    password: str
    org: str


def smoke_subject() -> str:
    """A subject that tells this run's ticket apart (and says what it is)."""
    return f"Smoke test {time.strftime('%Y-%m-%d %H:%M:%S')}"


def log_in(page: Page, target: Target) -> None:
    page.goto(f"{target.base_url}/login")
    page.fill("input[name=email]", target.email)
    page.fill("input[name=password]", target.password)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Tickets")  # an agent's ticket list
    page.wait_for_load_state("load")


def create_ticket(page: Page, target: Target, subject: str) -> None:
    page.goto(f"{target.base_url}/o/{target.org}/tickets")
    page.click("text=New ticket >> nth=0")
    page.fill("input[name=requester_email]", target.email)
    page.fill("input[name=subject]", subject)
    page.fill("textarea[name=body]", "Post-deploy smoke test: safe to ignore.")
    page.click("text=Create ticket")
    page.wait_for_load_state("load")
    expect(page.locator("h1")).to_contain_text(subject)


def view_ticket(page: Page, target: Target, subject: str) -> None:
    page.goto(f"{target.base_url}/o/{target.org}/tickets")
    page.click(f"a:has-text('{subject}')")
    page.wait_for_load_state("load")
    expect(page.locator("h1")).to_contain_text(subject)
    expect(page.locator(".thread")).to_contain_text("Post-deploy smoke test")


def add_comment(page: Page) -> None:
    page.fill("textarea[name=body]", "Smoke note: the comment box works.")
    page.check("input[name=internal][value='1']")
    page.click("button:has-text('Send')")
    expect(page.locator(".comment.internal", has_text="comment box works")).to_be_visible()


def solve_ticket(page: Page) -> None:
    page.select_option("select[name=status]", "solved")
    page.click("button:has-text('Save')")
    expect(page.locator(".history", has_text="solved")).to_be_visible()


def run(target: Target, screenshot: Path) -> int:
    """Run every step in a fresh browser; return 0, or 1 at the first failure."""
    subject = smoke_subject()
    errors: list[str] = []
    steps: list[tuple[str, Callable[[Page], None]]] = [
        ("log in", lambda page: log_in(page, target)),
        ("create a ticket", lambda page: create_ticket(page, target, subject)),
        ("view it from the list", lambda page: view_ticket(page, target, subject)),
        ("add a comment (internal note)", add_comment),
        ("mark it solved", solve_ticket),
    ]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(STEP_TIMEOUT_MS)
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            for name, step in steps:
                try:
                    step(page)
                    if errors:
                        raise AssertionError(f"browser console errors: {errors}")
                except (AssertionError, PlaywrightError) as exc:
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshot), full_page=True)
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                    print(f"FAIL  {name}: {first}")
                    print(f"smoke-e2e FAILED at '{name}' on {page.url} (screenshot: {screenshot})")
                    return 1
                print(f"ok    {name}")
        finally:
            browser.close()
    print(f"smoke-e2e ok: '{subject}' created, viewed, commented and solved in {target.org}")
    return 0


def parse(argv: list[str] | None) -> tuple[Target, Path]:
    """Options, defaulting to BASE_URL, SMOKE_EMAIL, SMOKE_PASSWORD and SMOKE_ORG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base-url", default=os.environ.get("BASE_URL", ""))
    parser.add_argument("--email", default=os.environ.get("SMOKE_EMAIL", ""))
    parser.add_argument("--org", default=os.environ.get("SMOKE_ORG", ""))
    parser.add_argument(
        "--screenshot", type=Path, default=ROOT / "instance" / "smoke-e2e-failure.png"
    )
    args = parser.parse_args(argv)
    password = os.environ.get("SMOKE_PASSWORD", "")
    missing = [
        name
        for name, value in (
            ("BASE_URL", args.base_url),
            ("SMOKE_EMAIL", args.email),
            ("SMOKE_PASSWORD", password),
            ("SMOKE_ORG", args.org),
        )
        if not value
    ]
    if missing:
        parser.error(f"set {', '.join(missing)} (SMOKE_PASSWORD only in the environment)")
    if not args.base_url.startswith(("http://", "https://")):
        parser.error("BASE_URL must start with http:// or https://")
    target = Target(args.base_url.rstrip("/"), args.email, password, args.org)
    return target, args.screenshot


def main(argv: list[str] | None = None) -> int:
    """Parse the options and run the smoke."""
    target, screenshot = parse(argv)
    return run(target, screenshot)


if __name__ == "__main__":
    sys.exit(main())
