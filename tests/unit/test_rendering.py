"""render_markdown: the only path from user text to HTML must stay inert."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from helpdesk.rendering import ALLOWED_TAGS, render_markdown

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    '<a href="https://ok.test" onclick="alert(1)" hx-get="/x" style="color:red">x</a>',
    "<<script>script>alert(1)<</script>/script>",
    "<svg><script>alert(1)</script></svg>",
    '<iframe src="https://evil.test"></iframe>',
    "![x](https://evil.test/x.png)",
    "<div hx-post='/o/x/tickets' hx-trigger='load'>x</div>",
    "<form action=https://evil.test><button>go</button></form>",
    '<details open ontoggle="alert(1)">',
    "[x](  javascript:alert(1)  )",
    "<a href='&#106;avascript:alert(1)'>x</a>",
]


class _Elements(HTMLParser):
    """Collect every real element and attribute in rendered HTML (text is ignored)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def elements(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_renders_inert(text: str) -> None:
    html = str(render_markdown(text))
    for tag, attrs in elements(html):
        assert tag in ALLOWED_TAGS, html
        for name, value in attrs:
            assert name in {"href", "title", "rel", "align"}, html
            if name == "href":
                scheme = urlsplit(value or "").scheme.lower()
                assert scheme in {"", "http", "https", "mailto"}, html
    assert "<script" not in html.lower()


def test_markdown_basics_survive() -> None:
    html = str(render_markdown("**bold** and [a link](https://example.com)\n\n- one\n- two"))
    assert "<strong>bold</strong>" in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">a link</a>' in html
    assert "<li>one</li>" in html


def test_mailto_allowed_and_raw_html_shown_as_text() -> None:
    html = str(render_markdown("[mail](mailto:a@example.com) <b>hi</b>"))
    assert 'href="mailto:a@example.com"' in html
    assert "&lt;b&gt;hi&lt;/b&gt;" in html


def test_template_syntax_is_literal() -> None:
    html = str(render_markdown("{{7*7}} {% raw %}"))
    assert "{{7*7}}" in html and "49" not in html
    assert "{% raw %}" in html


def test_code_blocks_escape_content() -> None:
    html = str(render_markdown("```\n<script>x</script>\n```"))
    assert "&lt;script&gt;" in html and "<script>" not in html
