"""Captured log lines (the production handler on the root logger) and metric scrapes."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from helpdesk import logs

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class CapturedLines:
    """Every line the JSON handler wrote while the fixture was active."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def raw(self) -> list[str]:
        return self.text.splitlines()

    def parsed(self) -> list[dict[str, Any]]:
        """Each line as JSON (fails the test on a line that is not one JSON object)."""
        out = []
        for line in self.raw():
            data = json.loads(line)
            assert isinstance(data, dict), line
            out.append(data)
        return out

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.parsed() if line.get("event") == name]


@pytest.fixture
def log_lines(app: Any) -> Iterator[CapturedLines]:
    """Attach the production JSON handler (filters included) to the root logger."""
    stream = io.StringIO()
    handler = logs.build_handler("json", stream=stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield CapturedLines(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def scrape(client: FlaskClient) -> Samples:
    """Scrape /metrics (as loopback) into {(sample name, labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.status_code
    samples: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
