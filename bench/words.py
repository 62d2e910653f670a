"""Words for generated tickets: a Zipf-distributed vocabulary, subjects and message bodies.

Why a vocabulary and not a few fixed strings: full-text search cost depends on how often a
term occurs (a common word matches a quarter of the tickets, a product code a few dozen),
and list and page rendering cost depends on realistic lengths. Real help-desk text is a
few very frequent words, a domain vocabulary and a long tail of names and codes; the
ranks below reproduce that shape. Subjects stay plain words (the generator computes their
search vectors itself, see bench/vectors.py); bodies may hold any markdown, because their
vectors and HTML come from PostgreSQL and the app's own renderer.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence


def split_words(text: str) -> tuple[str, ...]:
    """The words of a text (word lists are easier to read and edit as running text)."""
    return tuple(text.split())


FUNCTION_WORDS = split_words(
    "the to and a of i it is we in for on this that with you our be not but have can when"
    " was are my from at after there all any so please if as an me us by now still again"
    " just also been do does did or what which your they them since before because out up"
)
DOMAIN_WORDS = split_words(
    "printer invoice export report password login webhook billing account dashboard email"
    " attachment upload download integration calendar server database backup license"
    " subscription payment refund order shipment delivery address profile settings"
    " notification permission role user team project customer contract quote receipt"
    " statement card bank transfer sync import file folder document spreadsheet template"
    " chart filter search page screen button link form field menu window browser phone"
    " app tablet laptop monitor keyboard scanner network wifi router vpn firewall"
    " certificate token key session cookie cache endpoint request response timeout error"
    " warning message code version update release feature crash issue problem question"
    " access data record entry schedule meeting invite reminder alert log history audit"
    " storage quota limit plan trial migration domain mailbox inbox signature label"
    " category queue workflow approval portal widget mobile desktop tax discount coupon"
    " catalog product price currency pdf csv label invoice report sso password printer"
)
VERBS = split_words(
    "fails crashes freezes loads shows opens closes sends receives works stops starts"
    " returns deletes updates saves prints exports imports syncs connects redirects"
    " expires renews charges displays breaks hangs rejects accepts duplicates disappears"
    " resets locks blocks bounces times looks needs keeps asks tried restarted checked"
    " cleared reinstalled attached changed noticed confirmed reported fixed"
)
MODIFIERS = split_words(
    "slow broken missing wrong blank empty duplicate old new urgent strange intermittent"
    " random every today yesterday suddenly twice always never sometimes completely"
    " partially monthly weekly annual shared private external internal corporate"
)
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "tr")
_VOWELS = ("a", "e", "i", "o", "u")
# A long tail of made-up names (places, people, products): each is rare, together common.
TAIL_WORDS = tuple(
    a + v + b + w + "n" for a, v, b, w in itertools.product(_ONSETS, _VOWELS, _ONSETS, _VOWELS)
)[:2000]
# 910 product codes; every subject names one, so each matches about N/910 tickets
# (0.11 %): the rare search term.
RARE_WORDS = tuple(
    f"{a}{b}{c}x" for a in "bdfgklmnprstvz" for b in "aeiou" for c in "bdgklmnprstvz"
)
COMMON_WORD = "scanner"  # in about a quarter of the tickets: the common search term

FIRST_NAMES = split_words(
    "Ada Alan Amira Ana Ben Carla Chen Dana Diego Elif Emma Farid Grace Hana Ivan Jonas"
    " Kai Lena Luis Maya Mei Nadia Noah Omar Priya Raj Rosa Sam Sara Tomas Yara Zoe"
)
LAST_NAMES = split_words(
    "Abbott Berg Costa Diaz Evans Fischer Garcia Hughes Ito Jensen Khan Larsen Moreau"
    " Novak Okafor Patel Quinn Rossi Silva Tanaka Umar Varga Weber Xu Young Zimmer"
)


def zipf_weights(count: int, exponent: float = 1.07, shift: float = 2.7) -> list[float]:
    """Zipf-Mandelbrot weights for ranks 0..count-1, summing to 1."""
    raw = [1.0 / (rank + shift) ** exponent for rank in range(count)]
    total = sum(raw)
    return [w / total for w in raw]


def mixture(*classes: tuple[float, tuple[str, ...]]) -> tuple[tuple[str, ...], list[float]]:
    """Words and cumulative weights: each class gets its share, Zipf-distributed inside."""
    found: dict[str, float] = {}
    for share, members in classes:
        for word, weight in zip(members, zipf_weights(len(members)), strict=True):
            found[word] = found.get(word, 0.0) + share * weight
    return tuple(found), list(itertools.accumulate(found.values()))


_DOMAIN = tuple(dict.fromkeys([*DOMAIN_WORDS, *VERBS, *MODIFIERS]))
# Running text: about 45 % function words, 43 % domain words, 12 % the long tail.
VOCABULARY, VOCABULARY_CUM = mixture(
    (0.45, tuple(FUNCTION_WORDS)), (0.43, _DOMAIN), (0.12, TAIL_WORDS)
)
# Subjects: no function words, a tenth from the long tail.
CONTENT, CONTENT_CUM = mixture((0.9, _DOMAIN), (0.1, TAIL_WORDS))


def subject_words(rng: random.Random) -> list[str]:
    """The words of one subject (lower case, no punctuation): 3-7 words and a product code."""
    words = rng.choices(CONTENT, cum_weights=CONTENT_CUM, k=rng.randint(3, 7))
    words.append(RARE_WORDS[rng.randrange(len(RARE_WORDS))])
    return words


def subject_text(words: Sequence[str]) -> str:
    """A subject line from its words: capitalised, the product code in parentheses."""
    *head, code = words
    return f"{' '.join(head).capitalize()} ({code})"


def _sentence(rng: random.Random) -> str:
    words = rng.choices(VOCABULARY, cum_weights=VOCABULARY_CUM, k=rng.randint(5, 16))
    text = " ".join(words).capitalize()
    if rng.random() < 0.15:
        i = rng.randrange(len(words))
        words[i] = rng.choice((f"**{words[i]}**", f"*{words[i]}*", f"`{words[i]}`"))
        text = " ".join(words).capitalize()
    return text + rng.choice(".....?!")


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(1, 3)))


def _extra_block(rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        items = [
            " ".join(rng.choices(CONTENT, cum_weights=CONTENT_CUM, k=rng.randint(2, 5)))
            for _ in range(rng.randint(2, 4))
        ]
        return "\n".join(f"{n}. {item}" for n, item in enumerate(items, 1))
    if kind == 1:
        return "\n".join(f"- {rng.choice(CONTENT)} {rng.choice(VERBS)}" for _ in range(3))
    if kind == 2:
        return f"```\n{rng.choice(CONTENT)} --retry {rng.randint(1, 9)}\n```"
    if kind == 3:
        return "> " + _sentence(rng)
    return f"See https://example.com/{rng.choice(CONTENT)}/{rng.randint(100, 999)} for details."


def body_text(rng: random.Random) -> str:
    """One markdown message: optional greeting, 1-4 paragraphs, sometimes a list or code."""
    blocks = []
    if rng.random() < 0.5:
        blocks.append(f"{rng.choice(('Hi', 'Hello', 'Dear'))} {rng.choice(FIRST_NAMES)},")
    blocks.extend(_paragraph(rng) for _ in range(rng.randint(1, 4)))
    if rng.random() < 0.3:
        blocks.insert(len(blocks) - 1 if len(blocks) > 1 else 1, _extra_block(rng))
    if rng.random() < 0.4:
        blocks.append(rng.choice(("Thanks!", "Best regards,\nSupport", "Cheers", "Kind regards")))
    return "\n\n".join(blocks)
