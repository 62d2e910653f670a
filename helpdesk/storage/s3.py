"""Attachments in any S3 API (MinIO, AWS, …) through the minio SDK.

Why the custom HTTP pool: the SDK's default waits five minutes per attempt and retries five
times, so a dead S3 would hang an upload for half an hour. Here a connection attempt gives
up after CONNECT_TIMEOUT seconds and a stalled socket after READ_TIMEOUT, each retried once
(a refused connection fails in milliseconds), and every SDK or network failure becomes a
StorageError with a short message (never the endpoint, never a credential) that callers turn
into a 503.

Uploads stream in PART_SIZE parts, one at a time, so memory stays bounded whatever the file
size (`_put_parts` uses the SDK's multipart primitives: keep minio at 7.2.x); reads hand out
the HTTP response body as a stream and always give the connection back.
Buckets are created on first use (or by `check`), never at import or app start, so the app
starts while S3 is down and `/readyz` reports it.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.datatypes import Part
from minio.error import MinioException, S3Error, ServerError
from minio.helpers import check_bucket_name

from helpdesk.storage.base import (
    ExactReader,
    ObjectNotFound,
    StorageError,
    check_content_type,
    check_key,
    check_size,
    check_ttl,
    content_disposition,
)

CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 15.0  # per socket read/write, not per object
PART_SIZE = 5 * 1024 * 1024  # the S3 minimum; also the most a put holds in memory
READ_BUFFER = 64 * 1024
_AUTH_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
_MISSING_CODES = {"NoSuchKey", "NoSuchObject"}


class S3Storage:
    """Objects in one bucket; infected files copied to a quarantine bucket or deleted."""

    def __init__(self, client: Minio, bucket: str, quarantine_bucket: str = "") -> None:
        for name in filter(None, (bucket, quarantine_bucket)):
            try:
                check_bucket_name(name, strict=True)
            except ValueError as exc:
                raise ValueError(
                    f"{name!r} is not a valid S3 bucket name "
                    "(3-63 lowercase letters, digits, dots and hyphens)"
                ) from exc
        self._client = client
        self.bucket = bucket
        self.quarantine_bucket = quarantine_bucket
        self._buckets_ready = False
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> S3Storage:
        """Build from S3_* settings (no network traffic)."""
        return cls(
            make_client(
                config["S3_ENDPOINT"],
                access_key=config["S3_ACCESS_KEY"],
                secret_key=config["S3_SECRET_KEY"],
                region=config.get("S3_REGION") or "us-east-1",
            ),
            bucket=config["S3_BUCKET"],
            quarantine_bucket=config.get("S3_QUARANTINE_BUCKET") or "",
        )

    def put(self, key: str, stream: BinaryIO, size: int, content_type: str) -> None:
        """Upload exactly `size` bytes from `stream` in bounded parts."""
        check_key(key)
        check_size(size)
        check_content_type(content_type)
        self._ensure_buckets()
        reader = ExactReader(stream, size)
        with self._errors("store the file"):
            if size <= PART_SIZE:
                self._client.put_object(
                    self.bucket, key, cast(BinaryIO, reader), size, content_type=content_type
                )
            else:
                self._put_parts(key, reader, size, content_type)
        try:
            reader.check_drained()
        except ValueError:
            self.delete(key)
            raise

    def _put_parts(self, key: str, reader: ExactReader, size: int, content_type: str) -> None:
        """Multipart upload holding one part in memory at a time.

        The SDK's own `put_object` loop keeps the previous part alive while it reads the next
        (two parts, 10 MiB), which breaks the memory budget; this loop frees each part first.
        """
        client = self._client
        upload_id = client._create_multipart_upload(
            self.bucket, key, {"Content-Type": content_type}
        )
        try:
            parts = []
            for number, offset in enumerate(range(0, size, PART_SIZE), start=1):
                data = _read_exactly(reader, min(PART_SIZE, size - offset))
                etag = client._upload_part(self.bucket, key, data, None, upload_id, number)
                del data  # free this part before the next one is read
                parts.append(Part(number, etag))
            client._complete_multipart_upload(self.bucket, key, upload_id, parts)
        except BaseException:
            with suppress(MinioException, urllib3.exceptions.HTTPError, OSError):
                client._abort_multipart_upload(self.bucket, key, upload_id)
            raise

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        """Yield the object's body as a stream; the connection is released on exit."""
        check_key(key)
        with self._errors("read the file"):
            response = self._client.get_object(self.bucket, key)
        body = io.BufferedReader(_Body(response), READ_BUFFER)
        try:
            yield cast(BinaryIO, body)
        finally:
            body.close()
            response.close()
            response.release_conn()

    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        check_key(key)
        with self._errors("delete the file"):
            self._client.remove_object(self.bucket, key)

    def quarantine(self, key: str) -> bool:
        """Copy to S3_QUARANTINE_BUCKET and delete (True), or only delete when unset (False)."""
        check_key(key)
        if not self.quarantine_bucket:
            self.delete(key)
            return False
        self._ensure_buckets()
        try:
            with self._errors("quarantine the file"):
                self._client.copy_object(self.quarantine_bucket, key, CopySource(self.bucket, key))
        except ObjectNotFound:
            return self._has(self.quarantine_bucket, key)  # moved by an earlier attempt
        self.delete(key)
        return True

    def exists(self, key: str) -> bool:
        """Tell whether an object is stored under `key`."""
        return self._has(self.bucket, check_key(key))

    def presigned_get(self, key: str, *, filename: str, content_type: str, ttl: int) -> str | None:
        """Return a GET URL valid for `ttl` seconds that downloads as an attachment."""
        check_key(key)
        check_content_type(content_type)
        check_ttl(ttl)
        headers: dict[str, str | list[str] | tuple[str]] = {
            "response-content-disposition": content_disposition(filename),
            "response-content-type": content_type,
            "response-cache-control": "private, no-store",
        }
        with self._errors("sign a download URL"):
            return self._client.presigned_get_object(
                self.bucket, key, expires=timedelta(seconds=ttl), response_headers=headers
            )

    def check(self) -> None:
        """Raise StorageError unless S3 answers and the buckets exist (created if missing)."""
        self._ensure_buckets(force=True)

    def _has(self, bucket: str, key: str) -> bool:
        try:
            with self._errors("look up the file"):
                self._client.stat_object(bucket, key)
        except ObjectNotFound:
            return False
        return True

    def _ensure_buckets(self, *, force: bool = False) -> None:
        if self._buckets_ready and not force:
            return
        with self._lock, self._errors("open the bucket"):
            for bucket in filter(None, (self.bucket, self.quarantine_bucket)):
                if self._client.bucket_exists(bucket):
                    continue
                try:
                    self._client.make_bucket(bucket)
                except S3Error as exc:
                    if exc.code != "BucketAlreadyOwnedByYou":  # created by another process
                        raise
            self._buckets_ready = True

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn any SDK or network failure into a StorageError without secrets."""
        try:
            yield
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            if isinstance(exc, S3Error) and exc.code == "NoSuchBucket":
                self._buckets_ready = False  # deleted under us: recreate on the next put
            raise translate_error(action, exc) from exc


def make_client(
    endpoint: str,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
) -> Minio:
    """Build a minio client for `http(s)://host[:port]` with short timeouts and few retries."""
    parts = urlsplit(endpoint)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("S3_ENDPOINT must look like http://host:port or https://host")
    if parts.path.strip("/") or parts.query or parts.fragment or parts.username:
        raise ValueError("S3_ENDPOINT must be scheme://host[:port] only: no path, query or user")
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(
            total=2,
            connect=1,
            read=1,
            status=1,
            backoff_factor=0.2,
            status_forcelist=(500, 502, 503, 504),
        ),
    )
    return Minio(
        parts.netloc,
        access_key=access_key,
        secret_key=secret_key,
        secure=parts.scheme == "https",
        region=region,
        http_client=http,
    )


def translate_error(action: str, exc: BaseException) -> StorageError:
    """Return a StorageError that says what failed and what to check, without secrets."""
    if isinstance(exc, S3Error):
        if exc.code in _MISSING_CODES:
            return ObjectNotFound("the file is not in attachment storage")
        if exc.code in _AUTH_CODES:
            return StorageError(
                f"S3 refused to {action} ({exc.code}): check S3_ACCESS_KEY, S3_SECRET_KEY "
                "and the bucket policy"
            )
        return StorageError(f"S3 could not {action} ({exc.code})")
    if isinstance(exc, ServerError):
        return StorageError(f"S3 answered HTTP {exc.status_code} when asked to {action}")
    if isinstance(exc, MinioException):
        return StorageError(f"S3 gave an unexpected answer when asked to {action}")
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason  # the last attempt's failure
    if isinstance(exc, urllib3.exceptions.ResponseError):
        return StorageError(f"S3 kept answering with server errors: could not {action}")
    if isinstance(exc, urllib3.exceptions.NewConnectionError | urllib3.exceptions.MaxRetryError):
        return StorageError(f"S3 is unreachable: could not {action} (check S3_ENDPOINT)")
    if isinstance(exc, urllib3.exceptions.TimeoutError):  # after NewConnectionError, a subclass
        return StorageError(f"S3 did not answer in time: could not {action} (check S3_ENDPOINT)")
    return StorageError(f"the connection to S3 failed: could not {action}")


def _read_exactly(reader: ExactReader, size: int) -> bytes:
    """Read `size` bytes (one part), across short reads of a pipe or socket."""
    data = reader.read(size)
    if len(data) == size:
        return data
    pieces, got = [data], len(data)
    while got < size:
        pieces.append(reader.read(size - got))
        got += len(pieces[-1])
    return b"".join(pieces)


class _Body(io.RawIOBase):
    """An S3 response body as a raw stream whose network errors are StorageErrors."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return self._response.readinto(buffer)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise translate_error("read the file", exc) from exc
