"""Attachment storage: one interface (`Storage`), two backends (disk, S3), built once per app.

Callers use `get_storage(current_app)` (or `get_storage(config)` outside an app) and never
know which backend they hold. Building a backend does no I/O: the disk root and S3 buckets
are created on first use or by `check()` (which `/readyz` runs), so the app starts even
while S3 is down. `content_disposition` is the one builder of the download header, shared by
presigned URLs and files the app streams itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from helpdesk.storage.base import (
    MAX_PRESIGN_TTL,
    InvalidKey,
    ObjectNotFound,
    Storage,
    StorageError,
    check_key,
    content_disposition,
    new_key,
)
from helpdesk.storage.disk import DiskStorage
from helpdesk.storage.s3 import S3Storage

__all__ = [
    "EXTENSION",
    "MAX_PRESIGN_TTL",
    "DiskStorage",
    "InvalidKey",
    "ObjectNotFound",
    "S3Storage",
    "Storage",
    "StorageError",
    "build_storage",
    "check_key",
    "content_disposition",
    "default_storage_dir",
    "get_storage",
    "init_app",
    "new_key",
]

EXTENSION = "helpdesk.storage"


def default_storage_dir() -> Path:
    """Return `<repo>/instance/attachments`, the disk root when STORAGE_DIR is empty."""
    return Path(__file__).resolve().parents[2] / "instance" / "attachments"


def build_storage(config: Mapping[str, Any]) -> Storage:
    """Build the backend the STORAGE setting names (no network or file system access)."""
    kind = config.get("STORAGE") or "disk"
    if kind == "disk":
        return DiskStorage(config.get("STORAGE_DIR") or default_storage_dir())
    if kind == "s3":
        return S3Storage.from_config(config)
    raise ValueError(f"STORAGE must be disk or s3, got {kind!r}")


def get_storage(app_or_config: Flask | Mapping[str, Any]) -> Storage:
    """Return the app's storage (built once, kept in app.extensions) or build one from config."""
    if isinstance(app_or_config, Flask):
        storage: Storage | None = app_or_config.extensions.get(EXTENSION)
        if storage is None:
            storage = app_or_config.extensions.setdefault(
                EXTENSION, build_storage(app_or_config.config)
            )
        return storage
    return build_storage(app_or_config)


def init_app(app: Flask) -> None:
    """Build the app's storage now, so a bad setting fails at start, not at the first upload."""
    app.extensions[EXTENSION] = build_storage(app.config)
