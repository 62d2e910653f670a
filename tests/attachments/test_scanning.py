"""The clamd INSTREAM client and the ZIP check against a real clamd with the EICAR signatures.

Misbehaving "clamd" servers are real loopback sockets that accept and then go quiet, hang up
or answer nonsense: the client must say "error" for every one of them, never "clean".
"""

from __future__ import annotations

import gzip
import io
import os
import socket
import struct
import threading
import zipfile
from collections.abc import Callable, Iterator

import pytest

from helpdesk.scanning import archive_problem, parse_reply, ping, scan_stream
from tests.attachments.clamd_fixture import EICAR, Clamd
from tests.attachments.scan_helpers import PDF_BYTES, TEXT_BYTES, eicar_zip

MiB = 1024 * 1024
LIMIT = 25 * MiB  # MaxFileSize and StreamMaxLength of tests/clamav/clamd.conf.template


def zipped(*members: tuple[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def padded_zip(size: int = 30 * MiB) -> bytes:
    """A ~30 KB ZIP whose one member is `size` bytes of zeros followed by EICAR."""
    return zipped(("big.bin", b"\0" * size + EICAR))


# --- verdicts from a real clamd -------------------------------------------------------------


@pytest.mark.parametrize("via", ["tcp", "unix"])
def test_eicar_is_infected_with_the_unofficial_signature(clamd: Clamd, clamd_url: str, via: str):
    url = clamd.tcp_url if via == "tcp" else clamd.unix_url
    result = scan_stream(url, io.BytesIO(EICAR))
    assert result.status == "infected"
    assert result.signature is not None and result.signature.endswith(".UNOFFICIAL")
    assert result.signature.startswith("Test.EICAR.")


def test_eicar_inside_a_zip_is_infected(clamd_url: str):
    result = scan_stream(clamd_url, io.BytesIO(eicar_zip()))
    assert (result.status, result.signature) == ("infected", "Test.EICAR.NDB.UNOFFICIAL")


def test_eicar_in_small_chunks_is_still_found(clamd_url: str):
    result = scan_stream(clamd_url, io.BytesIO(b"prefix " + EICAR), chunk=7)
    assert result.status == "infected"


@pytest.mark.parametrize(
    "data", [TEXT_BYTES, PDF_BYTES, b"", os.urandom(2 * MiB)], ids=["text", "pdf", "empty", "2MB"]
)
def test_harmless_files_are_clean(clamd_url: str, data: bytes):
    assert scan_stream(clamd_url, io.BytesIO(data)).status == "clean"


def test_a_stream_over_stream_max_length_is_an_error_never_clean(clamd_url: str):
    result = scan_stream(clamd_url, io.BytesIO(b"a" * (LIMIT + 1)))
    assert result.status == "error"
    assert "INSTREAM size limit exceeded" in result.detail


def test_exactly_the_limit_is_still_scanned(clamd_url: str):
    assert scan_stream(clamd_url, io.BytesIO(b"a" * LIMIT)).status == "clean"


def test_a_gzip_expanding_past_max_file_size_is_an_error_not_malware(clamd_url: str):
    result = scan_stream(clamd_url, io.BytesIO(gzip.compress(b"\0" * (30 * MiB))))
    assert result.status == "error" and result.signature is None
    assert "Heuristics.Limits.Exceeded.MaxFileSize" in result.detail


def test_clamd_alone_misses_malware_past_max_file_size_in_a_zip(clamd_url: str):
    """Why `archive_problem` exists (ClamAV 1.4.6; Cisco-Talos/clamav#633, #1832).

    If this starts failing after a ClamAV upgrade, clamd now alerts on trimmed ZIP members;
    keep `archive_problem` anyway (older clamd versions in production).
    """
    result = scan_stream(clamd_url, io.BytesIO(padded_zip()))
    assert result.status == "clean"
    assert archive_problem(io.BytesIO(padded_zip()), member_limit=LIMIT, total_limit=4 * LIMIT)


def test_clamd_stopped_is_an_error_and_ping_tells(clamd: Clamd, clamd_url: str):
    with clamd.stopped():
        for url in (clamd.tcp_url, clamd.unix_url):
            result = scan_stream(url, io.BytesIO(TEXT_BYTES))
            assert result.status == "error"
            assert result.detail.startswith(f"clamd at {url} is unreachable")
            assert not ping(url)
    assert ping(clamd.tcp_url) and ping(clamd.unix_url)


# --- clamd misbehaving: real sockets that never give a verdict ------------------------------


@pytest.fixture
def fake_clamd() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    """Start a loopback server that handles each connection with `behave`; return its URL."""
    servers: list[socket.socket] = []

    def start(behave: Callable[[socket.socket], None]) -> str:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def serve() -> None:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                behave(conn)

        threading.Thread(target=serve, daemon=True).start()
        return f"tcp://127.0.0.1:{server.getsockname()[1]}"

    yield start
    for server in servers:
        server.close()


def test_a_silent_clamd_times_out_as_an_error(fake_clamd):
    release = threading.Event()
    url = fake_clamd(lambda conn: release.wait(10))
    try:
        result = scan_stream(url, io.BytesIO(TEXT_BYTES), timeout=0.5)
    finally:
        release.set()
    assert result.status == "error"
    assert result.detail.endswith("failed: timed out")


def test_a_reply_trickling_in_still_ends_at_the_deadline(fake_clamd):
    stop = threading.Event()

    def trickle(conn: socket.socket) -> None:
        conn.settimeout(5)
        data = b""
        while not data.endswith(struct.pack(">I", 0)):
            data += conn.recv(65536)
        for byte in b"stream: OK\0":
            if stop.wait(0.3):
                return
            conn.sendall(bytes([byte]))

    try:
        result = scan_stream(fake_clamd(trickle), io.BytesIO(TEXT_BYTES), timeout=1)
    finally:
        stop.set()
    assert (result.status, result.detail.endswith("failed: timed out")) == ("error", True)


def test_a_clamd_that_hangs_up_without_a_verdict_is_an_error(fake_clamd):
    url = fake_clamd(lambda conn: conn.recv(10))
    result = scan_stream(url, io.BytesIO(os.urandom(4 * MiB)), timeout=5)
    assert result.status == "error"


def test_a_clamd_answering_nonsense_is_an_error(fake_clamd):
    def answer(conn: socket.socket) -> None:
        conn.settimeout(5)
        data = b""
        while not data.endswith(struct.pack(">I", 0)):
            data += conn.recv(65536)
        conn.sendall(b"stream: OK, I guess\0")

    result = scan_stream(fake_clamd(answer), io.BytesIO(TEXT_BYTES))
    assert (result.status, result.detail) == ("error", "clamd: stream: OK, I guess")


def test_the_wire_format_is_zinstream_and_length_prefixed_chunks(fake_clamd):
    received: list[bytes] = []

    def answer(conn: socket.socket) -> None:
        conn.settimeout(5)
        data = b""
        while not data.endswith(struct.pack(">I", 0)):
            data += conn.recv(65536)
        received.append(data)
        conn.sendall(b"stream: OK\0")

    result = scan_stream(fake_clamd(answer), io.BytesIO(b"abcdefgh"), chunk=5)
    assert result.status == "clean"
    expected = b"zINSTREAM\0" + b"\0\0\0\x05abcde" + b"\0\0\0\x03fgh" + b"\0\0\0\0"
    assert received == [expected]


@pytest.mark.parametrize(
    "url, detail",
    [
        ("tcp://127.0.0.1:notaport", "CLAMD_URL 'tcp://127.0.0.1:notaport' is not valid"),
        ("http://127.0.0.1:3310", "is not tcp://host:port or unix:///path/to/socket"),
        ("tcp://127.0.0.1", "is not tcp://host:port or unix:///path/to/socket"),
        ("unix:///nonexistent/clamd.ctl", "is unreachable: No such file or directory"),
    ],
)
def test_a_bad_clamd_url_is_an_error_with_the_reason(url: str, detail: str):
    result = scan_stream(url, io.BytesIO(TEXT_BYTES))
    assert result.status == "error" and detail in result.detail
    assert not ping(url)


@pytest.mark.parametrize(
    "reply, status, signature",
    [
        ("stream: OK", "clean", None),
        ("stream: Win.Test.EICAR_HDB-1 FOUND", "infected", "Win.Test.EICAR_HDB-1"),
        ("stream: Heuristics.Limits.Exceeded.MaxScanSize FOUND", "error", None),
        ("INSTREAM size limit exceeded. ERROR", "error", None),
        ("stream: Can't allocate memory ERROR", "error", None),
        ("stream:  FOUND", "error", None),
        ("stream: ok", "error", None),
        ("OK", "error", None),
        ("PONG", "error", None),
        ("", "error", None),
    ],
)
def test_only_clamds_exact_ok_is_clean(reply: str, status: str, signature: str | None):
    result = parse_reply(reply)
    assert (result.status, result.signature) == (status, signature)


# --- archive_problem: the ZIP members clamd trims -------------------------------------------


def check(data: bytes) -> str | None:
    return archive_problem(io.BytesIO(data), member_limit=LIMIT, total_limit=4 * LIMIT)


def nest(data: bytes, levels: int) -> bytes:
    for _ in range(levels):
        data = zipped(("inner.zip", data))
    return data


def with_flag(data: bytes, flag: int) -> bytes:
    """Set a general-purpose flag bit in the local and central headers of every member."""
    raw = bytearray(data)
    for magic, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.find(magic)
        while at != -1:
            (bits,) = struct.unpack_from("<H", raw, at + offset)
            struct.pack_into("<H", raw, at + offset, bits | flag)
            at = raw.find(magic, at + 4)
    return bytes(raw)


def understated(data: bytes, declared: int) -> bytes:
    """Make every header claim the (single) member is only `declared` bytes long."""
    raw = bytearray(data)
    struct.pack_into("<I", raw, 22, declared)  # local header: uncompressed size
    central = raw.rfind(b"PK\x01\x02")
    struct.pack_into("<I", raw, central + 24, declared)
    return bytes(raw)


@pytest.mark.parametrize(
    "data",
    [
        zipped(("a.txt", TEXT_BYTES), ("b.bin", os.urandom(100_000))),
        zipped(("a.txt", TEXT_BYTES), method=zipfile.ZIP_STORED),
        zipped(("big.bin", b"\0" * (20 * MiB) + EICAR)),  # under the limit: clamd scans it all
        nest(zipped(("a.txt", TEXT_BYTES)), 3),
        gzip.compress(TEXT_BYTES),
        gzip.compress(TEXT_BYTES) + gzip.compress(PDF_BYTES),
        PDF_BYTES,
        b"",
    ],
    ids=["zip", "stored", "20MB-member", "nested-3", "gzip", "gzip-2-members", "pdf", "empty"],
)
def test_archives_clamd_scans_completely_pass(data: bytes):
    assert check(data) is None


@pytest.mark.parametrize(
    "data, problem",
    [
        (padded_zip(), "a file inside the archive expands beyond 26214400 bytes"),
        (nest(padded_zip(), 1), "a file inside the archive expands beyond 26214400 bytes"),
        (gzip.compress(padded_zip()), "a file inside the archive expands beyond 26214400 bytes"),
        (b"\xff\xd8\xff\xe0" + os.urandom(512) + padded_zip(), "expands beyond 26214400 bytes"),
        (
            zipped(*[(f"part{i}.bin", b"\0" * (20 * MiB)) for i in range(6)]),
            "the archive expands beyond 104857600 bytes in total",
        ),
        (nest(zipped(("a.txt", TEXT_BYTES)), 5), "archives are nested more than 4 levels deep"),
        (
            understated(zipped(("a.bin", b"\0" * 1000 + EICAR)), 10),
            "larger or smaller than its header",
        ),
        (with_flag(zipped(("a.txt", TEXT_BYTES)), 0x1), "the archive is encrypted"),
        (
            zipped(("a.txt", TEXT_BYTES), method=zipfile.ZIP_BZIP2),
            "a compression method that cannot be verified",
        ),
        (padded_zip()[: padded_zip().rfind(b"PK\x01\x02")], "has no central directory"),
    ],
    ids=[
        "padded",
        "padded-nested",
        "padded-in-gzip",
        "padded-after-jpeg",
        "total",
        "too-deep",
        "understated-size",
        "encrypted",
        "bzip2",
        "no-central-directory",
    ],
)
def test_archives_clamd_may_not_have_scanned_completely_are_flagged(data: bytes, problem: str):
    found = check(data)
    assert found is not None and problem in found


def test_a_damaged_deflate_stream_is_flagged():
    data = bytearray(zipped(("a.txt", TEXT_BYTES * 2000)))
    data[40:50] = b"\xff" * 10  # inside the compressed data of the only member
    found = check(bytes(data))
    assert found is not None
    assert found.startswith(("the archive is damaged", "a file inside the archive is larger"))
