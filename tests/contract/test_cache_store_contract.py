"""CacheStore contract (ports.CacheStore, ports.CachedEvent): the last event of each cache
channel per app, kept for `ttl` seconds from its put; `ttl_seconds` is what is left before it
expires, a whole number that never reads 0 while the event is alive. Time is the injected
`clock`; nothing sleeps."""

from __future__ import annotations

import math

import pytest

from clarion.ports import CachedEvent, CacheStore
from clarion.types import AppId

from .conftest import ManualClock

A, B = AppId("app-a"), AppId("app-b")
X = "cache-x"


async def test_a_channel_never_put_has_nothing(cache_store: CacheStore) -> None:
    assert await cache_store.get(A, X) is None


async def test_get_returns_what_was_put_with_its_full_ttl(cache_store: CacheStore) -> None:
    await cache_store.put(A, X, "price", '{"eur":12}', 60)
    assert await cache_store.get(A, X) == CachedEvent("price", '{"eur":12}', 60)


async def test_data_and_event_are_kept_verbatim(cache_store: CacheStore) -> None:
    data = '{ "b":1,  "a":"Zoë ✓ \\"q\\"\\n" }'  # spacing, key order and escapes as sent
    await cache_store.put(A, X, "client-ünïcödé", data, 60)
    await cache_store.put(A, "cache-empty", "e", "", 60)
    assert await cache_store.get(A, X) == CachedEvent("client-ünïcödé", data, 60)
    assert await cache_store.get(A, "cache-empty") == CachedEvent("e", "", 60)


async def test_a_later_put_replaces_the_event_and_restarts_the_ttl(
    cache_store: CacheStore, clock: ManualClock
) -> None:
    await cache_store.put(A, X, "first", "1", 10)
    clock.advance(8)
    await cache_store.put(A, X, "second", "2", 10)
    assert await cache_store.get(A, X) == CachedEvent("second", "2", 10)
    clock.advance(8)
    assert await cache_store.get(A, X) == CachedEvent("second", "2", 2)
    clock.advance(2)
    assert await cache_store.get(A, X) is None


async def test_a_later_put_may_shorten_the_ttl(cache_store: CacheStore, clock: ManualClock) -> None:
    await cache_store.put(A, X, "long", "1", 100)
    await cache_store.put(A, X, "short", "2", 5)
    assert await cache_store.get(A, X) == CachedEvent("short", "2", 5)
    clock.advance(5)
    assert await cache_store.get(A, X) is None


async def test_ttl_counts_down_with_the_clock(cache_store: CacheStore, clock: ManualClock) -> None:
    await cache_store.put(A, X, "ev", "{}", 1800)
    for elapsed, left in ((100, 1700), (600, 1100), (1099, 1)):
        clock.advance(elapsed)
        cached = await cache_store.get(A, X)
        assert cached is not None
        assert cached.ttl_seconds == left


async def test_the_event_expires_when_its_ttl_has_passed(
    cache_store: CacheStore, clock: ManualClock
) -> None:
    await cache_store.put(A, X, "ev", "{}", 30)
    clock.advance(29.999)
    assert await cache_store.get(A, X) == CachedEvent("ev", "{}", 1)
    clock.advance(0.001)
    assert await cache_store.get(A, X) is None
    clock.advance(1000)
    assert await cache_store.get(A, X) is None  # reading does not bring it back


@pytest.mark.parametrize("elapsed", [0.2, 0.5, 0.8, 17.5, 58.5, 59.2, 59.5, 59.99])
async def test_ttl_is_a_whole_number_near_what_is_left_and_at_least_one(
    cache_store: CacheStore, clock: ManualClock, elapsed: float
) -> None:
    await cache_store.put(A, X, "ev", "{}", 60)
    clock.advance(elapsed)
    cached = await cache_store.get(A, X)
    assert cached is not None
    left = 60 - elapsed
    assert isinstance(cached.ttl_seconds, int)
    assert cached.ttl_seconds >= 1
    assert max(1, math.floor(left)) <= cached.ttl_seconds <= math.ceil(left)


async def test_a_put_after_expiry_is_stored_again(
    cache_store: CacheStore, clock: ManualClock
) -> None:
    await cache_store.put(A, X, "old", "1", 5)
    clock.advance(10)
    assert await cache_store.get(A, X) is None
    await cache_store.put(A, X, "new", "2", 5)
    assert await cache_store.get(A, X) == CachedEvent("new", "2", 5)


async def test_channels_and_apps_are_separate(cache_store: CacheStore, clock: ManualClock) -> None:
    await cache_store.put(A, X, "ev", "a-x", 10)
    assert await cache_store.get(B, X) is None
    assert await cache_store.get(A, "cache-y") is None
    await cache_store.put(B, X, "ev", "b-x", 60)
    await cache_store.put(A, "cache-y", "ev", "a-y", 60)
    assert await cache_store.get(A, X) == CachedEvent("ev", "a-x", 10)
    assert await cache_store.get(B, X) == CachedEvent("ev", "b-x", 60)
    assert await cache_store.get(A, "cache-y") == CachedEvent("ev", "a-y", 60)
    clock.advance(10)
    # One entry expiring leaves the others alone.
    assert await cache_store.get(A, X) is None
    assert await cache_store.get(B, X) == CachedEvent("ev", "b-x", 50)
    assert await cache_store.get(A, "cache-y") == CachedEvent("ev", "a-y", 50)
