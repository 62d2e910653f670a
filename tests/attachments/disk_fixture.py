"""An app on disk storage for the upload and download tests.

`disk_app` overrides the `app` fixture: modules that import it run against their own app
whose STORAGE_DIR is a temporary directory (DiskStorage, the embedded default, built with
`dataclasses.replace(settings, …)`), emptied after each test (`disk_root`, fixture
`storage_root`). Import both: `from tests.attachments.disk_fixture import disk_app, disk_root`.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from helpdesk import create_app
from helpdesk.config import Settings
from helpdesk.storage import EXTENSION, DiskStorage

__all__ = ["disk_app", "disk_root"]


@pytest.fixture(scope="module", name="app")
def disk_app(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The app with disk storage in a temporary directory (no CLAMD_URL: files are unscanned)."""
    root = tmp_path_factory.mktemp("attachments")
    app = create_app(dataclasses.replace(settings, storage="disk", storage_dir=str(root)))
    app.config["TESTING"] = True
    yield app
    app.extensions["helpdesk.engine"].dispose()


@pytest.fixture(autouse=True, name="storage_root")
def disk_root(app: Flask) -> Iterator[Path]:
    """The disk storage root of `app` (fixture `storage_root`), emptied after each test."""
    storage = app.extensions[EXTENSION]
    assert isinstance(storage, DiskStorage)
    yield storage.root
    if storage.root.exists():
        for child in storage.root.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
