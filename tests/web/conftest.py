"""Fixtures shared by the web tests."""

from __future__ import annotations

import pytest

from tests.browser import Browser


@pytest.fixture
def agent(browser: Browser, world, password) -> Browser:
    browser.login("agent@alpha.test", password)
    return browser
