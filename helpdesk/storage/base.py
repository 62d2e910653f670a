"""What every storage backend shares: the interface, its errors, keys and download headers.

Why keys are so strict: a storage key becomes a file path (disk) or an object name (S3), so
it must never carry user input. Keys are generated here (`new_key`) as
`<org_id>/<32 random hex>` and every backend refuses anything else before touching the file
system or the network, which makes path traversal impossible by construction.

Why `content_disposition` lives here: presigned S3 URLs and files streamed by the app must
send the same, safe header (always `attachment`, an ASCII fallback plus the exact UTF-8 name
per RFC 6266 / RFC 5987), so there is exactly one place that builds it.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from contextlib import AbstractContextManager
from typing import BinaryIO, Protocol
from urllib.parse import quote

KEY_PATTERN = re.compile(r"[1-9][0-9]{0,17}/[0-9a-f]{32}")
CONTENT_TYPE_PATTERN = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*"
    r"(?:; ?[A-Za-z0-9_-]+=[A-Za-z0-9_.+-]+)*"
)
MAX_PRESIGN_TTL = 300
FALLBACK_NAME = "download"
_FALLBACK_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()-]+")
_FALLBACK_EXT = re.compile(r"[A-Za-z0-9]{1,16}")
_NAME_MAX = 255
_FALLBACK_MAX = 100


class StorageError(Exception):
    """The storage is unreachable or failed: answer 503 and write nothing."""


class ObjectNotFound(StorageError):
    """The key is well-formed but no object is stored under it."""


class InvalidKey(ValueError):
    """A key that `new_key` could not have produced (a bug or an attack, never stored)."""


class Storage(Protocol):
    """Where attachment bytes live; the rest of the code never knows which backend."""

    def put(self, key: str, stream: BinaryIO, size: int, content_type: str) -> None:
        """Store exactly `size` bytes read from `stream` under `key` (all or nothing)."""
        ...

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Stream the object back; the context manager releases the file or connection."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object (no error when it is already gone)."""
        ...

    def quarantine(self, key: str) -> bool:
        """Move the object out of reach (True), or delete it when nowhere is configured."""
        ...

    def exists(self, key: str) -> bool:
        """Tell whether an object is stored under `key`."""
        ...

    def presigned_get(self, key: str, *, filename: str, content_type: str, ttl: int) -> str | None:
        """Return a short-lived download URL, or None when the app must stream the file."""
        ...

    def check(self) -> None:
        """Raise StorageError unless the storage can be written to right now."""
        ...


def new_key(org_id: int) -> str:
    """Return a fresh random storage key for the organization: `<org_id>/<32 hex>`."""
    if isinstance(org_id, bool) or not isinstance(org_id, int) or org_id < 1:
        raise ValueError(f"org_id must be a positive integer, got {org_id!r}")
    key = f"{org_id}/{secrets.token_hex(16)}"
    return check_key(key)


def check_key(key: object) -> str:
    """Return `key` if it has the shape `new_key` produces, else raise InvalidKey."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        shown = repr(key)[:80]
        raise InvalidKey(f"storage key {shown} is not of the form <org_id>/<32 lowercase hex>")
    return key


def check_content_type(content_type: object) -> str:
    """Return the media type if it is a plain `type/subtype[; param=value]`, else raise."""
    if not isinstance(content_type, str) or not CONTENT_TYPE_PATTERN.fullmatch(content_type):
        shown = repr(content_type)[:80]
        raise ValueError(f"content type {shown} is not a media type like text/plain")
    return content_type


def check_size(size: object) -> int:
    """Return `size` if it is a byte count (a non-negative int), else raise ValueError."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"size must be a non-negative number of bytes, got {size!r}")
    return size


def check_ttl(ttl: object) -> int:
    """Return `ttl` if it is between 1 and MAX_PRESIGN_TTL seconds, else raise ValueError."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_PRESIGN_TTL:
        raise ValueError(f"a download URL lives 1 to {MAX_PRESIGN_TTL} seconds, got {ttl!r}")
    return ttl


def content_disposition(filename: str) -> str:
    """Build `attachment; filename="<ascii>"; filename*=UTF-8''<pct>` for a display name."""
    name = _header_safe_name(filename)
    encoded = quote(name.encode("utf-8"), safe="")
    return f"attachment; filename=\"{_ascii_fallback(name)}\"; filename*=UTF-8''{encoded}"


def _header_safe_name(filename: str) -> str:
    """The last path part, NFC, without control/format (bidi, zero-width) characters."""
    text = unicodedata.normalize("NFC", str(filename))
    text = "".join(ch for ch in text if unicodedata.category(ch) not in {"Cc", "Cf", "Zl", "Zp"})
    text = text.replace("\\", "/").rsplit("/", 1)[-1].strip().strip(".").strip()
    return text[-_NAME_MAX:] if text else FALLBACK_NAME


def _ascii_fallback(name: str) -> str:
    """ASCII letters, digits, spaces and `._()-` only; accents dropped, anything else `_`."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    safe = " ".join(_FALLBACK_UNSAFE.sub("_", plain).split())
    stem, dot, ext = safe.rpartition(".")
    if not dot or not _FALLBACK_EXT.fullmatch(ext):
        stem, ext = safe, ""
    stem = stem.strip("._ ")
    if not stem.strip("_()- "):
        stem = FALLBACK_NAME
    stem = stem[: _FALLBACK_MAX - len(ext) - 1]
    return f"{stem}.{ext}" if ext else stem


class ExactReader:
    """Hand out exactly `size` bytes of a stream: a short or long stream is an error."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self._size = size
        self._remaining = size

    def read(self, n: int | None = -1) -> bytes:
        """Return up to `n` bytes, never more than the declared size."""
        if self._remaining == 0:
            return b""
        want = self._remaining if n is None or n < 0 else min(n, self._remaining)
        data = self._stream.read(want)
        if not data:
            got = self._size - self._remaining
            raise ValueError(f"the file ended after {got} of its declared {self._size} bytes")
        self._remaining -= len(data)
        return data

    def check_drained(self) -> None:
        """Raise ValueError if the stream holds more bytes than declared."""
        if self._stream.read(1):
            raise ValueError(f"the file is longer than its declared {self._size} bytes")
