"""Attachments on the local file system: the embedded default, and for single-host installs.

Layout under the root: `<org_id>/<32 hex>` per object, `_quarantine/<org_id>/<32 hex>` for
infected files. Only keys that pass `check_key` become paths, so nothing outside the root is
reachable. Writes go to a temporary file in the target directory, are fsynced and then
renamed into place, so a reader never sees a half-written object and a crash leaves at most
a `.incoming-*` file behind, never a truncated attachment.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from helpdesk.storage.base import (
    ExactReader,
    ObjectNotFound,
    StorageError,
    check_content_type,
    check_key,
    check_size,
    check_ttl,
)

CHUNK = 1024 * 1024
QUARANTINE_DIR = "_quarantine"
TEMP_PREFIX = ".incoming-"


class DiskStorage:
    """Objects as files under one root directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def put(self, key: str, stream: BinaryIO, size: int, content_type: str) -> None:
        """Store exactly `size` bytes from `stream` under `key`, atomically."""
        path = self._path(key)
        check_size(size)
        check_content_type(content_type)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX)
        except OSError as exc:
            raise _error("write", exc) from exc
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                reader = ExactReader(stream, size)
                while chunk := reader.read(CHUNK):
                    out.write(chunk)
                reader.check_drained()
                out.flush()
                os.fsync(out.fileno())
            temp.replace(path)
            _fsync_dir(path.parent)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise _error("write", exc) from exc
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        """Yield the stored file opened for reading; it is closed on exit."""
        path = self._path(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError as exc:
            raise ObjectNotFound("the file is not in attachment storage") from exc
        except OSError as exc:
            raise _error("read", exc) from exc
        with handle:
            yield handle

    def delete(self, key: str) -> None:
        """Remove the file; a missing file is not an error."""
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise _error("delete", exc) from exc

    def quarantine(self, key: str) -> bool:
        """Move the file to `<root>/_quarantine/` (True; also when it is already there)."""
        source = self._path(key)
        target = self.root / QUARANTINE_DIR / key
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            source.replace(target)
        except FileNotFoundError:
            return target.is_file()
        except OSError as exc:
            raise _error("quarantine", exc) from exc
        _fsync_dir(target.parent)
        return True

    def exists(self, key: str) -> bool:
        """Tell whether a file is stored under `key`."""
        path = self._path(key)
        try:
            return path.is_file()
        except OSError as exc:
            raise _error("read", exc) from exc

    def presigned_get(self, key: str, *, filename: str, content_type: str, ttl: int) -> str | None:
        """Return None: files on disk are streamed by the app."""
        self._path(key)
        check_content_type(content_type)
        check_ttl(ttl)
        return None

    def check(self) -> None:
        """Raise StorageError unless the root directory exists and takes a new file."""
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o750)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-") as probe:
                probe.write(b"ok")
                probe.flush()
        except OSError as exc:
            raise _error("write", exc) from exc

    def path_for(self, key: str) -> Path:
        """Return the file path of a key (for diagnostics and tests)."""
        return self._path(key)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)


def _error(action: str, exc: OSError) -> StorageError:
    reason = exc.strerror or type(exc).__name__
    return StorageError(f"attachment storage on disk could not {action} the file: {reason}")


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (best effort: some file systems refuse fsync on directories)."""
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
