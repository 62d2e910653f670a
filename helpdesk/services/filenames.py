"""Display names for uploaded files: what a person sees, never a path or an object name.

Why: a filename is attacker-chosen text that ends up in pages, emails, JSON, a
`Content-Disposition` header and, once downloaded, on someone's disk. Peers were bitten by
path parts (`../../x`), names that display as something else (a right-to-left override
turns `invoice‮fdp.exe` into `invoiceexe.pdf`), zero-width prefixes (`​.htaccess`), CR/LF
that split a header, and names Windows refuses or treats as devices (`CON`, `nul.txt`).

`display_name` turns any client-sent name into one safe line. It is metadata only: the
storage key is random (`storage.new_key`) and no part of the name ever reaches the disk
or the bucket. `extension` is what the type check compares with the sniffed content.
"""

from __future__ import annotations

import re
import unicodedata

NAME_MAX = 150  # characters, extension included
EXTENSION_MAX = 16  # a longer "extension" is part of the name, not a type hint
FALLBACK = "attachment"

# Device names Windows reserves whatever the extension ("con.txt" opens the console).
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"}
    | {f"{dev}{n}" for dev in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")}
)
# Characters Windows refuses in names; ":" also names NTFS alternate data streams.
_WINDOWS_ILLEGAL = re.compile(r'[<>:"|?*]')
# Unicode categories dropped outright: controls (Cc: NUL, CR, LF, …) and format characters
# (Cf: bidi embeddings and overrides U+202A-202E, isolates U+2066-2069, marks, zero-width
# spaces and joiners, soft hyphen, BOM). Line and paragraph separators become spaces.
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_SPACES = frozenset({"Zs", "Zl", "Zp"})


def _clean_chars(text: str) -> str:
    out: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category in _SPACES or char in "\t\n\r\v\f":
            out.append(" ")
        elif category not in _DROPPED:
            out.append(char)
    return "".join(out)


def _last_part(name: str) -> str:
    """Strip directories, whichever separator the client's OS used."""
    return re.split(r"[/\\]", name)[-1]


def _trim(name: str) -> str:
    """No leading dots or spaces (hidden files, `..`); no trailing ones (Windows drops them)."""
    return name.lstrip(". ").rstrip(". ")


def split_extension(name: str) -> tuple[str, str]:
    """Split into (stem, extension without the dot, lower-cased); "" when there is none."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or not ext or len(ext) > EXTENSION_MAX or " " in ext:
        return name, ""
    return stem, ext.lower()


def _bound(name: str) -> str:
    if len(name) <= NAME_MAX:
        return name
    stem, ext = split_extension(name)
    if not ext:
        return name[:NAME_MAX].rstrip(". ")
    keep = NAME_MAX - len(ext) - 1
    return f"{stem[:keep].rstrip('. ')}.{ext}"


def _not_reserved(name: str) -> str:
    device = name.split(".", 1)[0].rstrip(" ").upper()
    return f"_{name}" if device in _RESERVED else name


def display_name(raw: object) -> str:
    """Return a safe one-line display name for a client-sent filename ("attachment" if none).

    NFC; no path parts; no control, format (bidi, zero-width) or Windows-illegal characters;
    no leading dots/spaces; whitespace collapsed; reserved device names prefixed with "_";
    at most NAME_MAX characters with the extension kept.
    """
    if not isinstance(raw, str):
        return FALLBACK
    text = _clean_chars(unicodedata.normalize("NFC", raw))
    text = _last_part(text)
    text = _WINDOWS_ILLEGAL.sub("_", text)
    text = _trim(" ".join(text.split()))
    text = _bound(_not_reserved(text))
    return unicodedata.normalize("NFC", text) or FALLBACK


def extension(name: str) -> str:
    """The lower-cased extension of a display name ("" when it has none)."""
    return split_extension(name)[1]
