"""Storage proofs that need more than moto: nanio, the memory bound, the app and /readyz.

nanio checks signatures and expiry (moto accepts any presigned URL), and it runs in its own
process, so tracemalloc measures only this process's side of a 30 MB transfer.
"""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from helpdesk import create_app
from helpdesk.config import Settings
from helpdesk.storage import (
    EXTENSION,
    DiskStorage,
    Storage,
    StorageError,
    default_storage_dir,
    get_storage,
    new_key,
)
from helpdesk.storage.s3 import PART_SIZE
from tests.attachments.s3_fixture import fetch, free_port, put_bytes

MB = 1024 * 1024


# --- nanio: a server that checks signatures and expiry ---------------------------------------


def test_nanio_refuses_tampered_and_expired_urls(nanio_s3: dict[str, Any]) -> None:
    storage = get_storage(nanio_s3)
    key = new_key(1)
    put_bytes(storage, key, b"secret report", "application/pdf")
    url = storage.presigned_get(key, filename="r.pdf", content_type="application/pdf", ttl=60)
    assert url is not None
    status, headers, body = fetch(url)
    assert (status, body) == (200, b"secret report")
    assert headers["Content-Type"] == "application/pdf"
    status, _, body = fetch(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"))
    assert status == 403 and b"SignatureDoesNotMatch" in body
    other = url.replace(key, new_key(1))  # a valid signature does not open another object
    assert fetch(other)[0] == 403
    # Expiry on its own URL: a 1 s TTL on the URL above would make a slow machine report
    # "expired" before the signature checks could be seen.
    short = storage.presigned_get(key, filename="r.pdf", content_type="application/pdf", ttl=1)
    assert short is not None
    time.sleep(2)
    status, _, body = fetch(short)
    assert status == 403 and b"expired" in body


def test_nanio_wrong_credentials_say_what_to_check(nanio_s3: dict[str, Any]) -> None:
    storage = get_storage({**nanio_s3, "S3_SECRET_KEY": "not-the-secret"})
    with pytest.raises(StorageError, match="check S3_ACCESS_KEY, S3_SECRET_KEY") as caught:
        storage.check()
    assert "not-the-secret" not in str(caught.value)


# --- 30 MB streams through a bounded amount of memory ----------------------------------------


@pytest.fixture
def big_file(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A 30 MB file of random bytes and its SHA-256."""
    path, digest = tmp_path / "big.bin", hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(30):
            chunk = os.urandom(MB)
            digest.update(chunk)
            out.write(chunk)
    yield path, digest.hexdigest()


def traced_peak(action: Callable[[], object]) -> int:
    """Peak bytes Python allocated while `action` ran."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("backend", ["disk", "nanio"])
def test_30_mb_streams_in_and_out_in_bounded_memory(
    backend: str, big_file: tuple[Path, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path, expected = big_file
    storage: Storage = (
        DiskStorage(tmp_path / "root")
        if backend == "disk"
        else get_storage(request.getfixturevalue("nanio_s3"))
    )
    storage.check()
    key = new_key(1)

    def upload() -> None:
        with path.open("rb") as source:
            storage.put(key, source, 30 * MB, "application/octet-stream")

    digest = hashlib.sha256()

    def download() -> None:
        with storage.open(key) as stream:
            while chunk := stream.read(64 * 1024):
                digest.update(chunk)

    assert traced_peak(upload) < PART_SIZE + MB  # one S3 part at most (the budget is 10 MB)
    assert traced_peak(download) < MB
    assert digest.hexdigest() == expected


# --- the app: built once, never blocking start, reported by /readyz --------------------------


def test_the_app_builds_its_storage_once(app: Flask) -> None:
    storage = app.extensions[EXTENSION]
    assert get_storage(app) is storage and get_storage(app) is get_storage(app)
    assert isinstance(storage, DiskStorage) and storage.root == default_storage_dir()


def test_readyz_checks_disk_storage(app: Flask) -> None:
    ready = app.test_client().get("/readyz")
    assert ready.json["checks"]["storage"] == {"ok": True, "detail": "ok"}


def test_readyz_checks_s3_and_the_app_starts_while_it_is_down(
    settings: Settings, moto_s3: dict[str, Any]
) -> None:
    s3 = {k.lower(): v for k, v in moto_s3.items()}
    up = create_app(Settings(**{**settings.__dict__, **s3}))
    down_s3 = {**s3, "s3_endpoint": f"http://127.0.0.1:{free_port()}"}
    down = create_app(Settings(**{**settings.__dict__, **down_s3}))  # no exception
    try:
        ready = up.test_client().get("/readyz")
        assert ready.status_code == 200 and ready.json["checks"]["storage"]["ok"] is True
        assert up.extensions[EXTENSION]._client.bucket_exists("helpdesk-test")  # created
        client = down.test_client()
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json["checks"]["storage"] == {
            "ok": False,
            "detail": "S3 is unreachable: could not open the bucket (check S3_ENDPOINT)",
        }
        assert "127.0.0.1" not in ready.get_data(as_text=True)
    finally:
        up.extensions["helpdesk.engine"].dispose()
        down.extensions["helpdesk.engine"].dispose()
