"""The smoke tests run against the app on a real port (the end-to-end tests' live server)."""

from __future__ import annotations

from tests.e2e import conftest as e2e

live_url = e2e.live_url  # the session app served on a free loopback port
