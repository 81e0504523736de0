"""Token buckets (reference 4: 10 client events per second per connection; 5.4)."""

from __future__ import annotations

import pytest

from clarion.core.ratelimit import TokenBucket


def takes(bucket: TokenBucket, now: float, n: int) -> list[bool]:
    return [bucket.take(now) for _ in range(n)]


def test_a_fresh_bucket_allows_a_burst_of_rate_then_refuses() -> None:
    bucket = TokenBucket(10, 100.0)
    assert takes(bucket, 100.0, 10) == [True] * 10
    assert bucket.take(100.0) is False
    assert bucket.take(100.0) is False


def test_refill_is_rate_per_second() -> None:
    # Times are binary fractions so the arithmetic is exact.
    bucket = TokenBucket(4, 0.0)
    takes(bucket, 0.0, 4)
    assert bucket.take(0.125) is False  # half a token
    assert bucket.take(0.25) is True  # one token after 1/rate s, accumulated over two calls
    assert bucket.take(0.25) is False
    assert takes(bucket, 1.0, 4) == [True, True, True, False]


def test_a_quiet_period_refills_at_most_to_the_rate() -> None:
    bucket = TokenBucket(3, 0.0)
    takes(bucket, 0.0, 3)
    assert takes(bucket, 1000.0, 4) == [True, True, True, False]


def test_the_long_run_average_never_exceeds_the_rate() -> None:
    bucket = TokenBucket(10, 0.0)
    passed = sum(bucket.take(i / 100) for i in range(1000))  # 100 attempts per second for 10 s
    assert passed <= 10 + 10 * 10  # the first burst plus the refill
    assert passed >= 10 * 10


def test_a_clock_that_steps_back_refills_nothing() -> None:
    bucket = TokenBucket(2, 10.0)
    takes(bucket, 10.0, 2)
    assert bucket.take(9.0) is False
    assert bucket.take(10.0) is False
    assert bucket.take(10.5) is True


@pytest.mark.parametrize("rate", [1, 5, 10])
def test_burst_equals_the_rate(rate: int) -> None:
    bucket = TokenBucket(rate, 0.0)
    assert sum(takes(bucket, 0.0, rate + 5)) == rate
