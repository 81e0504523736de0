"""A subscribe that waits on a store (Redis) for the roster or the cached event: what its channel
gets meanwhile reaches the socket after `subscription_succeeded`, and none of it is lost
(reference 2.3, 2.4, 2.8)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from clarion.backends.memory import MemoryCacheStore, MemoryPresenceStore
from clarion.core.envelope import Envelope
from clarion.ports import CachedEvent
from clarion.types import AppId

from .fakes import FakeClock, FakeConnection, NodeHarness, connect, send_subscribe

TIMEOUT = 5 * float(os.environ.get("CLARION_TEST_TIMEOUT_SCALE") or "1")


class Gate:
    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()

    async def pass_(self) -> None:
        self.reached.set()
        await self.opened.wait()


class GatedPresence:
    """The memory store, whose roster read waits until the test opens the gate."""

    def __init__(self) -> None:
        self.inner, self.gate = MemoryPresenceStore(), Gate()

    async def join(
        self, app_id: AppId, channel: str, user_id: str, socket_id: str, info: Any
    ) -> bool:
        return await self.inner.join(app_id, channel, user_id, socket_id, info)

    async def leave(self, app_id: AppId, channel: str, user_id: str, socket_id: str) -> bool:
        return await self.inner.leave(app_id, channel, user_id, socket_id)

    async def members(self, app_id: AppId, channel: str) -> dict[str, Any]:
        await self.gate.pass_()
        return await self.inner.members(app_id, channel)

    async def count(self, app_id: AppId, channel: str) -> int:
        return await self.inner.count(app_id, channel)


class GatedCache:
    def __init__(self) -> None:
        self.inner, self.gate = MemoryCacheStore(FakeClock()), Gate()

    async def put(self, app_id: AppId, channel: str, event: str, data: str, ttl: int) -> None:
        await self.inner.put(app_id, channel, event, data, ttl)

    async def get(self, app_id: AppId, channel: str) -> CachedEvent | None:
        await self.gate.pass_()
        return await self.inner.get(app_id, channel)


def _from_succeeded(events: list[str]) -> list[str]:
    return events[events.index("pusher_internal:subscription_succeeded") :]


async def _subscribe_until_held(
    h: NodeHarness, gate: Gate, channel: str, **extra: Any
) -> FakeConnection:
    """A socket's subscribe, run until it waits at `gate` (its frames now held)."""
    session, conn = connect(h)
    send_subscribe(h, session, channel, **extra)
    await asyncio.wait_for(gate.reached.wait(), TIMEOUT)
    return conn


async def test_events_during_the_roster_wait_follow_subscription_succeeded() -> None:
    store = GatedPresence()
    h = NodeHarness(presence=store)
    conn = await _subscribe_until_held(h, store.gate, "presence-room", user="u1")
    app_id = h.apps[0].id
    h.node.publish(Envelope(app_id, "presence-room", "first", '"1"'))
    h.node.publish(Envelope(app_id, "presence-room", "second", '"2"'))
    assert "first" not in conn.events()
    store.gate.opened.set()
    await h.node.drain()
    assert _from_succeeded(conn.events()) == [
        "pusher_internal:subscription_succeeded",
        "first",
        "second",
    ]
    h.node.publish(Envelope(app_id, "presence-room", "later", '"3"'))
    assert conn.events()[-1] == "later"


async def test_events_during_the_cache_wait_follow_the_cache_miss() -> None:
    cache = GatedCache()
    h = NodeHarness(cache=cache)
    conn = await _subscribe_until_held(h, cache.gate, "cache-news")
    h.node.publish(Envelope(h.apps[0].id, "cache-news", "live", '"x"'))
    cache.gate.opened.set()
    await h.node.drain()
    assert _from_succeeded(conn.events()) == [
        "pusher_internal:subscription_succeeded",
        "pusher:cache_miss",
        "live",
    ]
    assert not h.node._held
