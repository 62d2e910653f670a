"""Who else is looking at a ticket: short-lived presence marks in Redis.

Each open ticket page sends a heartbeat every ~10 s. A mark lives PRESENCE_TTL seconds, so
a closed tab disappears within half a minute. Marks are kept per ticket in one Redis hash
(field = user id, value = "<mode>:<expiry>") that itself expires, so nothing accumulates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis import Redis

PRESENCE_TTL = 30  # seconds a heartbeat counts
MODES = ("viewing", "replying")


@dataclass(frozen=True)
class Presence:
    user_id: int
    mode: str


def _key(org_id: int, ticket_id: int) -> str:
    return f"presence:{org_id}:{ticket_id}"


def heartbeat(
    redis: Redis, org_id: int, ticket_id: int, user_id: int, mode: str, now: float | None = None
) -> list[Presence]:
    """Record that the user is on the ticket; return the *other* people present."""
    if mode not in MODES:
        mode = "viewing"
    moment = time.time() if now is None else now
    key = _key(org_id, ticket_id)
    pipe = redis.pipeline()
    pipe.hset(key, str(user_id), f"{mode}:{moment + PRESENCE_TTL:.0f}")
    pipe.expire(key, PRESENCE_TTL * 2)
    pipe.hgetall(key)
    marks = pipe.execute()[-1]
    others, expired = [], []
    for raw_user, raw_value in marks.items():
        uid, (seen_mode, _, until) = int(raw_user), raw_value.decode().partition(":")
        if float(until) < moment:
            expired.append(raw_user)
        elif uid != user_id:
            others.append(Presence(uid, seen_mode))
    if expired:
        redis.hdel(key, *expired)
    return sorted(others, key=lambda p: (p.mode != "replying", p.user_id))
