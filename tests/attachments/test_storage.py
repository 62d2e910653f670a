"""Attachment storage against the real thing: a temp directory and moto's S3 server.

Behaviour every backend must share runs on both `disk` and `s3` (moto). What needs nanio
(signature and expiry checks), the memory bound and the app wiring are in
test_storage_servers.py.
"""

from __future__ import annotations

import io
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpdesk.storage import (
    DiskStorage,
    InvalidKey,
    ObjectNotFound,
    S3Storage,
    Storage,
    StorageError,
    content_disposition,
    get_storage,
    new_key,
)
from helpdesk.storage.s3 import PART_SIZE, make_client
from tests.attachments.s3_fixture import fetch, free_port, put_bytes, read_all

HEX = "0123456789abcdef" * 2
MB = 1024 * 1024


@pytest.fixture(params=["disk", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """The same contract on both backends (S3: a fresh moto server state)."""
    if request.param == "disk":
        return DiskStorage(tmp_path / "attachments")
    return get_storage(request.getfixturevalue("moto_s3"))


# --- keys and headers ---------------------------------------------------------------------


def test_new_key_is_org_prefixed_random_hex() -> None:
    keys = {new_key(42) for _ in range(100)}
    assert len(keys) == 100
    assert all(k.startswith("42/") and len(k) == 35 for k in keys)
    for bad in (0, -1, True, "7", None):
        with pytest.raises(ValueError, match="org_id must be a positive integer"):
            new_key(bad)  # type: ignore[arg-type]


HOSTILE_KEYS = [
    "../etc/passwd",
    f"1/../../{HEX}",
    f"/1/{HEX}",
    f"1\\{HEX}",
    f"0/{HEX}",
    f"01/{HEX}",
    f"1/{HEX.upper()}",
    f"1/{HEX}\n",
    f"\u0661/{HEX}",  # ARABIC-INDIC DIGIT ONE: \d would match it, the key pattern does not
    f"1/{HEX[:31]}",
    f"1/{HEX}0",
    f"_quarantine/1/{HEX}",
    f"1/{HEX}/..",
    "",
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_disk_refuses_every_key_new_key_cannot_produce(key: str, tmp_path: Path) -> None:
    storage = DiskStorage(tmp_path / "root")
    calls: list[Callable[[], object]] = [
        lambda: put_bytes(storage, key, b"x"),
        lambda: storage.open(key).__enter__(),
        lambda: storage.delete(key),
        lambda: storage.exists(key),
        lambda: storage.quarantine(key),
        lambda: storage.presigned_get(key, filename="a", content_type="text/plain", ttl=60),
    ]
    for call in calls:
        with pytest.raises(InvalidKey, match="is not of the form <org_id>/<32 lowercase hex>"):
            call()
    assert list(tmp_path.rglob("*")) == []  # not even the root was created


@pytest.mark.parametrize(
    ("filename", "fallback", "encoded"),
    [
        ("report.pdf", "report.pdf", "report.pdf"),
        ("Café menu 2024.pdf", "Cafe menu 2024.pdf", "Caf%C3%A9%20menu%202024.pdf"),
        ("отчёт.docx", "download.docx", "%D0%BE%D1%82%D1%87%D1%91%D1%82.docx"),
        ('a"b\\c;d.txt', "c_d.txt", "c%3Bd.txt"),
        ('say "hi";.txt', "say _hi.txt", "say%20%22hi%22%3B.txt"),
        ("evil\r\nSet-Cookie: x=1.txt", "evilSet-Cookie_ x_1.txt", "evilSet-Cookie%3A%20x%3D1.txt"),
        ("\u202egnp.exe", "gnp.exe", "gnp.exe"),
        ("../../etc/passwd", "passwd", "passwd"),
        ("", "download", "download"),
    ],
)
def test_content_disposition_is_always_a_safe_attachment(
    filename: str, fallback: str, encoded: str
) -> None:
    expected = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    assert content_disposition(filename) == expected


def test_content_disposition_bounds_long_names() -> None:
    header = content_disposition("x" * 1000 + ".pdf")
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert len(fallback) <= 100 and fallback.endswith(".pdf")
    assert header.endswith(".pdf") and header.count("x") == 255 - 4 + 100 - 4


# --- the shared contract, on disk and on S3 --------------------------------------------------


def test_round_trip(storage: Storage) -> None:
    key, other = new_key(1), new_key(2)
    assert not storage.exists(key)
    put_bytes(storage, key, b"hello, world")
    put_bytes(storage, other, b"")  # zero bytes is a file too
    assert storage.exists(key) and storage.exists(other)
    assert read_all(storage, key) == b"hello, world"
    assert read_all(storage, other) == b""
    storage.delete(key)
    storage.delete(key)  # idempotent
    assert not storage.exists(key) and storage.exists(other)
    with pytest.raises(ObjectNotFound, match="not in attachment storage"):
        read_all(storage, key)


def test_a_wrong_size_stores_nothing(storage: Storage) -> None:
    short, long = new_key(1), new_key(1)
    with pytest.raises(ValueError, match="ended after 3 of its declared 10 bytes"):
        storage.put(short, io.BytesIO(b"abc"), 10, "text/plain")
    with pytest.raises(ValueError, match="longer than its declared 3 bytes"):
        storage.put(long, io.BytesIO(b"abcdef"), 3, "text/plain")
    assert not storage.exists(short) and not storage.exists(long)
    with pytest.raises(ValueError, match="not a media type"):
        storage.put(short, io.BytesIO(b"a"), 1, "text/html\r\nX-Evil: 1")
    with pytest.raises(ValueError, match="non-negative number of bytes"):
        storage.put(short, io.BytesIO(b"a"), -1, "text/plain")


def test_quarantine_takes_the_object_out_of_reach(storage: Storage) -> None:
    key = new_key(3)
    put_bytes(storage, key, b"X5O!P%@AP")
    moved = storage.quarantine(key)
    assert not storage.exists(key)
    if isinstance(storage, DiskStorage):
        assert moved is True
        assert (storage.root / "_quarantine" / key).read_bytes() == b"X5O!P%@AP"
        assert storage.quarantine(key) is True  # a retried job finds it already moved
    else:
        assert moved is False  # no S3_QUARANTINE_BUCKET: deleted
        assert storage.quarantine(key) is False


def test_presigned_ttl_and_type_are_checked(storage: Storage) -> None:
    key = new_key(1)
    for ttl in (0, 301, 3600):
        with pytest.raises(ValueError, match="1 to 300 seconds"):
            storage.presigned_get(key, filename="a.txt", content_type="text/plain", ttl=ttl)
    with pytest.raises(ValueError, match="not a media type"):
        storage.presigned_get(key, filename="a.txt", content_type="text/html\n", ttl=60)


# --- disk only -------------------------------------------------------------------------------


class Exploding(io.RawIOBase):
    """A stream that fails after `good` bytes (a client that disconnects mid-upload)."""

    def __init__(self, good: int) -> None:
        self.left = good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            raise RuntimeError("the client went away")
        n = min(len(buffer), self.left)
        buffer[:n] = b"a" * n
        self.left -= n
        return n


def test_disk_writes_are_all_or_nothing(tmp_path: Path) -> None:
    storage = DiskStorage(tmp_path)
    key = new_key(5)
    put_bytes(storage, key, b"first version")
    with pytest.raises(RuntimeError, match="went away"):
        storage.put(key, io.BufferedReader(Exploding(3 * MB)), 10 * MB, "text/plain")
    assert read_all(storage, key) == b"first version"  # never a half-written object
    assert [p.name for p in storage.path_for(key).parent.iterdir()] == [key.split("/")[1]]
    assert oct(storage.path_for(key).stat().st_mode & 0o777) == "0o600"


def test_disk_check_reports_an_unusable_directory(tmp_path: Path) -> None:
    DiskStorage(tmp_path / "new" / "dir").check()
    assert (tmp_path / "new" / "dir").is_dir() and not any((tmp_path / "new" / "dir").iterdir())
    (tmp_path / "a-file").write_text("not a directory")
    broken = DiskStorage(tmp_path / "a-file" / "attachments")
    with pytest.raises(StorageError, match="on disk could not write the file: Not a directory"):
        broken.check()
    with pytest.raises(StorageError, match="Not a directory"):
        put_bytes(broken, new_key(1), b"x")


def test_disk_never_presigns(tmp_path: Path) -> None:
    url = DiskStorage(tmp_path).presigned_get(
        new_key(1), filename="a", content_type="text/plain", ttl=60
    )
    assert url is None


# --- S3 only (moto) --------------------------------------------------------------------------


def test_s3_creates_its_buckets(moto_s3: dict[str, Any]) -> None:
    storage = S3Storage.from_config({**moto_s3, "S3_QUARANTINE_BUCKET": "helpdesk-quarantine"})
    client = storage._client
    assert not client.bucket_exists("helpdesk-test")
    put_bytes(storage, new_key(1), b"x")
    assert client.bucket_exists("helpdesk-test") and client.bucket_exists("helpdesk-quarantine")


def test_s3_quarantine_bucket_keeps_the_object(moto_s3: dict[str, Any]) -> None:
    storage = get_storage({**moto_s3, "S3_QUARANTINE_BUCKET": "helpdesk-quarantine"})
    quarantine = get_storage({**moto_s3, "S3_BUCKET": "helpdesk-quarantine"})
    key = new_key(9)
    put_bytes(storage, key, b"infected")
    assert storage.quarantine(key) is True
    assert not storage.exists(key)
    assert read_all(quarantine, key) == b"infected"
    assert storage.quarantine(key) is True  # retried after the copy: already there
    assert storage.quarantine(new_key(9)) is False  # never existed


def test_s3_presigned_url_downloads_as_attachment(moto_s3: dict[str, Any]) -> None:
    storage = get_storage(moto_s3)
    key = new_key(1)
    put_bytes(storage, key, b"%PDF-1.7 body", "application/pdf")
    name = "Отчёт «Q3».pdf"
    url = storage.presigned_get(key, filename=name, content_type="application/pdf", ttl=60)
    assert url is not None and "X-Amz-Expires=60" in url
    status, headers, body = fetch(url)
    assert (status, body) == (200, b"%PDF-1.7 body")
    assert headers["Content-Disposition"] == content_disposition(name)
    assert headers["Content-Type"] == "application/pdf"


class Trickle(io.RawIOBase):
    """A stream that hands out at most 64 KiB per read, like a socket or a pipe."""

    def __init__(self, data: bytes) -> None:
        self.source = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self.source.readinto(memoryview(buffer)[: 64 * 1024])


def test_s3_multipart_upload_is_all_or_nothing(moto_s3: dict[str, Any]) -> None:
    storage = S3Storage.from_config(moto_s3)
    data = os.urandom(PART_SIZE + MB)  # two parts
    key, short, long = new_key(1), new_key(1), new_key(1)
    storage.put(key, Trickle(data), len(data), "application/zip")  # type: ignore[arg-type]
    assert read_all(storage, key) == data
    with pytest.raises(ValueError, match=f"ended after {len(data) - 10} of its declared"):
        storage.put(short, io.BytesIO(data[:-10]), len(data), "application/zip")
    with pytest.raises(ValueError, match="longer than its declared"):
        storage.put(long, io.BytesIO(data + b"!"), len(data), "application/zip")
    assert not storage.exists(short) and not storage.exists(long)
    unfinished = storage._client._list_multipart_uploads("helpdesk-test").uploads
    assert unfinished == []  # the failed upload was aborted, no parts left behind


def test_s3_open_gives_the_connection_back(moto_s3: dict[str, Any]) -> None:
    storage = S3Storage.from_config(moto_s3)
    key = new_key(1)
    put_bytes(storage, key, os.urandom(2 * MB))
    idle = storage._client._http.connection_from_url(moto_s3["S3_ENDPOINT"]).pool
    assert idle is not None
    for _ in range(idle.maxsize + 5):  # more than the pool holds: leaks would show
        with pytest.raises(KeyError), storage.open(key) as stream:
            assert len(stream.read(1000)) == 1000
            raise KeyError("the caller fails mid-read")
        assert stream.closed
    assert idle.qsize() == idle.maxsize  # every connection is back in the pool
    assert len(read_all(storage, key)) == 2 * MB  # and the storage still works


def test_s3_recreates_a_bucket_deleted_under_it(moto_s3: dict[str, Any]) -> None:
    storage = S3Storage.from_config(moto_s3)
    first = new_key(1)
    put_bytes(storage, first, b"x")
    storage.delete(first)
    storage._client.remove_bucket("helpdesk-test")
    with pytest.raises(StorageError, match="NoSuchBucket"):
        put_bytes(storage, new_key(1), b"x")
    key = new_key(1)
    put_bytes(storage, key, b"y")
    assert read_all(storage, key) == b"y"


def test_s3_down_fails_fast_with_a_short_message(moto_s3: dict[str, Any]) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    storage = get_storage({**moto_s3, "S3_ENDPOINT": endpoint, "S3_QUARANTINE_BUCKET": "q-bucket"})
    key = new_key(1)
    calls: list[Callable[[], object]] = [
        storage.check,
        lambda: put_bytes(storage, key, b"x"),
        lambda: read_all(storage, key),
        lambda: storage.exists(key),
        lambda: storage.delete(key),
        lambda: storage.quarantine(key),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(StorageError, match="S3 is unreachable") as caught:
            call()
        assert time.monotonic() - started < 3
        message = str(caught.value)
        assert "127.0.0.1" not in message and moto_s3["S3_SECRET_KEY"] not in message


def test_s3_that_stops_answering_times_out() -> None:
    with socket.socket() as listener:  # accepts connections, never answers a request
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        host, port = listener.getsockname()
        client = make_client(
            f"http://{host}:{port}", access_key="a", secret_key="b", region="us-east-1",
            read_timeout=0.3,
        )  # fmt: skip
        storage = S3Storage(client, "helpdesk-test")
        started = time.monotonic()
        with pytest.raises(
            StorageError, match="S3 did not answer in time: could not open the bucket"
        ):
            storage.check()
        assert time.monotonic() - started < 3


def test_bad_s3_settings_fail_when_the_app_is_built(moto_s3: dict[str, Any]) -> None:
    for endpoint in ("127.0.0.1:9000", "ftp://host", "http://host:9000/prefix", "http://u@h"):
        with pytest.raises(ValueError, match="S3_ENDPOINT must"):
            get_storage({**moto_s3, "S3_ENDPOINT": endpoint})
    with pytest.raises(ValueError, match="'Bad_Bucket' is not a valid S3 bucket name"):
        get_storage({**moto_s3, "S3_BUCKET": "Bad_Bucket"})
    with pytest.raises(ValueError, match="STORAGE must be disk or s3"):
        get_storage({**moto_s3, "STORAGE": "ftp"})
