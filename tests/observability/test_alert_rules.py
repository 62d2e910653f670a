"""ops/alerts.yml: valid for promtool, its unit tests pass, and it names only real metrics."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.observability.conftest import scrape

OPS = Path(__file__).resolve().parents[2] / "ops"
RULES = OPS / "alerts.yml"
RULE_TESTS = OPS / "alerts_test.yml"
_METRIC = re.compile(r"\bhelpdesk_[a-z0-9_]+\b")


def promtool() -> str:
    """The promtool binary; in CI (CI is set) its absence fails the test, else it skips."""
    found = shutil.which("promtool")
    if found:
        return found
    message = "promtool is not installed (Debian: apt-get install prometheus)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize("args", [("check", "rules", RULES), ("test", "rules", RULE_TESTS)])
def test_promtool_accepts_the_rules_and_their_tests(args: tuple[str, str, Path]) -> None:
    done = subprocess.run(  # noqa: S603 - promtool from PATH with our own files
        [promtool(), *map(str, args)],
        cwd=OPS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def rule_metric_names() -> set[str]:
    """Every helpdesk_* name used in the rules' expressions (not the annotations)."""
    names: set[str] = set()
    expression = False
    for line in RULES.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("expr:"):
            expression = True
        elif re.match(r"^(for|labels|annotations|- alert|- name):?", stripped):
            expression = False
        if expression:
            names.update(_METRIC.findall(stripped))
    return names


def test_every_metric_the_alerts_use_is_exposed(client: FlaskClient) -> None:
    client.get("/login")  # the per-route series appear with the first request
    exposed = {name for name, _labels in scrape(client)}
    used = rule_metric_names()
    assert len(used) >= 15
    assert sorted(used - exposed) == []
