"""Signing, the address guard and the retry policy of webhooks, without services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from standardwebhooks import Webhook

from core.config import Settings
from core.db import utcnow
from core.webhooks import signing, ssrf
from core.webhooks.orm import WebhookDelivery
from core.webhooks.service import Outcome, backoff_s, decide

SETTINGS = Settings(
    database_url="sqlite://",
    webhook_retry_base_s=5,
    webhook_retry_max_s=60,
    webhook_retry_window_s=3600,
    webhook_attempts_non_terminal=3,
)


def test_signature_verifies_with_the_reference_library():
    secret, body = signing.new_secret(), b'{"id":"j1","type":"completed"}'
    headers = signing.headers([secret], "evt_1", int(utcnow().timestamp()), body)
    assert Webhook(secret).verify(body, headers) == {"id": "j1", "type": "completed"}


def test_each_secret_of_a_rotation_verifies_alone():
    old, new, body = signing.new_secret(), signing.new_secret(), b"{}"
    headers = signing.headers([new, old], "evt_2", int(utcnow().timestamp()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)


def _no_dns(host: str, port: int) -> list[str]:
    return [host]  # IP literals only: no resolver needed


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),
        ("100.100.100.200", "non-public"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::1", "loopback"),
        ("fd00:ec2::254", "private"),
        ("::ffff:10.0.0.1", "private"),
    ],
)
def test_non_public_addresses_are_refused_with_the_reason(address, reason):
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(ssrf.WebhookRefused, match=f"a {reason} address") as refused:
        ssrf.check(f"https://{host}/h", allow_http=False, allowed=[], resolver=_no_dns)
    assert refused.value.field == "webhook"


def test_a_public_address_is_allowed():
    addresses = ssrf.check("https://8.8.8.8/h", allow_http=False, allowed=[], resolver=_no_dns)
    assert [str(a) for a in addresses] == ["8.8.8.8"]


def test_an_allowed_range_opens_private_addresses():
    nets = Settings(
        database_url="sqlite://", webhook_allowed_cidrs="10.0.0.0/8"
    ).webhook_allowed_cidrs
    assert ssrf.check("https://10.9.9.9/h", allow_http=False, allowed=nets, resolver=_no_dns)


def test_one_private_address_among_public_ones_is_refused():
    def both(host: str, port: int) -> list[str]:
        return ["8.8.8.8", "10.0.0.1"]

    with pytest.raises(ssrf.WebhookRefused, match="10.0.0.1"):
        ssrf.check("https://hooks.example/h", allow_http=False, allowed=[], resolver=both)


def test_plain_http_needs_the_operator_switch():
    with pytest.raises(ssrf.WebhookRefused, match="https"):
        ssrf.check("http://8.8.8.8/h", allow_http=False, allowed=[], resolver=_no_dns)
    assert ssrf.check("http://8.8.8.8/h", allow_http=True, allowed=[], resolver=_no_dns)


def _delivery(event: str, attempts: int, age_s: float = 0) -> WebhookDelivery:
    return WebhookDelivery(
        event=event, attempts=attempts, created_at=utcnow() - timedelta(seconds=age_s)
    )


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (Outcome(status_code=204), "delivered"),
        (Outcome(status_code=410), "gone"),
        (Outcome(status_code=400), "failed"),
        (Outcome(status_code=301), "failed"),
        (Outcome(error="refused: private", refused=True), "failed"),
        (Outcome(status_code=429), "pending"),
        (Outcome(status_code=503), "pending"),
        (Outcome(error="timed out after 10 s"), "pending"),
    ],
)
def test_answers_settle_or_retry_a_delivery(outcome, status):
    decision = decide(_delivery("completed", 1), outcome, settings=SETTINGS, now=utcnow())
    assert decision.status == status


def test_completed_is_retried_until_the_window_closes():
    now = utcnow()
    inside = decide(
        _delivery("completed", 20, age_s=3000), Outcome(status_code=500), settings=SETTINGS, now=now
    )
    after = decide(
        _delivery("completed", 21, age_s=3601), Outcome(status_code=500), settings=SETTINGS, now=now
    )
    assert inside.status == "pending" and inside.next_attempt_at > now
    assert after.status == "failed" and "gave up" in after.reason


def test_other_events_are_dropped_after_their_few_tries():
    now = utcnow()
    second = decide(_delivery("start", 2), Outcome(status_code=500), settings=SETTINGS, now=now)
    third = decide(_delivery("start", 3), Outcome(status_code=500), settings=SETTINGS, now=now)
    assert second.status == "pending" and third.status == "dropped"


def test_backoff_doubles_with_jitter_up_to_the_cap():
    for attempts, full in [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (12, 60)]:
        delays = [backoff_s(SETTINGS, attempts) for _ in range(200)]
        assert full / 2 <= min(delays) and max(delays) <= full
        assert max(delays) - min(delays) > 0  # jittered, not fixed
