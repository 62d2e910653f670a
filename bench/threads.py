"""One generated ticket: its conversation, status history and SLA fields, as COPY lines.

Why tickets are built whole: everything about a ticket follows from one story — created at
t, first answered by an agent after a delay drawn against its first-response target,
answered back and forth, then left pending, solved or closed. Status, `updated_at`,
`first_responded_at`, the status events, the SLA due times, the alerts the sweep would
have fired and `sla_next_check_at` are all read off that story, so they agree with each
other the way the app's own hooks (services/sla.py) would have left them. SLA policies
are 24x7 (shape.SLA_TARGETS), so due time = created_at + target and a p % warning falls at
created_at + p % of the target, which is what `sla.thresholds_of` computes for them.
"""

from __future__ import annotations

import base64
import math
import random
from bisect import bisect
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate

from bench import vectors
from bench.pgcopy import NULL, escape, line, text_array, ts, ts_or_null
from bench.shape import SLA_TARGETS, WARN_AT_PERCENT, OrgPlan
from bench.words import split_words, subject_text, subject_words
from helpdesk.models import BREACH_LEVEL
from helpdesk.services.sla import state_of

DAY = 86400.0
TWO_YEARS_DAYS = 730
GROWTH = 2.0  # three times as many tickets a day now as two years ago
STATUSES = ("new", "open", "pending", "on_hold", "solved", "closed")
# Status by age: recent tickets are still being worked, old ones are nearly all closed.
AGE_STATUS = (
    (2 * DAY, (35, 40, 15, 3, 7, 0)),
    (14 * DAY, (5, 25, 20, 5, 40, 5)),
    (60 * DAY, (1, 8, 8, 3, 30, 50)),
    (math.inf, (0.2, 2, 2, 1, 5, 89.8)),
)
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_CUM = tuple(accumulate((15, 55, 22, 8)))
TAGS = split_words(
    "billing bug vip sso mobile export refund api login invoice printer onboarding"
    " outage security feature-request how-to integration data-loss performance email"
    " webhook reporting permissions sync upgrade trial cancellation gdpr escalated"
)
TAG_CUM = tuple(accumulate(1.0 / (r + 1.5) for r in range(len(TAGS))))
HOUR_CUM = tuple(
    accumulate((1, 1, 1, 1, 1, 2, 3, 6, 9, 10, 10, 10, 9, 10, 10, 10, 9, 7, 5, 4, 3, 3, 2, 1))
)
TAIL_EVERY, TAIL_AT = 2500, 1250  # ticket numbers ≡ 1250 (mod 2500) get 200-320 comments
HUNDRED_AT, HUNDRED = 625, 100  # and numbers ≡ 625 (mod 2500) exactly 100 (a measured size)
CLOSE_AFTER = 4 * DAY  # solved tickets close this long after the last reply
INTERNAL_SHARE = 0.12
TICKET_COLUMNS = (
    "id, org_id, number, subject, status, priority, requester_id, assignee_id, tags,"
    " created_at, updated_at, search_all, search_public, first_response_due_at,"
    " resolution_due_at, first_responded_at, solved_at, sla_paused_at, sla_next_check_at,"
    " sla_due_at, sla_state, reply_token"
)
COMMENT_COLUMNS = (
    "ticket_id, author_id, body_md, body_html, internal, channel, created_at, org_id, message_id"
)
EVENT_COLUMNS = "ticket_id, actor_id, field, old_value, new_value, created_at, org_id"
SLA_EVENT_COLUMNS = "ticket_id, target, level, due_at, threshold_at, fired_at, org_id"
PAUSE_COLUMNS = "ticket_id, started_at, ended_at, org_id"


@dataclass
class BodyPool:
    """Distinct message bodies: escaped markdown, escaped HTML and parsed search form."""

    md: list[str]
    html: list[str]
    parsed: list[vectors.Parsed]


@dataclass
class Made:
    """COPY lines of one ticket; comments carry their time so they can be emitted in order."""

    ticket: str
    comments: list[tuple[float, str]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    sla_events: list[str] = field(default_factory=list)
    pause: str | None = None


def created_times(count: int, now: float, rng: random.Random) -> list[float]:
    """Creation times over two years, growing, busier on weekdays and in office hours."""
    today = math.floor(now / DAY) * DAY
    times: list[float] = []
    while len(times) < count:
        u = rng.random()
        x = (math.sqrt(1 + 2 * GROWTH * u * (1 + GROWTH / 2)) - 1) / GROWTH
        day = today - (TWO_YEARS_DAYS - 1 - min(int(x * TWO_YEARS_DAYS), 729)) * DAY
        if (int(day // DAY) + 3) % 7 >= 5 and rng.random() < 0.6:  # Saturday, Sunday
            continue
        t = day + bisect(HOUR_CUM, rng.random() * HOUR_CUM[-1]) * 3600 + rng.random() * 3600
        if t < now - 1:
            times.append(t)
    times.sort()
    return times


def _geometric(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    return int(math.log(1.0 - rng.random()) / math.log(mean / (1.0 + mean)))


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


class ThreadMaker:
    """Builds tickets of every org from shared pools; one instance per load."""

    def __init__(
        self, now: float, mean_comments: float, pool: BodyPool, lexemes: dict[str, str | None]
    ) -> None:
        self.now = now
        self.now_dt = datetime.fromtimestamp(now, UTC)
        self.mean = mean_comments
        tail = (260 + HUNDRED) / TAIL_EVERY if mean_comments >= 2 else 0.0
        self.base_mean = max(0.0, (mean_comments - 1 - tail) / (1 - 2 / TAIL_EVERY))
        self.pool = pool
        self.lexemes = lexemes

    def comment_count(self, rng: random.Random, number: int) -> int:
        """About `mean` comments, geometric; 200-320 on every 2,500th, 100 on others."""
        if self.mean <= 0:
            return 0
        if self.mean >= 2 and number % TAIL_EVERY == TAIL_AT:
            return 200 + (number // TAIL_EVERY) % 121
        if self.mean >= 2 and number % TAIL_EVERY == HUNDRED_AT:
            return HUNDRED
        if self.mean < 1:
            return 1 if rng.random() < self.mean else 0
        return 1 + _geometric(rng, self.base_mean)

    def status(self, rng: random.Random, age: float) -> str:
        for limit, weights in AGE_STATUS:
            if age < limit:
                return rng.choices(STATUSES, weights)[0]
        raise AssertionError("unreachable: the last age limit is infinite")

    def make(self, rng: random.Random, tid: int, org: OrgPlan, number: int, created: float) -> Made:
        """Every row of one ticket."""
        status = self.status(rng, self.now - created)
        priority = PRIORITIES[bisect(PRIORITY_CUM, rng.random() * PRIORITY_CUM[-1])]
        agents = org.staff[1:] or org.staff
        assignee = None
        if status != "new" and rng.random() < 0.93:
            assignee = agents[int(len(agents) * rng.random() ** 1.5)]
        requester = org.requesters[int(len(org.requesters) * rng.random() ** 2)]
        count = self.comment_count(rng, number)
        if status == "new":
            count = min(count, 2)
        elif status != "open" and count >= 1 and count % 2:  # end with the agent's reply
            count = count + 1 if count == 1 or rng.random() < 0.5 else count - 1
        story = _Story(self, rng, tid, org, created, status, priority, requester, assignee)
        story.converse(count)
        return story.finish(number)


class _Story:
    """The timeline of one ticket while it is being built."""

    def __init__(
        self,
        maker: ThreadMaker,
        rng: random.Random,
        tid: int,
        org: OrgPlan,
        created: float,
        status: str,
        priority: str,
        requester: int,
        assignee: int | None,
    ) -> None:
        self.m, self.rng, self.tid, self.org = maker, rng, tid, org
        self.created, self.status, self.priority = created, status, priority
        self.requester, self.assignee = requester, assignee
        self.turns: list[tuple[float, int, int, bool]] = []  # time, author, body, internal
        self.first_response: float | None = None
        self.events: list[str] = []

    def converse(self, count: int) -> None:
        rng, fr_minutes = self.rng, SLA_TARGETS[self.priority][0]
        agents = self.org.staff[1:] or self.org.staff
        t, offsets = 0.0, []
        for k in range(count):
            staff = k % 2 == 1 and self.status != "new"
            last = k == count - 1
            internal = staff and not last and rng.random() < INTERNAL_SHARE
            if k == 0:
                gap = 0.0
            elif k == 1 and staff:  # the first answer, against the first-response target
                gap = _lognormal(rng, fr_minutes * 60 * 0.35, 0.9)
            else:
                gap = _lognormal(rng, 2 * 3600 if staff else 8 * 3600, 1.0)
            t += gap
            author = (self.assignee or rng.choice(agents)) if staff else self.requester
            offsets.append((t, author, rng.randrange(len(self.m.pool.md)), internal, staff))
        span_end = self.m.now - 60 - (CLOSE_AFTER if self.status == "closed" else 0)
        scale = 1.0
        if offsets and self.created + t > span_end:
            scale = max(0.0, (span_end - self.created) * 0.98) / t if t > 0 else 0.0
            if self.status == "closed" and scale <= 0:
                self.status, span_end = "solved", self.m.now - 60
                scale = max(0.0, (span_end - self.created) * 0.98) / t if t > 0 else 0.0
        for off, author, body, internal, staff in offsets:
            when = self.created + off * scale
            self.turns.append((when, author, body, internal))
            if staff and not internal and self.first_response is None:
                self.first_response = when

    def finish(self, number: int) -> Made:
        """Every COPY line of the ticket (the random draws happen in a fixed order)."""
        rng, org, tid = self.rng, self.org, self.tid
        made = Made("", comments=self._comments())
        updated, solved, paused = self._status_events(self.turns[-1][0] if self.turns else
                                                      self.created)  # fmt: skip
        made.events = self.events
        sla = self._sla(made, solved, paused) if org.sla else (NULL,) * 5
        words = subject_words(rng)
        search_all, search_public = self._vectors(words)
        tags = sorted({TAGS[bisect(TAG_CUM, rng.random() * TAG_CUM[-1])]
                       for _ in range(rng.choice((0, 0, 1, 1, 2, 3)))})  # fmt: skip
        token = NULL
        if self.first_response is not None:
            token = base64.b32encode(rng.randbytes(20)).decode().lower()
        if paused is not None:
            made.pause = line(tid, ts(paused), NULL, org.id)
        made.ticket = line(
            tid, org.id, number, escape(subject_text(words)), self.status, self.priority,
            self.requester, self.assignee if self.assignee is not None else NULL,
            text_array(tags), ts(self.created), ts(updated), escape(search_all),
            escape(search_public), sla[0], sla[1], ts_or_null(self.first_response),
            ts_or_null(solved), ts_or_null(paused), sla[2], sla[3], sla[4], token,
        )  # fmt: skip
        return made

    def _comments(self) -> list[tuple[float, str]]:
        """(time, COPY line) of each message; two thirds of the requester's come by email."""
        md, html, tid, org = self.m.pool.md, self.m.pool.html, self.tid, self.org
        found: list[tuple[float, str]] = []
        for when, author, body, internal in self.turns:
            if author == self.requester and self.rng.random() < 0.67:
                channel = "email"
                message_id = f"<{tid}.{len(found)}@mail.customers-{org.slug}.bench.test>"
            else:
                channel, message_id = "web", NULL
            found.append((when, f"{tid}\t{author}\t{md[body]}\t{html[body]}\t"
                          f"{'t' if internal else 'f'}\t{channel}\t{ts(when)}\t{org.id}"
                          f"\t{message_id}"))  # fmt: skip
        return found

    def _vectors(self, words: list[str]) -> tuple[str, str]:
        """search_all and search_public: the subject, then every (public) message in order."""
        subject = vectors.parse_words(words, self.m.lexemes)
        parsed = self.m.pool.parsed
        bodies = [parsed[b] for _t, _a, b, _i in self.turns]
        search_all = vectors.concat_text(subject, bodies)
        public = [parsed[b] for _t, _a, b, internal in self.turns if not internal]
        if len(public) == len(bodies):
            return search_all, search_all
        return search_all, vectors.concat_text(subject, public)

    def _event(self, when: float, actor: int | None, name: str, old: str | None, new: str) -> None:
        self.events.append(
            line(
                self.tid,
                NULL if actor is None else actor,
                name,
                NULL if old is None else old,
                new,
                ts(when),
                self.org.id,
            )
        )

    def _status_events(self, last: float) -> tuple[float, float | None, float | None]:
        """Status and assignee history; returns (updated_at, solved_at, paused_at)."""
        if self.status == "new":
            return last, None, None
        if self.status == "closed" and last + CLOSE_AFTER > self.m.now - 60:
            self.status = "solved"  # too recent to have been closed yet
        opened = self.first_response or max(self.created, min(self.created + 300, self.m.now - 30))
        actor = self.assignee or self.org.staff[0]
        self._event(opened, actor, "status", "new", "open")
        if self.assignee is not None:
            email = self.org.agent_emails[self.org.staff.index(self.assignee)]
            self._event(opened, actor, "assignee", None, email)
        last = max(last, opened)
        if self.status in ("pending", "on_hold"):
            self._event(last, actor, "status", "open", self.status)
            return last, None, last
        if self.status in ("solved", "closed"):
            self._event(last, actor, "status", "open", "solved")
            if self.status == "closed":
                self._event(last + CLOSE_AFTER, None, "status", "solved", "closed")
                return last + CLOSE_AFTER, last, None
            return last, last, None
        return last, None, None

    def _sla(self, made: Made, solved: float | None, paused: float | None) -> tuple[str, ...]:
        """(first_response_due_at, resolution_due_at, next_check, sla_due_at, sla_state)."""
        fr_min, res_min = SLA_TARGETS[self.priority]
        due = {
            "first_response": self.created + fr_min * 60,
            "resolution": self.created + res_min * 60,
        }
        met = {"first_response": self.first_response, "resolution": solved}
        clock = solved if solved is not None else paused if paused is not None else self.m.now
        fired: set[tuple[str, str]] = set()
        pending: list[float] = []
        for target, due_at in due.items():
            minutes = fr_min if target == "first_response" else res_min
            levels = [(f"{p}%", self.created + minutes * 60 * p / 100) for p in WARN_AT_PERCENT]
            met_at = met[target]
            end = clock if met_at is None else min(clock, met_at)
            for level, at in [*levels, (BREACH_LEVEL, due_at)]:
                if at < end:
                    fired.add((target, level))
                    fired_at = min(at + 1 + self.rng.random() * 9, self.m.now)
                    made.sla_events.append(
                        line(self.tid, target, level, ts(due_at), ts(at), ts(fired_at), self.org.id)
                    )
                elif met[target] is None:
                    pending.append(at)
        unmet = {t: d for t, d in due.items() if met[t] is None}
        # The state is what the last refresh stored: for a solved ticket, the one just
        # before solving, when resolution was still due.
        running = {t: d for t, d in due.items() if t == "resolution" or met[t] is None}
        state = state_of(
            {t: datetime.fromtimestamp(d, UTC) for t, d in running.items()},
            fired,
            datetime.fromtimestamp(clock, UTC),
        ).value
        if solved is not None:
            return NULL, NULL, NULL, NULL, state
        next_check = None if paused is not None or not pending else min(pending)
        return (
            ts_or_null(unmet.get("first_response")),
            ts(due["resolution"]),
            ts_or_null(next_check),
            ts(min(unmet.values())),
            state,
        )
