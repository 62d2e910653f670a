"""Fixtures for the benchmark's own tests: a generated database, loaded once per session.

The databases live on the test PostgreSQL server (TEST_DATABASE_URL, else the embedded one)
under names containing "bench"; BENCH_TEST_DATABASE_URL overrides the main one.
BENCH_TEST_REDIS_URL (default: Redis database 14 on loopback) is flushed by the tests.
Run them with `pytest bench/tests` (the app's suite under tests/ does not include them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from helpdesk import embedded
from tests import conftest_services as services

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-11-20T12:00:00+00:00"
PASSWORD = "bench-test-password"  # noqa: S105 - throwaway test data
TICKETS = 3000


def database(name: str) -> str:
    """A URL for database `name` on the bench test server."""
    base = os.environ.get("BENCH_TEST_DATABASE_URL") or services.test_database_url()
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def main_url() -> str:
    return os.environ.get("BENCH_TEST_DATABASE_URL") or database("helpdesk_bench_test")


@dataclass(frozen=True)
class Generated:
    url: str
    stdout_last: dict[str, object]
    now: datetime

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(embedded.libpq_url(self.url))


def run_generate(url: str, *extra: str, tickets: int = TICKETS) -> subprocess.CompletedProcess[str]:
    """The generator CLI, as a user runs it."""
    cmd = [
        sys.executable,
        "-m",
        "bench.generate",
        "--tickets",
        str(tickets),
        "--orgs",
        "8",
        "--now",
        NOW,
        "--password",
        PASSWORD,
        "--database-url",
        url,
        *extra,
    ]
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="session")
def generated() -> Generated:
    url = main_url()
    done = run_generate(url, "--jobs", "1")
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    return Generated(url, json.loads(last), datetime.fromisoformat(NOW))


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("BENCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture(scope="session", autouse=True)
def _stop_embedded() -> Iterator[None]:
    yield
    embedded.stop_all()
