"""The app as production runs it, on loopback: gunicorn (2 workers), one job worker, the cron.

Why real processes: a benchmark that calls the app in-process measures neither HTTP
parsing, nor gunicorn's workers competing for two cores with PostgreSQL and the job
worker, nor memory growth in long-lived workers. This module starts the same commands
`make run` does (helpdesk/devrun.py) with HELPDESK_ENV=production, an SMTP sink that
records when it accepted each message (by the delivery id in its Message-ID), and reads
each process's resident memory from /proc.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "bench" / "results" / "logs"
_DELIVERY_ID = re.compile(rb"^Message-ID:\s*<helpdesk\.delivery\.(\d+)@", re.I | re.M)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def stats(values: list[float]) -> dict[str, Any]:
    """n, p50, p99 and max of durations in seconds."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_s": round(statistics.median(values), 3),
        "p99_s": round(percentile(values, 99), 3),
        "max_s": round(max(values), 3),
    }


class SinkHandler:
    """An SMTP server that accepts everything and notes when (by delivery id)."""

    def __init__(self) -> None:
        self.accepted: dict[int, float] = {}
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        match = _DELIVERY_ID.search(envelope.original_content or b"")
        if match:
            self.accepted.setdefault(int(match.group(1)), time.time())
        return "250 OK"


@contextmanager
def smtp_sink() -> Iterator[tuple[int, SinkHandler]]:
    """A running SMTP sink on loopback: (port, handler)."""
    handler, port = SinkHandler(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


def rss_kb(pid: int) -> dict[str, int]:
    """Current (VmRSS) and peak (VmHWM) resident memory of a process, in kB."""
    found = {}
    try:
        for text in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = text.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    except FileNotFoundError:
        return {}
    return found


LIST_ROWS = 50  # rows per list page and search page, as the targets count them
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def children(pid: int) -> list[int]:
    """Direct child processes (gunicorn's workers under its master)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except FileNotFoundError:
        return []


@dataclass
class Stack:
    """The running processes of one benchmark run."""

    base_url: str
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def web_workers(self) -> list[int]:
        return children(self.procs["web"].pid)

    def memory(self) -> dict[str, dict[str, int]]:
        """RSS and peak RSS (kB) of every gunicorn worker and of the job worker."""
        found = {f"web{i}": rss_kb(pid) for i, pid in enumerate(self.web_workers())}
        found["worker"] = rss_kb(self.procs["worker"].pid)  # RQ SimpleWorker: jobs run inside
        return found

    def cpu(self, db_pids: list[int]) -> dict[str, float]:
        """CPU seconds so far: gunicorn workers, the job worker, PostgreSQL backends."""
        return {
            "web": sum(cpu_seconds(p) for p in self.web_workers()),
            "worker": cpu_seconds(self.procs["worker"].pid),
            **{f"db{p}": cpu_seconds(p) for p in db_pids},
        }

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise SystemExit(
                    f"{name} exited with code {proc.returncode}: see {LOGS}/{name}.log"
                )


def stack_env(database_url: str, redis_url: str, port: int, smtp_port: int) -> dict[str, str]:
    """Settings for the app processes, as a production deployment would set them."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "HELPDESK_ENV": "production",
        "BASE_URL": f"http://127.0.0.1:{port}",
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "MAIL_FROM": "help@bench.test",
        "PYTHONUNBUFFERED": "1",
        # one login per run, but a developer may run it many times a minute
        "LOGIN_LIMIT_IP": "1000 per minute",
        "LOGIN_LIMIT_ACCOUNT": "1000 per minute",
        # The targets are set for a list of 50 rows (the app's default page is 25).
        "PAGE_SIZE": str(LIST_ROWS),
        # one agent and one API token drive every request: lift the per-user/token ceilings
        "USER_LIMIT": "10000000 per minute",
        "API_LIMIT_TOKEN": "10000000 per minute",
        # Production refuses to start without a virus scanner address; the benchmark uploads
        # no attachments, so nothing ever connects to it.
        "CLAMD_URL": os.environ.get("CLAMD_URL") or "tcp://127.0.0.1:9",
    }


@contextmanager
def running(database_url: str, redis_url: str, smtp_port: int, workers: int = 2) -> Iterator[Stack]:
    """Start gunicorn, the job worker and the cron; stop them (SIGTERM) on exit."""
    port = free_port()
    env = stack_env(database_url, redis_url, port, smtp_port)
    LOGS.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    commands = {
        "web": [
            py,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--backlog",
            "2048",
            "-c",
            "helpdesk/gunicorn_conf.py",  # JSON logs; request metrics summed across workers
            "wsgi:app",
        ],
        "worker": [py, "-m", "flask", "--app", "wsgi", "worker"],
        "cron": [py, "-m", "flask", "--app", "wsgi", "cron"],
    }
    stack = Stack(f"http://127.0.0.1:{port}", env)
    web_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(LOGS / "prometheus")}  # emptied at start
    logs: list[IO[bytes]] = []
    try:
        for name, cmd in commands.items():
            logs.append((LOGS / f"{name}.log").open("wb"))
            stack.procs[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and args
                cmd,
                cwd=ROOT,
                env=web_env if name == "web" else env,
                stdout=logs[-1],
                stderr=subprocess.STDOUT,
            )
        _wait_healthy(stack)
        yield stack
    finally:
        for proc in stack.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in stack.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


def _wait_healthy(stack: Stack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            with urllib.request.urlopen(stack.base_url + "/healthz", timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200 and len(stack.web_workers()) >= 1:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the app did not answer /healthz within {timeout:.0f} s: see {LOGS}/web.log")
