"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

A message is signed as ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`` where
``key`` is the base64-decoded part of a ``whsec_…`` secret. During a secret rotation a
delivery carries one signature per live secret, space-separated; a receiver accepts the
message when any of them matches (the spec's rule, and what the reference library does).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(keys: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a signed message, signed with every key in ``keys``."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(k, msg_id, timestamp, body) for k in keys),
    }
