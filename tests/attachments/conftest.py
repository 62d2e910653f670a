"""Fixtures for attachment tests: a real clamd and real S3-protocol servers on loopback.

Each fixture module has one owner (clamd: scanning, S3: storage). They are imported here
because pytest only honours `pytest_plugins` in the top-level conftest.
"""

from tests.attachments.clamd_fixture import *  # noqa: F403
from tests.attachments.s3_fixture import *  # noqa: F403
