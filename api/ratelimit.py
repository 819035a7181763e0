"""A request rate limit per API key: a token bucket in each API process.

Each key may make ``rate`` requests a second on average and ``burst`` at once. The buckets
live in the process (no shared store on the request path, and a broker outage cannot turn
into refused requests), so with N API processes a key gets up to N times the rate.
"""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, at)
        self._lock = threading.Lock()

    def hit(self, key: str) -> int | None:
        """Take a token for ``key``: None when the request may go ahead, else the whole
        seconds until a token is back (for Retry-After)."""
        if self.rate <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return max(1, math.ceil((1.0 - tokens) / self.rate))
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._buckets.clear()  # rare; a full bucket for everyone is the safe side
            self._buckets[key] = (tokens - 1.0, now)
            return None
