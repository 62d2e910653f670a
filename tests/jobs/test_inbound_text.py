"""The text rules of inbound email on their own: quote and signature cutting, HTML to text,
subjects, charsets, bounce and noise detection, and parsing that never raises."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage

import pytest

from helpdesk.services import mail_parse
from helpdesk.services.mail_text import html_to_text, reply_text, strip_quoted, strip_signature


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes.\n\nOn Mon, 4 Mar 2024 at 10:00, Ann <a@x.test> wrote:\n> old\n", "Yes."),
        (
            "Yes.\n\nOn Mon, Mar 4, 2024 at 10:00 AM Ann Long-Name <\na@x.test> wrote:\n> old",
            "Yes.",
        ),
        ("Ja.\n\nAm 04.03.2024 um 10:00 schrieb Ann <a@x.test>:\n> alt", "Ja."),
        ("Oui.\n\nLe lun. 4 mars 2024 à 10:00, Ann <a@x.test> a écrit :\n> vieux", "Oui."),
        ("Ok.\n\n-----Original Message-----\nFrom: Ann\nSent: Monday\n\nold", "Ok."),
        (
            "Ok.\n\n______________________\nFrom: Ann <a@x.test>\nSent: Monday, 4 March\nTo: B\n",
            "Ok.",
        ),
        ("Ok.\n\nVon: Ann <a@x.test>\nGesendet: Montag, 4. März 2024 10:00\nAn: B\n", "Ok."),
        ("Top reply.\n\n> quoted line\n> another\n>\n", "Top reply."),
        (
            "> inline question?\nInline answer.\n> second?\nSecond answer.",
            "> inline question?\nInline answer.\n> second?\nSecond answer.",
        ),
    ],
)
def test_quoted_history_is_cut(text: str, expected: str) -> None:
    assert reply_text(text) == expected


def test_signatures_are_cut_and_a_body_is_never_lost() -> None:
    assert strip_signature("Thanks\n-- \nAnn\nACME Corp") == "Thanks"
    assert strip_signature("Thanks\n--\nAnn") == "Thanks"
    assert strip_signature("Thanks\n\nSent from my iPhone") == "Thanks"
    # A bare "--" far from the end is content (a separator in the middle of a message).
    long = "intro\n--\n" + "\n".join(f"line {i}" for i in range(20))
    assert strip_signature(long) == long
    # Only quotes: keep everything rather than post nothing.
    only_quote = "On Mon, 4 Mar 2024 Ann <a@x.test> wrote:\n> please help"
    assert reply_text(only_quote) == only_quote
    assert reply_text("-- \nAnn") == "-- \nAnn"
    # "On …" in the middle of a sentence is not an attribution line.
    sentence = "On Monday the printer wrote garbage: see the photo."
    assert strip_quoted(sentence) == sentence


def test_html_to_text_keeps_structure_and_drops_markup() -> None:
    html = (
        "<html><head><style>x{}</style><title>T</title></head><body>"
        "<h2>Steps</h2><p>One &amp; <b>two</b></p><ul><li>a</li><li>b</li></ul>"
        "<p>See <a href='https://x.test/p?a=1'>the page</a>, <a href='javascript:x()'>no</a>"
        " and <a href='mailto:a@x.test'>mail</a>.</p><blockquote>quoted<br>text</blockquote>"
        "<pre>  keep\n    indent</pre><script>evil()</script><p>end</p></body></html>"
    )
    assert html_to_text(html) == (
        "## Steps\n\nOne & two\n\n- a\n- b\n\n"
        "See [the page](https://x.test/p?a=1), no and [mail](mailto:a@x.test).\n\n"
        "> quoted\n> text\n\n  keep\n    indent\n\nend"
    )
    assert html_to_text("<p>unclosed <b>bold <i>mess") == "unclosed bold mess"
    assert html_to_text("") == ""


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: Printer", "Printer"),
        ("RE: Fwd: AW: SV: WG: Printer", "Printer"),
        ("Re[2]: Printer", "Printer"),
        ("Re: [alpha #12] Printer on fire", "Printer on fire"),
        ("[alpha #12] Re: Printer", "Printer"),
        ("Re:", "(no subject)"),
        ("", "(no subject)"),
        ("Regarding the invoice", "Regarding the invoice"),
        ("Tr: Facture", "Facture"),
    ],
)
def test_ticket_subjects(subject: str, expected: str) -> None:
    assert mail_parse.ticket_subject(subject) == expected


def test_subject_tags() -> None:
    assert mail_parse.subject_tag("Re: [alpha #12] x") == ("alpha", 12)
    assert mail_parse.subject_tag("Re: [Alpha-2 #7] x") == ("alpha-2", 7)
    assert mail_parse.subject_tag("[alpha 12] x") is None
    assert mail_parse.subject_tag("[-alpha #1]") is None


def test_charsets_decode_leniently_and_say_so() -> None:
    notes: list[str] = []
    assert mail_parse.decode_bytes("Grüße".encode("cp1252"), "iso-8859-1", notes) == "Grüße"
    assert mail_parse.decode_bytes(b"\x80 5", "ISO-8859-1", notes) == "€ 5"  # read as cp1252
    assert mail_parse.decode_bytes(b"caf\xc3\xa9", None, notes) == "café"
    assert notes == []
    assert mail_parse.decode_bytes(b"caf\xe9", "utf-8", notes) == "café"
    assert notes == ["text was not valid UTF-8; decoded as Windows-1252"]
    assert mail_parse.decode_bytes(b"caf\xe9", "no-such-charset", notes) == "caf\ufffd"
    assert "unknown charset 'no-such-charset'" in notes[-1]
    assert mail_parse.decode_bytes(b"aGk=", "base64", notes) == "aGk="
    assert "is not a text encoding" in notes[-1]
    assert mail_parse.decode_bytes(b"\xff", "utf-16", notes) == "\ufffd"


def test_encoded_headers_and_addresses() -> None:
    raw = (
        b"From: =?utf-8?B?w5xsbGk=?= <ULLI@Example.NET>\r\n"
        b'To: a@x.test, "B, Bee" <b@x.test>, not-an-address\r\n'
        b"Cc: =?iso-8859-1?q?C=E9line?= <c@x.test>\r\n"
        b"Delivered-To: d@x.test\r\n"
        b"Subject: =?utf-8?q?Caf=C3=A9?= =?utf-8?q?_ouvert?=\r\n"
        b"Message-ID: <id-1@x.test>\r\n"
        b"In-Reply-To: <b@x.test>\r\n"
        b"References: <a@x.test>\r\n <b@x.test>\r\n\r\nbody\r\n"
    )
    mail = mail_parse.parse(raw)
    assert (mail.sender, mail.sender_name) == ("ulli@example.net", "Ülli")
    assert mail.recipients == ["d@x.test", "a@x.test", "b@x.test", "c@x.test"]
    assert mail.subject == "Café ouvert" and mail.message_id == "<id-1@x.test>"
    assert mail.thread_ids == ["<b@x.test>", "<a@x.test>"]
    assert mail_parse.peek(raw) == ("<id-1@x.test>", "Café ouvert")
    assert mail_parse.peek(b"\xff\x00") == (None, "")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00" * 100,
        b"From: a@x.test\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n" * 50,
        b"From: a@x.test\r\nContent-Type: text/plain; charset=\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!notbase64",  # noqa: E501
        b'From: a@x.test\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nunterminated',  # noqa: E501
        b"From: " + b"a" * 5000 + b"@x.test\r\nSubject: " + b"=?x?q?" * 2000 + b"\r\n\r\nhi",
    ],
)
def test_parse_never_raises(raw: bytes) -> None:
    mail = mail_parse.parse(raw)
    assert mail.fatal is not None or mail.body is not None


def test_deep_nesting_is_a_reason_not_a_crash() -> None:
    depth = 2000
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    mail = mail_parse.parse(b"From: a@x.test\r\n" + head + b"Content-Type: text/plain\r\n\r\nhi")
    assert mail.fatal is not None or mail.body == "hi"


def _report(action: str = "failed") -> EmailMessage:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Mail Delivery Subsystem <MAILER-DAEMON>"
    msg["Subject"] = "Delivery Status Notification (Failure)"
    msg.set_content("Your message was not delivered.")
    return msg


def test_bounce_detection_variants() -> None:
    bare_daemon = _report()
    bare_daemon["X-Failed-Recipients"] = "gone@x.test"
    bounce = mail_parse.bounce_info(bare_daemon)
    assert bounce is not None and bounce.recipients == ["gone@x.test"]
    assert bounce.reason == "delivery failed"
    person = EmailMessage()
    person["From"] = "postmaster-fan@x.test"
    person.set_content("hi")
    assert mail_parse.bounce_info(person) is None
    receipt = mail_parse.parse(
        b"From: a@x.test\r\nContent-Type: multipart/report; report-type=disposition-notification;"
        b" boundary=r\r\n\r\n--r\r\nContent-Type: text/plain\r\n\r\nRead.\r\n--r--\r\n"
    )
    assert mail_parse.bounce_info(receipt.message) is None
    assert mail_parse.noise_reason(receipt.message) == "read receipt (disposition notification)"
