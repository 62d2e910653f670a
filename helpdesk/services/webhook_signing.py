"""Standard Webhooks signing for outbound webhooks: secrets and signature headers.

Why: receivers authenticate our calls by their signature, never by a password in the URL.
Secrets are "whsec_" + base64 of random bytes; during a secret rotation both the new and the
previous secret sign, so a receiver holding either one verifies the call. Errors never echo a
secret, since they end up in logs.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from secrets import token_bytes

from standardwebhooks.webhooks import Webhook

USER_AGENT = "helpdesk-webhooks/1"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret


def new_secret() -> str:
    """Return a fresh signing secret in Standard Webhooks form ("whsec_" + base64 of 32 bytes)."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(32)).decode("ascii")


def signature_headers(
    secrets: Sequence[str], msg_id: str, timestamp: datetime, body: bytes
) -> dict[str, str]:
    """Return the Standard Webhooks headers, one v1 signature per secret (two during rotation)."""
    if isinstance(secrets, str) or not secrets:
        raise ValueError("pass a non-empty list of signing secrets (not a single string)")
    if not msg_id or not msg_id.isascii() or not msg_id.isprintable() or " " in msg_id:
        raise ValueError("the message id must be non-empty printable ASCII without spaces")
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError("the timestamp must be timezone-aware (use datetime.now(UTC))")
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the webhook body must be UTF-8 encoded JSON") from None
    # Webhook.sign() stamps the datetime as UTC without converting it, so convert first.
    when = timestamp.astimezone(UTC)
    signatures = [
        _webhook(secret, n).sign(msg_id, when, payload) for n, secret in enumerate(secrets)
    ]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(math.floor(when.timestamp())),
        "webhook-signature": " ".join(signatures),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


def _webhook(secret: str, index: int) -> Webhook:
    """Build a signer, refusing a secret that is not "whsec_" + base64 (never echoing it)."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"signing secret #{index + 1} must start with {SECRET_PREFIX!r}")
    try:
        raw = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError:
        raise ValueError(f"signing secret #{index + 1} is not valid base64") from None
    if len(raw) < 16:
        raise ValueError(
            f"signing secret #{index + 1} is too short; generate one with new_secret()"
        )
    return Webhook(raw)
