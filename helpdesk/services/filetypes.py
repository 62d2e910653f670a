"""What an uploaded file really is: magic bytes against an allow-list.

Why: a peer's extension validator was never called; others served SVG with script inline
or HTML mail as `.html`. Here the client's Content-Type is ignored and the extension is
only a hint that must agree with the content. The content decides:

* allowed: documents (PDF, DOCX/XLSX/PPTX, ODT/ODS/ODP, RTF), text (UTF-8 or Latin-1
  without NULs or binary control bytes: txt, csv, md, log, …), images (PNG, JPEG, GIF,
  WebP), archives (ZIP, gzip, 7z) and mail (.eml with RFC 822 headers);
* refused: programs and scripts (MZ, ELF, Mach-O, `#!`, and names like .exe or .js),
  HTML, SVG and XML (a browser could run script in them: the stored-XSS class), anything
  else, and content whose type disagrees with its extension ("this file is HTML but is
  named .png").

The sniffed content type is what gets stored and served, never the client's.
"""

from __future__ import annotations

import codecs
import re
import struct
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from helpdesk.services.filenames import extension

HEAD_BYTES = 8192  # how much of the start of a file the magic checks look at
ZIP_NAMES_MAX = 20_000  # beyond this many entries the names are not listed (memory)


class RefusedType(ValueError):
    """The file's content or name is not allowed; the message says why, for a person."""


@dataclass(frozen=True)
class FileType:
    key: str
    label: str  # completes "this file is …"
    content_type: str
    extensions: frozenset[str]


def _t(key: str, label: str, content_type: str, *exts: str) -> FileType:
    return FileType(key, label, content_type, frozenset(exts))


_OOXML = "application/vnd.openxmlformats-officedocument."
_ODF = "application/vnd.oasis.opendocument."
PDF = _t("pdf", "a PDF document", "application/pdf", "pdf")
DOCX = _t("docx", "a Word document", _OOXML + "wordprocessingml.document", "docx")
XLSX = _t("xlsx", "an Excel workbook", _OOXML + "spreadsheetml.sheet", "xlsx")
PPTX = _t("pptx", "a PowerPoint presentation", _OOXML + "presentationml.presentation", "pptx")
ODT = _t("odt", "an OpenDocument text", _ODF + "text", "odt")
ODS = _t("ods", "an OpenDocument spreadsheet", _ODF + "spreadsheet", "ods")
ODP = _t("odp", "an OpenDocument presentation", _ODF + "presentation", "odp")
RTF = _t("rtf", "an RTF document", "application/rtf", "rtf")
PNG = _t("png", "a PNG image", "image/png", "png")
JPEG = _t("jpeg", "a JPEG image", "image/jpeg", "jpg", "jpeg", "jpe", "jfif")
GIF = _t("gif", "a GIF image", "image/gif", "gif")
WEBP = _t("webp", "a WebP image", "image/webp", "webp")
ZIP = _t("zip", "a ZIP archive", "application/zip", "zip")
GZIP = _t("gzip", "a gzip archive", "application/gzip", "gz", "tgz")
SEVEN_Z = _t("7z", "a 7z archive", "application/x-7z-compressed", "7z")
EML = _t("eml", "an email message", "message/rfc822", "eml")
TEXT_EXTENSIONS = frozenset({"txt", "text", "csv", "tsv", "md", "markdown", "log", "json",
                             "yaml", "yml", "ini", "cfg", "conf"})  # fmt: skip
_TEXT_TYPES = {"csv": "text/csv", "tsv": "text/tab-separated-values", "md": "text/markdown",
               "markdown": "text/markdown"}  # fmt: skip

# Content types a download may carry (the sniffed types above); markup is never served as such.
SERVABLE_TYPES = frozenset(
    {t.content_type for t in (PDF, DOCX, XLSX, PPTX, ODT, ODS, ODP, RTF, PNG, JPEG, GIF, WEBP,
                              ZIP, GZIP, SEVEN_Z, EML)}
    | {"text/plain", *_TEXT_TYPES.values()}
)  # fmt: skip
MARKUP_TYPES = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "application/xml",
                          "text/xml", "text/xsl", "application/xslt+xml"})  # fmt: skip

ALLOWED_SUMMARY = (
    "PDF, Word/Excel/PowerPoint (.docx, .xlsx, .pptx), OpenDocument (.odt, .ods, .odp), "
    "RTF, text (.txt, .csv, .md, .log), images (PNG, JPEG, GIF, WebP), archives (ZIP, "
    "gzip, 7z) and emails (.eml)"
)

# Refused by name alone: Windows runs or opens these directly (and hides known extensions,
# so "invoice.pdf.exe" shows as "invoice.pdf"); the rest are scripts and installers.
PROGRAM_EXTENSIONS = frozenset({
    "exe", "bat", "cmd", "com", "scr", "pif", "msi", "msp", "mst", "dll", "sys", "cpl", "ocx",
    "js", "mjs", "cjs", "jse", "vbs", "vbe", "wsf", "wsh", "wsc", "hta", "ps1", "psm1", "psd1",
    "ps1xml", "sh", "bash", "zsh", "csh", "ksh", "command", "jar", "class", "apk", "app",
    "dmg", "pkg", "deb", "rpm", "run", "bin", "elf", "so", "dylib", "lnk", "reg", "inf", "scf",
    "url", "appx", "msix", "appref-ms", "gadget", "application", "iso", "img", "vhd", "vhdx",
})  # fmt: skip
MARKUP_EXTENSIONS = frozenset({"html", "htm", "xhtml", "xht", "shtml", "mht", "mhtml", "svg",
                               "svgz", "xml", "xsl", "xslt", "xsd", "rss", "atom"})  # fmt: skip

_PROGRAM_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a Linux program"),
    (b"\xfe\xed\xfa\xce", "a macOS program"),
    (b"\xfe\xed\xfa\xcf", "a macOS program"),
    (b"\xce\xfa\xed\xfe", "a macOS program"),
    (b"\xcf\xfa\xed\xfe", "a macOS program"),
    (b"\xca\xfe\xba\xbe", "a macOS program or Java class"),
    (b"#!", "a script"),
    (b"\x00asm", "a WebAssembly program"),
    (b"dex\n", "an Android program"),
    (b"L\x00\x00\x00\x01\x14\x02\x00", "a Windows shortcut"),
)
_SIMPLE_MAGIC: tuple[tuple[bytes, FileType], ...] = (
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"GIF87a", GIF),
    (b"GIF89a", GIF),
    (b"{\\rtf", RTF),
    (b"\x1f\x8b", GZIP),
    (b"7z\xbc\xaf\x27\x1c", SEVEN_Z),
)
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ODF_TYPES = {t.content_type: t for t in (ODT, ODS, ODP)}
_ZIP_BASED = frozenset({DOCX, XLSX, PPTX, ODT, ODS, ODP})
_OOXML_PARTS = (("word/document.xml", DOCX), ("xl/workbook.xml", XLSX),
                ("ppt/presentation.xml", PPTX))  # fmt: skip

# WHATWG MIME sniffing's "HTML" patterns: a tag name then a space or ">" (case-insensitive).
_HTML_START = re.compile(
    rb"<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p"
    rb"|!--)(?:[\s>]|$)",
    re.IGNORECASE,
)
_MAIL_HEADER = re.compile(rb"^([A-Za-z0-9][A-Za-z0-9-]*):[ \t]", re.MULTILINE)
_MAIL_NAMES = frozenset({b"from", b"to", b"subject", b"date", b"message-id", b"received",
                         b"return-path", b"mime-version", b"delivered-to", b"reply-to", b"cc",
                         b"content-type", b"sender", b"in-reply-to", b"references"})  # fmt: skip
# Bytes that never occur in text files: NUL and the C0 controls except \t \n \v \f \r ESC.
_BINARY_BYTES = frozenset(range(0x20)) - {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1B}


class TextProbe:
    """Fed every chunk of a file: is it text, and in which encoding?"""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.utf8 = True
        self.binary = False

    def feed(self, chunk: bytes, final: bool = False) -> None:
        """Look at the next chunk (final=True after the last one)."""
        if self.binary:
            return
        if not _BINARY_BYTES.isdisjoint(chunk):
            self.binary = True
            return
        if self.utf8:
            try:
                self._decoder.decode(chunk, final)
            except UnicodeDecodeError:
                self.utf8 = False  # still text: Latin-1 accepts every remaining byte

    @property
    def charset(self) -> str | None:
        """ "utf-8" or "iso-8859-1" for text; None for binary content."""
        if self.binary:
            return None
        return "utf-8" if self.utf8 else "iso-8859-1"


def _markup(head: bytes) -> str | None:
    """Name the markup (HTML, SVG, XML) when the text starts like a page a browser renders."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n\f")
    lower = text[:1024].lower()
    if lower.startswith((b"<svg", b"<!doctype svg")) or (
        lower.startswith((b"<?xml", b"<!doctype")) and b"<svg" in lower
    ):
        return "SVG"
    if _HTML_START.match(text):
        return "HTML"
    if lower.startswith((b"<?xml", b"<!doctype", b"<!entity", b"<?xml-stylesheet")):
        return "XML"
    if re.match(rb"<[a-z][a-z0-9:_-]*[\s/>]", lower) and re.search(rb"<(?:script|svg|html)\b",
                                                                    lower):  # fmt: skip
        return "HTML"
    return None


def _looks_like_mail(head: bytes) -> bool:
    block = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0]
    if block.startswith(b"From "):
        block = block.split(b"\n", 1)[-1]
    if not _MAIL_HEADER.match(block):
        return False
    names = {m.group(1).lower() for m in _MAIL_HEADER.finditer(block)}
    return len(names & _MAIL_NAMES) >= 2


def _odf_type(head: bytes) -> FileType | None:
    """ODF puts an uncompressed `mimetype` entry first; its content names the format."""
    if len(head) < 30:
        return None
    method, csize, _usize, nlen, elen = struct.unpack("<H8xIIHH", head[8:30])
    if method != 0 or head[30 : 30 + nlen] != b"mimetype":
        return None
    start = 30 + nlen + elen
    value = head[start : start + min(csize, 200)].decode("ascii", "replace")
    return _ODF_TYPES.get(value)


def _zip_entry_count(stream: BinaryIO, size: int) -> int | None:
    """Entries in the central directory per its end record; None when there is none."""
    tail = min(size, 22 + 65535)
    stream.seek(size - tail)
    data = stream.read(tail)
    at = data.rfind(b"PK\x05\x06")
    if at < 0 or len(data) < at + 22:
        return None
    count: int = struct.unpack("<H", data[at + 10 : at + 12])[0]
    return count


def _zip_type(head: bytes, stream: BinaryIO, size: int) -> FileType:
    odf = _odf_type(head)
    if odf is not None:
        return odf
    count = _zip_entry_count(stream, size)
    if count is None:
        raise RefusedType("this ZIP archive is damaged or incomplete: create it again and resend")
    if count > ZIP_NAMES_MAX or count == 0xFFFF:
        return ZIP
    stream.seek(0)
    try:
        with zipfile.ZipFile(stream) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise RefusedType(
            "this ZIP archive is damaged or incomplete: create it again and resend"
        ) from None
    if "[Content_Types].xml" in names:
        for part, kind in _OOXML_PARTS:
            if part in names:
                return kind
    return ZIP


def _by_magic(head: bytes, probe: TextProbe, stream: BinaryIO, size: int) -> FileType | None:
    for magic, kind in _SIMPLE_MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_type(head, stream, size)
    # Readers accept junk before the header; text that merely mentions "%PDF-" stays text.
    if head.startswith(b"%PDF-") or (probe.binary and b"%PDF-" in head[:1024]):
        return PDF
    return None


def _refuse_program(head: bytes) -> None:
    for magic, label in _PROGRAM_MAGIC:
        if head.startswith(magic):
            raise RefusedType(f"this file is {label}: programs and scripts cannot be attached")
    if head.startswith(_OLE):
        raise RefusedType(
            "this file is an old Office (97-2003), Outlook .msg or installer file, which "
            "cannot be attached: save it as .docx, .xlsx, .pptx or PDF"
        )


def _refuse_name(ext: str) -> None:
    if ext in PROGRAM_EXTENSIONS:
        raise RefusedType(f"files named .{ext} cannot be attached: programs and scripts are "
                          "refused (put it in a ZIP archive if an agent asked for it)")  # fmt: skip
    if ext in MARKUP_EXTENSIONS:
        raise RefusedType(f".{ext} files cannot be attached: a browser could run scripts in "
                          "them. Send a PDF or a screenshot instead")  # fmt: skip


def _text_type(head: bytes, charset: str, ext: str) -> FileType:
    markup = _markup(head)
    if markup is not None:
        if ext:
            raise RefusedType(f"this file is {markup} but is named .{ext}")
        raise RefusedType(f"this file is {markup}, which cannot be attached: a browser could "
                          "run scripts in it. Send a PDF or a screenshot instead")  # fmt: skip
    if ext == "eml" and _looks_like_mail(head):
        return EML
    base = _TEXT_TYPES.get(ext, "text/plain")
    return _t("text", "plain text", f"{base}; charset={charset}", *TEXT_EXTENSIONS)


def identify(name: str, head: bytes, probe: TextProbe, stream: BinaryIO, size: int) -> FileType:
    """Return the allowed type of a file from its content, or raise RefusedType.

    `name` is the display name, `head` the first HEAD_BYTES, `probe` has seen every byte,
    and `stream` (seekable, `size` bytes) is read again only for ZIP directories.
    """
    ext = extension(name)
    _refuse_name(ext)
    _refuse_program(head)
    kind = _by_magic(head, probe, stream, size)
    if kind is None:
        charset = probe.charset
        if charset is None:
            raise RefusedType(f"this type of file cannot be attached. Allowed: {ALLOWED_SUMMARY}")
        kind = _text_type(head, charset, ext)
    if ext == "zip" and kind in _ZIP_BASED:
        return ZIP  # an Office or OpenDocument file is a ZIP archive too
    if ext and ext not in kind.extensions:
        raise RefusedType(f"this file is {kind.label} but is named .{ext}")
    return kind
