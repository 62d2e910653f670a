"""Attachment upload → clean latency and web-process memory during a large upload.

`python -m bench.uploads [--runs 5]`

Starts its own clamd (the EICAR test signatures in tests/clamav/), recreates the database
`helpdesk_bench_uploads`, builds the app with disk storage in a temporary directory and
CLAMD_URL pointing at that clamd, then for 1 MB and 20 MB files (random bytes named .zip
are refused, so the payload is a text file): POST /api/v1/…/attachments through the
in-process test client, run the scan job in-process (an idle worker), and time until the
attachment reads `clean`. Memory: a child process builds the 25 MB body, resets the kernel's
peak-RSS mark (/proc/self/clear_refs), uploads it and reports VmHWM minus VmRSS: the upload's
own growth (including the test client's encoding of the body, which a real client does not
add to the server).

Targets (issue "Attachments"): 1 MB p50 ≤ 1 s, 20 MB ≤ 3 s; a 25 MB upload raises the web
process's peak RSS by < 10 MB.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DB_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/helpdesk_bench_uploads"
REDIS_URL = "redis://127.0.0.1:6379/12"
MB = 1024 * 1024


def text_payload(size: int) -> bytes:
    """Plain text of `size` bytes (an allowed type), different each time (no dedupe)."""
    line = (secrets.token_hex(32) + "\n").encode()
    return (line * (size // len(line) + 1))[:size]


def build(storage_dir: str, clamd_url: str) -> Any:
    from helpdesk import create_app
    from helpdesk.config import Settings

    return create_app(Settings(
        env="test", secret_key=secrets.token_urlsafe(40), database_url=DB_URL,
        redis_url=REDIS_URL, storage="disk", storage_dir=storage_dir, clamd_url=clamd_url,
        login_limit_ip="100000 per minute", login_limit_account="100000 per minute",
    ))  # fmt: skip


def prepare(app: Any) -> tuple[str, int, int]:
    """An org, an agent with an API token and one ticket; returns (token, org_id, number)."""
    from helpdesk.models import Role
    from helpdesk.services import api_tokens
    from helpdesk.tenancy import tenant_scope
    from tests.factories import make_member, make_org, make_ticket

    with app.extensions["helpdesk.sessionmaker"]() as session:
        org = make_org(session, "up")
        agent = make_member(session, org, Role.AGENT, "agent@up.test")
        ticket = make_ticket(session, org, agent)
        with tenant_scope(session, org.id):
            token = api_tokens.create_token(session, agent, "bench")[1]
        return token, org.id, ticket.number


def upload_to_clean(app: Any, token: str, org_id: int, number: int, size: int) -> float:
    from jobs import scan

    client = app.test_client()
    payload = text_payload(size)
    started = time.perf_counter()
    response = client.post(
        f"/api/v1/orgs/up/tickets/{number}/attachments",
        headers={"Authorization": f"Bearer {token}"},
        data={"file": (io.BytesIO(payload), "notes.txt", "text/plain")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    attachment_id = response.json["id"]
    with app.app_context():
        scan.scan(org_id, attachment_id)
    auth = {"Authorization": f"Bearer {token}"}
    status = client.get(f"/api/v1/orgs/up/attachments/{attachment_id}", headers=auth).json[
        "scan_status"
    ]
    elapsed = time.perf_counter() - started
    assert status == "clean", status
    return elapsed


def child_rss(storage_dir: str, clamd_url: str) -> None:
    """Run in a child: one warm-up upload, then report peak RSS around a 25 MB upload."""
    app = build(storage_dir, clamd_url)
    token, _org_id, number = json.loads(sys.argv[-1])
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def post(size: int) -> None:
        body = {"file": (io.BytesIO(text_payload(size)), "notes.txt", "text/plain")}
        r = client.post(f"/api/v1/orgs/up/tickets/{number}/attachments", headers=headers,
                        data=body, content_type="multipart/form-data")  # fmt: skip
        assert r.status_code == 201, r.status_code

    post(64 * 1024)  # warm imports, pools and templates
    payload_mb = 25
    data = text_payload(payload_mb * MB)  # the client's copy of the body exists either way
    body = io.BytesIO(data)
    # Reset the kernel's peak-RSS mark (VmHWM) so the peak measured is the upload's own.
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kb("VmRSS")
    r = client.post(f"/api/v1/orgs/up/tickets/{number}/attachments", headers=headers,
                    data={"file": (body, "big.txt", "text/plain")},
                    content_type="multipart/form-data")  # fmt: skip
    assert r.status_code == 201, r.status_code
    peak = _status_kb("VmHWM")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rss_before_kb": before, "peak_rss_during_kb": peak, "maxrss_kb": maxrss}))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def main(argv: list[str] | None = None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_rss(sys.argv[2], sys.argv[3])
        return
    p = argparse.ArgumentParser(prog="python -m bench.uploads", description=__doc__)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    from tests.attachments.clamd_fixture import Clamd, clamd_binary, free_port
    from tests.conftest import run_migrations
    from tests.conftest_services import recreate_database

    recreate_database(DB_URL)
    run_migrations(DB_URL)
    tmp = Path(tempfile.mkdtemp(prefix="helpdesk-bench-clamd-"))
    daemon = Clamd(binary=clamd_binary(), tmp=tmp, port=free_port())
    daemon.write_conf()
    daemon.start()
    storage_dir = tempfile.mkdtemp(prefix="helpdesk-bench-files-")
    try:
        app = build(storage_dir, daemon.tcp_url)
        token, org_id, number = prepare(app)
        results: dict[str, Any] = {}
        for label, size in (("1 MB", MB), ("20 MB", 20 * MB)):
            upload_to_clean(app, token, org_id, number, size)  # warm-up
            times = [upload_to_clean(app, token, org_id, number, size) for _ in range(args.runs)]
            results[label] = {"runs": len(times), "p50_s": round(statistics.median(times), 3),
                              "max_s": round(max(times), 3)}  # fmt: skip
        app.extensions["helpdesk.engine"].dispose()
        out = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "bench.uploads", "--child", storage_dir, daemon.tcp_url,
             json.dumps([token, org_id, number])],
            cwd=ROOT, capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        rss = json.loads(out.stdout.strip().splitlines()[-1])
        growth_mb = (rss["peak_rss_during_kb"] - rss["rss_before_kb"]) / 1024
        results["25 MB upload, peak RSS growth"] = {"mb": round(growth_mb, 1), **rss}
    finally:
        daemon.stop()
    print(json.dumps(results, indent=2))
    dest = ROOT / "bench" / "results"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "uploads.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
