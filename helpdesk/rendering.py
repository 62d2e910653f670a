"""The only place user text becomes HTML.

Why: peers shipped stored XSS by building HTML outside the template engine, by regex
filters for `javascript:` (bypassed three times) and by stripping tags so that nested tags
reassembled. Here user markdown goes through python-markdown and then **nh3** (ammonia)
with an allow-list: a fixed set of tags, a fixed set of attributes per tag, links limited
to http/https/mailto, and no `on*`, `style`, `hx-*` or `data-*` attributes. nh3 parses
HTML properly, so nothing can reassemble after cleaning. Markdown's raw-HTML parsers are
switched off, so HTML typed by a user is shown as text, never interpreted. The result
is wrapped in `Markup` only here; every other string in a template is autoescaped.
Template-looking input such as `{{7*7}}` is data, never a template.
"""

from __future__ import annotations

import markdown
import nh3
from markupsafe import Markup

ALLOWED_TAGS = {
    "a", "p", "br", "hr", "strong", "em", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "th": {"align"},
    "td": {"align"},
}
URL_SCHEMES = {"http", "https", "mailto"}
EXTENSIONS = ["fenced_code", "tables", "sane_lists", "nl2br"]


def _markdown() -> markdown.Markdown:
    md = markdown.Markdown(extensions=EXTENSIONS, output_format="html")
    md.preprocessors.deregister("html_block")  # raw HTML blocks become text
    md.inlinePatterns.deregister("html")  # and so do inline tags
    return md


def render_markdown(text: str) -> Markup:
    """Render user markdown to safe HTML."""
    raw = _markdown().convert(text)  # a fresh instance: Markdown objects are not thread-safe
    clean = nh3.clean(
        raw,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return Markup(clean)  # noqa: S704 - sanitized by nh3 just above
