"""The words a person wrote in an email: HTML turned into text, quoted history and signatures cut.

Why separate from `mail_parse`: these are pure text transformations with their own rules of
thumb, tested on their own. Conversion keeps no markup at all — the result is markdown-ish
text (paragraphs, "- " items, "> " quotes, [text](url) links for http/https/mailto only) that
goes through `rendering.py` like any typed comment. Stripping cuts only what is reliably
recognisable, and `reply_text` never returns an empty body: if the cut leaves nothing, the
whole text is kept.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# --- quotes and signatures ---------------------------------------------------------------------

_ATTRIBUTION_RE = re.compile(
    r"^[ \t]*(?:On|Am|Le|El|Il|Op|Em|Den|På)\b[^\n]{0,300}(?:\n[^\n]{0,300})?"
    r"(?:wrote|schrieb|a écrit|escribió|ha scritto|schreef|escreveu|skrev)\b[^\n]{0,200}?:[ \t]*$",
    re.M | re.I,
)
_ORIGINAL_RE = re.compile(
    r"^[ \t]*-{2,}[ \t]*(?:Original Message|Ursprüngliche Nachricht)", re.M | re.I
)
_OUTLOOK_HEADER_RE = re.compile(
    r"^[ \t*]*(?:From|Von|De)[ \t*]*:[^\n]*\n(?:[^\n]*\n)?[ \t*]*(?:Sent|Gesendet|Envoyé|Enviado)"
    r"[ \t*]*:",
    re.M | re.I,
)
_SENT_FROM_RE = re.compile(r"^(?:Sent from my \S.*|Get Outlook for \S.*)$", re.I)
_RULE_RE = re.compile(r"^[ \t]*(?:_{5,}|-{5,})?[ \t]*$")


def reply_text(text: str) -> str:
    """Cut quoted history and the signature from a reply; never return an empty body."""
    cut = strip_signature(strip_quoted(text)).strip("\n")
    return cut if cut.strip() else text.strip("\n")


def strip_quoted(text: str) -> str:
    """Cut at the first "On … wrote:", Outlook header block or original-message line, then
    drop a trailing block of `>` lines."""
    starts = [m.start() for r in (_ATTRIBUTION_RE, _ORIGINAL_RE, _OUTLOOK_HEADER_RE)
              if (m := r.search(text))]  # fmt: skip
    if starts:
        text = text[: min(starts)]
    lines = text.rstrip().split("\n")
    while lines and (lines[-1].lstrip().startswith(">") or _RULE_RE.match(lines[-1])):
        lines.pop()
    return "\n".join(lines)


def strip_signature(text: str) -> str:
    """Cut at a "-- " line (or a bare "--" near the end) and a trailing "Sent from my …"."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line == "-- " or (line.rstrip() == "--" and i >= len(lines) - 10):
            lines = lines[:i]
            break
    while lines and (_SENT_FROM_RE.match(lines[-1].strip()) or not lines[-1].strip()):
        lines.pop()
    return "\n".join(lines)


# --- HTML → text -------------------------------------------------------------------------------

_BLOCKS = {"p", "div", "section", "article", "header", "footer", "table", "tr", "ul", "ol",
           "dl", "dt", "dd", "pre", "hr", "address", "figure", "main", "aside"}  # fmt: skip
_SKIP = {"script", "style", "head", "title", "template", "noscript", "svg", "object"}
_SAFE_HREF = re.compile(r"^(?:https?:|mailto:)[^\s()<>]*$", re.I)


class _HtmlText(HTMLParser):
    """Collect readable text: paragraphs, line breaks, list items, quotes and links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line = ""
        self.depth = 0  # blockquote nesting at the start of the current line
        self.quote = 0
        self.skip = 0
        self.pre = 0
        self.links: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag == "br":
            self._flush(force=True)
        elif tag in _BLOCKS or tag == "blockquote" or re.fullmatch(r"h[1-6]", tag):
            self._paragraph()
            self.quote += tag == "blockquote"
            self.pre += tag == "pre"
            if tag[0] == "h" and tag[1:].isdigit():
                self._text("#" * int(tag[1]) + " ")
        elif tag == "li":
            self._flush()
            self._text("- ")
        elif tag == "a":
            href = (dict(attrs).get("href") or "").strip()
            safe = href if _SAFE_HREF.match(href) else None
            self.links.append(safe)
            if safe:
                self._text("[")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href:
                self.line = self.line.rstrip() + f"]({href})"
        elif tag in _BLOCKS or tag == "blockquote" or re.fullmatch(r"h[1-6]", tag):
            self._flush()
            if tag == "blockquote":
                self.quote = max(0, self.quote - 1)
            self._paragraph()
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
        elif tag == "li":
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            for i, piece in enumerate(data.split("\n")):
                if i:
                    self._flush(force=True)
                self._text(piece, keep=True)
            return
        words = " ".join(data.split())
        lead = " " if data[:1].isspace() else ""
        trail = " " if data[-1:].isspace() and words else ""
        self._text(lead + words + trail)

    def _text(self, text: str, keep: bool = False) -> None:
        if not self.line:
            self.depth = self.quote
            text = text if keep else text.lstrip()
        elif self.line.endswith((" ", "[")) and not keep:
            text = text.lstrip()  # one space between words; "[ link" → "[link"
        self.line += text

    def _flush(self, force: bool = False) -> None:
        if self.line.strip() or force:
            self.lines.append("> " * self.depth + self.line.rstrip())
        self.line = ""
        self.depth = self.quote

    def _paragraph(self) -> None:
        """End the paragraph with one separator line at the current quote depth."""
        self._flush()
        separator = " ".join([">"] * self.quote)
        if not self.lines or self.lines[-1] == separator:
            return
        if not self.lines[-1].strip("> ") and self.lines[-1].count(">") > self.quote:
            self.lines[-1] = separator  # a deeper quote's separator: replace it
        else:
            self.lines.append(separator)

    def text(self) -> str:
        self._flush()
        out = "\n".join(self.lines)
        return re.sub(r"\n{3,}", "\n\n", out).strip()


def html_to_text(markup: str) -> str:
    """Turn HTML mail into readable markdown-ish text (links as [text](url))."""
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return parser.text()
