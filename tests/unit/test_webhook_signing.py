"""Standard Webhooks signing: secrets, signature headers, and verifying them at a receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from helpdesk.services.webhook_http import send
from helpdesk.services.webhook_signing import new_secret, signature_headers
from tests.unit.webhook_helpers import (  # noqa: F401 - fixtures
    BODY,
    LOCAL,
    Receiver,
    _receiver,
)


def verify_from_spec(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Check a Standard Webhooks signature from the spec, without the standardwebhooks package."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(sig, f"v1,{expected}") for sig in headers["webhook-signature"].split()
    )


def test_new_secret_is_32_random_bytes_in_whsec_form() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert first != second


def test_signature_headers_verify_independently_and_with_the_library() -> None:
    secret = new_secret()
    now = datetime.now(UTC)
    headers = signature_headers([secret], "msg_1", now, BODY)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "helpdesk-webhooks/1"
    assert verify_from_spec(secret, headers, BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    assert not verify_from_spec(new_secret(), headers, BODY)
    assert not verify_from_spec(secret, headers, BODY + b" ")


def test_signature_matches_the_published_example() -> None:
    headers = signature_headers(
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        datetime.fromtimestamp(1614265330, UTC),
        b'{"test": 2432232314}',
    )
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_two_secrets_give_two_signatures_that_each_verify() -> None:
    old, new = new_secret(), new_secret()
    headers = signature_headers([old, new], "msg_2", datetime.now(UTC), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert verify_from_spec(secret, headers, BODY)
        Webhook(secret).verify(BODY, headers)


def test_a_non_utc_timestamp_signs_the_same_instant() -> None:
    secret = new_secret()
    local = datetime.now(timezone(timedelta(hours=5, minutes=30)))
    headers = signature_headers([secret], "msg_3", local, BODY)
    assert headers["webhook-timestamp"] == str(int(local.timestamp()))
    Webhook(secret).verify(BODY, headers)


def test_signed_delivery_verifies_at_the_receiver(receiver: Receiver) -> None:
    secret = new_secret()
    headers = signature_headers([secret], "msg_4", datetime.now(UTC), BODY)
    assert send(receiver.url(), BODY, headers, timeout=1, allowed=LOCAL).status == 200
    [seen] = receiver.seen
    assert Webhook(secret).verify(seen.body, seen.headers) == json.loads(BODY)


@pytest.mark.parametrize(
    ("secrets", "msg_id", "timestamp", "body", "message"),
    [
        ("whsec_abc", "m", datetime.now(UTC), BODY, "not a single string"),
        ([], "m", datetime.now(UTC), BODY, "non-empty list of signing secrets"),
        (["sk_live_abc"], "m", datetime.now(UTC), BODY, "secret #1 must start with 'whsec_'"),
        (["whsec_!!notbase64"], "m", datetime.now(UTC), BODY, "secret #1 is not valid base64"),
        (["whsec_c2hvcnQ="], "m", datetime.now(UTC), BODY, "secret #1 is too short"),
        (["whsec_" + "A" * 44], "", datetime.now(UTC), BODY, "message id must be non-empty"),
        (["whsec_" + "A" * 44], "a\nb", datetime.now(UTC), BODY, "printable ASCII"),
        (["whsec_" + "A" * 44], "m", datetime.now(), BODY, "timezone-aware"),
        (["whsec_" + "A" * 44], "m", datetime.now(UTC), b"\xff", "UTF-8 encoded JSON"),
    ],
)
def test_signature_headers_explain_bad_input(
    secrets: Any, msg_id: str, timestamp: datetime, body: bytes, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        signature_headers(secrets, msg_id, timestamp, body)
    for secret in secrets if isinstance(secrets, list) else []:
        assert secret not in str(caught.value)  # a secret never ends up in logs via the error
