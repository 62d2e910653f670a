"""Real S3-protocol servers on loopback for attachment tests (no mocks of the SDK).

* `moto_s3`: a fresh in-process moto server state per test (moto's threaded server, started
  once per session; reset with POST /moto-api/reset). Fast, but moto accepts any signature
  and never expires presigned URLs.
* `nanio_s3`: a `nanio serve` subprocess (started once per session) with real credentials;
  it refuses tampered and expired presigned URLs. Each test gets its own bucket.
* `app_s3_storage`: points the session app at `moto_s3` for one test and restores it.

The first two yield Flask-style settings (STORAGE, S3_*) that `get_storage` accepts.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from minio import Minio
from moto.server import ThreadedMotoServer

from helpdesk.storage import EXTENSION, Storage, get_storage

MOTO_ACCESS_KEY = "moto-access-key"
MOTO_SECRET_KEY = "moto-secret-key"
NANIO_ACCESS_KEY = "nanio-test-access"
NANIO_SECRET_KEY = "nanio-test-secret-0123456789"
BUCKET = "helpdesk-test"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    """Block until 127.0.0.1:port accepts connections (10 s at most)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after 10 s")


def put_bytes(storage: Storage, key: str, data: bytes, content_type: str = "text/plain") -> None:
    """Store `data` under `key`."""
    storage.put(key, io.BytesIO(data), len(data), content_type)


def read_all(storage: Storage, key: str) -> bytes:
    """Return the whole object stored under `key`."""
    with storage.open(key) as stream:
        return stream.read()


def fetch(url: str) -> tuple[int, Message, bytes]:
    """GET a (presigned) URL as a browser would: status, headers, body."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


def s3_config(endpoint: str, access_key: str, secret_key: str, bucket: str) -> dict[str, Any]:
    """Return the Flask settings that select S3 storage at `endpoint`."""
    return {
        "STORAGE": "s3",
        "S3_ENDPOINT": endpoint,
        "S3_ACCESS_KEY": access_key,
        "S3_SECRET_KEY": secret_key,
        "S3_BUCKET": bucket,
        "S3_REGION": "us-east-1",
        "S3_QUARANTINE_BUCKET": "",
    }


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Start moto's S3 server on a free loopback port for the whole session."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    wait_for_port(port)
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def moto_s3(moto_endpoint: str) -> dict[str, Any]:
    """Empty the moto server (no buckets) and return settings that point at it."""
    url = f"{moto_endpoint}/moto-api/reset"
    request = urllib.request.Request(url, method="POST")  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
        assert response.status == 200
    return s3_config(moto_endpoint, MOTO_ACCESS_KEY, MOTO_SECRET_KEY, BUCKET)


@pytest.fixture(scope="session")
def nanio_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start `nanio serve` (signature- and expiry-checking S3) for the whole session."""
    data_dir = tmp_path_factory.mktemp("nanio-data")
    log_path = data_dir.parent / "nanio.log"
    port = free_port()
    env = {**os.environ, "NANIO_ACCESS_KEY": NANIO_ACCESS_KEY, "NANIO_SECRET_KEY": NANIO_SECRET_KEY}
    command = [str(Path(sys.executable).with_name("nanio")), "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--data-dir", str(data_dir), "--no-access-log"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def nanio_s3(nanio_endpoint: str) -> Iterator[dict[str, Any]]:
    """Return settings for a bucket of this test's own on nanio; empty it afterwards."""
    bucket = f"t-{uuid.uuid4().hex[:24]}"
    config = s3_config(nanio_endpoint, NANIO_ACCESS_KEY, NANIO_SECRET_KEY, bucket)
    yield config
    client = Minio(
        nanio_endpoint.removeprefix("http://"),
        access_key=NANIO_ACCESS_KEY,
        secret_key=NANIO_SECRET_KEY,
        secure=False,
        region="us-east-1",
    )
    if client.bucket_exists(bucket):
        for item in client.list_objects(bucket, recursive=True):
            client.remove_object(bucket, str(item.object_name))
        client.remove_bucket(bucket)


@pytest.fixture
def app_s3_storage(app: Flask, moto_s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Storage:
    """Make the session app use S3 storage on moto for this test (restored afterwards)."""
    for name, value in moto_s3.items():
        monkeypatch.setitem(app.config, name, value)
    storage = get_storage(moto_s3)
    monkeypatch.setitem(app.extensions, EXTENSION, storage)
    return storage
