"""The per-key token bucket (api/ratelimit.py)."""

from __future__ import annotations

from api.ratelimit import RateLimiter


def test_a_burst_passes_and_the_next_request_waits_for_a_token():
    limiter = RateLimiter(rate=0.5, burst=2)
    assert limiter.hit("k") is None
    assert limiter.hit("k") is None
    assert limiter.hit("k") == 2  # one token per 2 s


def test_keys_have_buckets_of_their_own():
    limiter = RateLimiter(rate=0.1, burst=1)
    assert limiter.hit("a") is None
    assert limiter.hit("a") is not None
    assert limiter.hit("b") is None


def test_a_rate_of_zero_turns_the_limit_off():
    limiter = RateLimiter(rate=0, burst=0)
    assert all(limiter.hit("k") is None for _ in range(100))
