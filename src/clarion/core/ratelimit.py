"""Token buckets for the per-connection and per-app rate limits (reference 4, 5.4).

Pure: the caller passes the current time (a monotonic clock, seconds). A bucket holds at most
`rate` tokens and refills at `rate` per second, so a burst of `rate` passes after a quiet second
and the long-run average never exceeds `rate` per second.
"""

from __future__ import annotations


class TokenBucket:
    __slots__ = ("rate", "tokens", "updated")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.updated = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means over the limit."""
        elapsed = now - self.updated
        if elapsed > 0:
            self.tokens = min(self.rate, self.tokens + elapsed * self.rate)
            self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
