"""Fixtures for the feature-flag tests: every test starts and ends with a fresh flag cache.

The flag cache lives on the app (`app.extensions`), and the session-wide app outlives each
test while the tables are emptied after it: a snapshot taken here must not leak into the
next test (of this directory or any other).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from helpdesk.services import flags


@pytest.fixture(autouse=True)
def _fresh_flag_cache(request: pytest.FixtureRequest) -> Iterator[None]:
    if "app" not in request.fixturenames:
        yield
        return
    app: Flask = request.getfixturevalue("app")
    with app.app_context():
        flags.clear_cache()
    yield
    with app.app_context():
        flags.clear_cache()
