"""A real clamd for the test session, with the EICAR test signatures of tests/clamav/.

The daemon gets its own configuration (tests/clamav/clamd.conf.template filled in): its own
sockets (a unix socket and a free loopback TCP port), pid, log and scratch directory, and the
same limits production should use, `AlertExceedsMax yes` included. It starts in well under a
second with the test signatures. Tests that need clamd down use `clamd.stopped()`, which
starts it again afterwards (also when the test fails); `clamd_url` makes sure it runs;
`app_clamd` also points the session app's CLAMD_URL at it for one test.

Use: `pytest_plugins` in tests/attachments/conftest.py, or import the fixtures.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import pytest
from flask import Flask

from helpdesk.scanning import ping

__all__ = ["EICAR", "Clamd", "app_clamd", "clamd", "clamd_url"]
CLAMAV_DIR = Path(__file__).resolve().parent.parent / "clamav"
START_TIMEOUT = 30.0
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def clamd_binary() -> str:
    """Return the clamd executable (CLAMD_BIN, else /usr/sbin/clamd, else PATH)."""
    for candidate in (os.environ.get("CLAMD_BIN"), "/usr/sbin/clamd", shutil.which("clamd")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "clamd is not installed: apt-get install clamav-daemon (or set CLAMD_BIN); "
        "the attachment tests scan with a real clamd",
        pytrace=False,
    )


def free_port() -> int:
    """Return a loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Clamd:
    """One clamd process with its own configuration; start, stop and restart it."""

    binary: str
    tmp: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def socket_path(self) -> Path:
        return self.tmp / "clamd.sock"

    @property
    def conf(self) -> Path:
        return self.tmp / "clamd.conf"

    @property
    def tcp_url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def log(self) -> str:
        path = self.tmp / "clamd.log"
        return path.read_text(errors="replace") if path.exists() else "(no log yet)"

    def write_conf(self) -> None:
        template = Template((CLAMAV_DIR / "clamd.conf.template").read_text())
        (self.tmp / "scratch").mkdir(exist_ok=True)
        self.conf.write_text(
            template.substitute(
                database_dir=CLAMAV_DIR, socket=self.socket_path, port=self.port, tmp=self.tmp
            )
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start clamd and wait until it answers PING on both sockets."""
        if self.running:
            return
        self.process = subprocess.Popen(  # noqa: S603 - our own binary and config
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not (ping(self.tcp_url, timeout=1) and ping(self.unix_url, timeout=1)):
            if self.process.poll() is not None:
                raise RuntimeError(f"clamd exited with {self.process.returncode}:\n{self.log}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"clamd did not answer PING in {START_TIMEOUT:g} s:\n{self.log}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop clamd (SIGTERM, then SIGKILL after 10 s) and wait until it is gone."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """Run a block with clamd down; it is started again afterwards."""
        self.stop()
        try:
            yield
        finally:
            self.start()


@pytest.fixture(scope="session")
def clamd() -> Iterator[Clamd]:
    """A clamd with the test signatures for the whole session (stopped at the end)."""
    # mkdtemp under /tmp, not tmp_path: a unix socket path must stay under ~100 bytes.
    tmp = Path(tempfile.mkdtemp(prefix="helpdesk-clamd-"))
    daemon = Clamd(binary=clamd_binary(), tmp=tmp, port=free_port())
    daemon.write_conf()
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def clamd_url(clamd: Clamd) -> str:
    """The running test clamd's tcp:// URL (started again if an earlier test left it down)."""
    clamd.start()
    return clamd.tcp_url


@pytest.fixture
def app_clamd(app: Flask, clamd_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the session app's CLAMD_URL at the test clamd for one test; return the URL."""
    monkeypatch.setitem(app.config, "CLAMD_URL", clamd_url)
    return clamd_url
