"""A clamd INSTREAM client that fails closed: only clamd's own "OK" ever means clean.

Why it is hand-written and this strict: peers served uploads nobody had checked, and the
PyPI `clamd` client reports an over-long stream as a `BrokenPipeError` the caller has to
interpret. Here every outcome is one of three values and anything unexpected is `error`:

* `clean` — clamd answered exactly `stream: OK`.
* `infected` — clamd answered `stream: <signature> FOUND`; the signature is kept.
* `error` — everything else: unreachable socket, timeout, a reset while streaming,
  `INSTREAM size limit exceeded`, any `… ERROR` reply, an unparsable reply, and the
  `Heuristics.Limits.Exceeded.*` finding clamd reports (with `AlertExceedsMax yes`) for a file
  it could not scan completely. Such a file is not known to be malware, but it is not known
  to be clean either, so it is blocked and retried like any failed scan.

The wire format (clamd(8)): `zINSTREAM\\0`, then chunks each prefixed by their length as a
4-byte big-endian integer, then a zero-length chunk; clamd answers one NUL-terminated line.
`CLAMD_URL` is `tcp://host:port` or `unix:///path/to/clamd.ctl`. Functions here never raise
for clamd or network problems; reading the caller's stream may raise (storage errors are
the caller's to record).

What clamd does not see (proven with ClamAV 1.4.6, Cisco-Talos/clamav#633 and #1832): a ZIP
member that inflates beyond `MaxFileSize` is silently *trimmed* to that size and the rest is
never scanned — no `Heuristics.Limits.Exceeded` alert, even with `AlertExceedsMax yes`. A
30 KB ZIP holding 30 MB of zeros followed by malware comes back `OK`, also nested in another
ZIP or in a gzip; a ZIP without its central directory is not looked into at all. gzip and PDF
streams do raise the alert. So a `clean` verdict for a file that is (or contains) a ZIP is
trusted only after `archive_problem` has inflated every member itself, within the same
limits, and found nothing clamd could have missed. This assumes
clamd's `MaxFileSize` ≥ ATTACHMENT_MAX_BYTES and `MaxScanSize` ≥ 4 times ATTACHMENT_MAX_BYTES
(tests/clamav/clamd.conf.template: 25M and 100M).
"""

from __future__ import annotations

import socket
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal
from urllib.parse import urlsplit

Status = Literal["clean", "infected", "error"]
REPLY_MAX = 4096
LIMITS_HEURISTIC = "Heuristics.Limits.Exceeded"


@dataclass(frozen=True)
class ScanResult:
    """What clamd said about one stream."""

    status: Status
    signature: str | None
    detail: str


class _ClamdError(Exception):
    """A clamd conversation failed (connect, send, receive or timeout)."""


def _connect(url: str, timeout: float) -> socket.socket:
    parts = urlsplit(url)
    try:
        if parts.scheme == "unix" and parts.path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(parts.path)
            except BaseException:
                sock.close()
                raise
            return sock
        if parts.scheme == "tcp" and parts.hostname and parts.port:
            return socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    except ValueError as exc:  # a port that is not a number
        raise _ClamdError(f"CLAMD_URL {url!r} is not valid: {exc}") from exc
    except OSError as exc:
        raise _ClamdError(f"clamd at {url} is unreachable: {_describe(exc)}") from exc
    raise _ClamdError(f"CLAMD_URL {url!r} is not tcp://host:port or unix:///path/to/socket")


def _describe(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return exc.strerror or type(exc).__name__


def _read_reply(sock: socket.socket, deadline: _Deadline | None = None) -> str:
    data = b""
    while b"\0" not in data and len(data) < REPLY_MAX:
        if deadline is not None:
            deadline.arm()  # a reply trickling in byte by byte still ends on time
        part = sock.recv(REPLY_MAX)
        if not part:
            break
        data += part
    return data.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


class _Deadline:
    """One overall time budget for a conversation, applied to every socket call."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.sock = sock
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    def arm(self) -> None:
        left = self.ends - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no verdict within {self.seconds:g} s")
        self.sock.settimeout(left)


def scan_stream(
    url: str, stream: BinaryIO, *, timeout: float = 30, chunk: int = 64 * 1024
) -> ScanResult:
    """Stream `stream` to clamd with INSTREAM and return its verdict (never raises for clamd)."""
    try:
        sock = _connect(url, timeout)
    except _ClamdError as exc:
        return ScanResult("error", None, str(exc))
    with sock:
        deadline = _Deadline(sock, timeout)
        try:
            deadline.arm()
            sock.sendall(b"zINSTREAM\0")
            while data := stream.read(chunk):
                deadline.arm()
                sock.sendall(struct.pack(">I", len(data)) + data)
            deadline.arm()
            sock.sendall(struct.pack(">I", 0))
            return parse_reply(_read_reply(sock, deadline))
        except OSError as exc:
            return _interrupted(sock, url, exc)


def _interrupted(sock: socket.socket, url: str, exc: OSError) -> ScanResult:
    """clamd hung up or went quiet mid-stream; keep its reason if it sent one first."""
    if not isinstance(exc, TimeoutError):
        try:  # e.g. "INSTREAM size limit exceeded. ERROR" arrives just before the reset
            sock.settimeout(1)
            reply = _read_reply(sock)
        except OSError:
            reply = ""
        if reply:
            return ScanResult("error", None, f"clamd stopped the scan: {reply}")
    return ScanResult("error", None, f"scan via {url} failed: {_describe(exc)}")


def parse_reply(reply: str) -> ScanResult:
    """Turn one clamd INSTREAM reply line into a result; anything unexpected is "error"."""
    if reply == "stream: OK":
        return ScanResult("clean", None, "clamd: OK")
    if reply.startswith("stream: ") and reply.endswith(" FOUND"):
        signature = reply.removeprefix("stream: ").removesuffix(" FOUND").strip()
        if signature.startswith(LIMITS_HEURISTIC):
            detail = f"clamd could not scan the whole file (over its limits: {signature})"
            return ScanResult("error", None, detail)
        if signature and "\n" not in signature:
            return ScanResult("infected", signature[:200], f"clamd: {signature} FOUND")
    if not reply:
        return ScanResult("error", None, "clamd closed the connection without a verdict")
    return ScanResult("error", None, f"clamd: {reply[:300]}")


def ping(url: str, timeout: float = 5) -> bool:
    """Return True when clamd at `url` answers PING with PONG."""
    try:
        sock = _connect(url, timeout)
    except _ClamdError:
        return False
    with sock:
        try:
            sock.sendall(b"zPING\0")
            return _read_reply(sock) == "PONG"
        except OSError:
            return False


# --- what clamd trims: verify ZIP members ourselves ------------------------------------------

ZIP_MAGIC = b"PK\x03\x04"
GZIP_MAGIC = b"\x1f\x8b"
MAX_DEPTH = 4  # archives nested deeper than this are not verified: blocked
MAX_MEMBERS = 10_000  # clamd's MaxFiles default
READ = 64 * 1024


class _Unsafe(Exception):
    """The archive holds something clamd may not have scanned completely."""


@dataclass
class _Budget:
    member_limit: int
    total_limit: int
    inflated: int = 0

    def take(self, size: int, member_total: int) -> None:
        self.inflated += size
        if member_total > self.member_limit:
            raise _Unsafe(
                f"a file inside the archive expands beyond {self.member_limit} bytes, more than "
                "the virus scanner checks"
            )
        if self.inflated > self.total_limit:
            raise _Unsafe(f"the archive expands beyond {self.total_limit} bytes in total")


def archive_problem(file: BinaryIO, *, member_limit: int, total_limit: int) -> str | None:
    """Return why a "clean" verdict cannot be trusted for this ZIP/gzip file, else None.

    `file` must be seekable. Files that are neither ZIP nor gzip return None at once.
    """
    budget = _Budget(member_limit, total_limit)
    try:
        _check(file, budget, depth=0)
    except _Unsafe as exc:
        return str(exc)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
        return f"the archive is damaged and could not be checked completely ({type(exc).__name__})"
    return None


def _check(file: BinaryIO, budget: _Budget, depth: int) -> None:
    file.seek(0)
    head = file.read(4)
    file.seek(0)
    if head.startswith(GZIP_MAGIC):
        _check_gzip(file, budget, depth)
    elif zipfile.is_zipfile(file):  # also a ZIP appended to another file (SFX, polyglot)
        _check_zip(file, budget, depth)
    elif head.startswith(ZIP_MAGIC):  # clamd skips these entirely; some unzip tools do not
        raise _Unsafe("the ZIP archive has no central directory, so it cannot be scanned")


def _check_zip(file: BinaryIO, budget: _Budget, depth: int) -> None:
    with zipfile.ZipFile(file) as archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise _Unsafe(f"the archive holds more than {MAX_MEMBERS} files")
        for info in members:
            if info.flag_bits & 0x1:
                raise _Unsafe("the archive is encrypted, so its contents cannot be scanned")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _Unsafe("the archive uses a compression method that cannot be verified")
            _drain(_zip_member(file, info), budget, depth, declared=info.file_size)


def _zip_member(file: BinaryIO, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """Yield a member's bytes, inflated to the end of its data (not to its declared size)."""
    file.seek(info.header_offset)
    local = file.read(30)
    if len(local) < 30 or not local.startswith(ZIP_MAGIC):
        raise zipfile.BadZipFile("bad local header")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    file.seek(info.header_offset + 30 + name_len + extra_len)
    left = info.compress_size
    inflater = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    while left > 0:
        raw = file.read(min(READ, left))
        if not raw:
            raise EOFError("member data ends early")
        left -= len(raw)
        if inflater is None:
            yield raw
            continue
        out = inflater.decompress(raw, READ)
        while out:
            yield out
            out = inflater.decompress(inflater.unconsumed_tail, READ)
    if inflater is not None:
        if not inflater.eof:
            raise zlib.error("deflate stream incomplete")
        yield inflater.flush()


def _check_gzip(file: BinaryIO, budget: _Budget, depth: int) -> None:
    def chunks() -> Iterator[bytes]:
        inflater = zlib.decompressobj(31)
        while raw := file.read(READ):
            while raw:
                out = inflater.decompress(raw, READ)
                while out:
                    yield out
                    out = inflater.decompress(inflater.unconsumed_tail, READ)
                raw = inflater.unused_data  # concatenated gzip members
                if inflater.eof:
                    inflater = zlib.decompressobj(31)
                else:
                    raw = b""

    _drain(chunks(), budget, depth, declared=None)


def _drain(chunks: Iterator[bytes], budget: _Budget, depth: int, declared: int | None) -> None:
    """Count a member's real size; look inside it when it is itself an archive."""
    total = 0
    head = b""  # the first bytes, until there are enough to tell an archive
    nested: BinaryIO | None = None
    try:
        for chunk in chunks:
            total += len(chunk)
            budget.take(len(chunk), total)
            if nested is not None:
                nested.write(chunk)
            elif len(head) < 4:
                head += chunk
                nested = _nested_spool(head, depth)
        if declared is not None and total != declared:
            raise _Unsafe("a file inside the archive is larger or smaller than its header says")
        if nested is not None:
            _check(nested, budget, depth + 1)
    finally:
        if nested is not None:
            nested.close()


def _nested_spool(head: bytes, depth: int) -> BinaryIO | None:
    """Return a temporary file holding `head` when it starts an archive, else None."""
    if len(head) < 4 or not head.startswith((ZIP_MAGIC, GZIP_MAGIC)):
        return None
    if depth + 1 > MAX_DEPTH:
        raise _Unsafe(f"archives are nested more than {MAX_DEPTH} levels deep")
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
    spool.write(head)
    return spool
