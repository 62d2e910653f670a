"""The one list of periodic jobs, run by `flask --app wsgi cron` (an `rq cron` scheduler).

Intervals beat the targets with room to spare: the SLA sweep every 10 s (threshold → outbox
well under 20 s), the outbox/delivery relay every 5 s (nothing waits long after Redis comes
back), digests every minute (each user's own period decides who gets one).
"""

from __future__ import annotations

from typing import Any

from jobs import inbound, notify, scan, sla

PERIODIC: list[dict[str, Any]] = [
    {"func": sla.sweep, "queue_name": "sla", "interval": 10, "job_timeout": 120, "ttl": 30},
    {"func": notify.relay, "queue_name": "notify", "interval": 5, "job_timeout": 120, "ttl": 30},
    {  # inbound mail whose processing job was lost (Redis down at the request's commit)
        "func": inbound.requeue_waiting,
        "queue_name": "default",
        "interval": 60,
        "job_timeout": 120,
        "ttl": 120,
    },
    {  # failed scans whose backoff has passed, scans whose job was lost (services/scans.py)
        "func": scan.relay,
        "queue_name": "scan",
        "interval": 30,
        "job_timeout": 120,
        "ttl": 60,
    },
    {
        "func": notify.send_digests,
        "queue_name": "notify",
        "interval": 60,
        "job_timeout": 300,
        "ttl": 120,
    },
]
