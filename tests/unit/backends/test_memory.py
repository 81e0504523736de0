"""The memory ports: the embedded default and what the node tests run on."""

from __future__ import annotations

from clarion.backends.memory import (
    MemoryAppStore,
    MemoryBroker,
    MemoryCacheStore,
    MemoryChannelStore,
    MemoryPresenceStore,
    MemoryUserStore,
)
from clarion.core.envelope import Envelope
from clarion.ports import CachedEvent
from clarion.types import AppId

from ..fakes import FakeClock, make_app

A, B = AppId("a"), AppId("b")


def envelope(n: int) -> Envelope:
    return Envelope(A, "c", f"e{n}", "{}")


def test_broker_delivers_synchronously_in_publish_order() -> None:
    broker = MemoryBroker()
    seen: list[Envelope] = []
    broker.bind(seen.append)
    broker.publish(envelope(1))
    broker.publish(envelope(2))
    assert [e.event for e in seen] == ["e1", "e2"]


async def test_broker_without_a_node_drops_and_close_unbinds() -> None:
    broker = MemoryBroker()
    broker.publish(envelope(0))  # nothing bound: no error
    seen: list[Envelope] = []
    broker.bind(seen.append)
    await broker.close()
    broker.publish(envelope(1))
    assert seen == []


async def test_presence_store_first_and_last() -> None:
    store = MemoryPresenceStore()
    assert await store.join(A, "presence-x", "42", "1.1", {"n": 1}) is True
    assert await store.join(A, "presence-x", "42", "2.2", {"n": 2}) is False
    assert await store.join(A, "presence-x", "7", "3.3", None) is True
    assert await store.count(A, "presence-x") == 2
    assert await store.members(A, "presence-x") == {"42": {"n": 2}, "7": None}
    assert await store.leave(A, "presence-x", "42", "1.1") is False
    assert await store.leave(A, "presence-x", "42", "2.2") is True
    assert await store.leave(A, "presence-x", "42", "2.2") is False
    assert await store.leave(A, "presence-x", "7", "3.3") is True
    assert await store.count(A, "presence-x") == 0
    assert await store.members(A, "presence-x") == {}


async def test_presence_store_is_per_app_and_channel() -> None:
    store = MemoryPresenceStore()
    assert await store.join(A, "presence-x", "42", "1.1", None) is True
    assert await store.join(B, "presence-x", "42", "2.2", None) is True
    assert await store.join(A, "presence-y", "42", "1.1", None) is True
    assert await store.count(B, "presence-x") == 1
    assert await store.leave(B, "presence-y", "42", "2.2") is False
    assert await store.leave(A, "presence-x", "42", "1.1") is True
    assert await store.count(A, "presence-y") == 1


async def test_channel_store_counts_are_idempotent_per_socket() -> None:
    store = MemoryChannelStore()
    assert await store.add(A, "c", "1.1") == 1
    assert await store.add(A, "c", "1.1") == 1
    assert await store.add(A, "c", "2.2") == 2
    assert await store.count(A, "c") == 2
    assert await store.remove(A, "c", "1.1") == 1
    assert await store.remove(A, "c", "1.1") == 1
    assert await store.remove(A, "c", "2.2") == 0
    assert await store.remove(A, "c", "2.2") == 0
    assert await store.count(A, "c") == 0
    assert await store.remove(B, "nope", "1.1") == 0


async def test_channel_store_occupied_by_prefix() -> None:
    store = MemoryChannelStore()
    await store.add(A, "presence-a", "1.1")
    await store.add(A, "presence-a", "2.2")
    await store.add(A, "presence-b", "1.1")
    await store.add(A, "private-c", "1.1")
    await store.add(B, "presence-z", "1.1")
    assert await store.occupied(A, "presence-") == {"presence-a": 2, "presence-b": 1}
    assert await store.occupied(A, "") == {"presence-a": 2, "presence-b": 1, "private-c": 1}
    await store.remove(A, "presence-b", "1.1")
    assert await store.occupied(A, "presence-") == {"presence-a": 2}
    assert await store.occupied(AppId("none"), "") == {}


def test_app_store_lookups() -> None:
    one = make_app(id=AppId("1"), key="k1")
    two = make_app(id=AppId("2"), key="k2", enabled=False)
    store = MemoryAppStore([one, two])
    assert store.by_key("k1") is one
    assert store.by_key("k2") is two
    assert store.by_key("1") is None
    assert store.by_id("2") is two
    assert store.by_id("k2") is None
    assert sorted(app.id for app in store.all()) == ["1", "2"]


# ---- users (reference 3.3: online while signed in on at least one socket) ----------------


async def test_user_store_first_and_last_socket() -> None:
    store = MemoryUserStore()
    assert await store.sign_in(A, "42", "1.1") is True
    assert await store.sign_in(A, "42", "2.2") is False
    assert await store.sign_in(A, "42", "2.2") is False  # idempotent per socket
    assert await store.online(A, ["42"]) == ["42"]
    assert await store.sign_out(A, "42", "1.1") is False
    assert await store.online(A, ["42"]) == ["42"]
    assert await store.sign_out(A, "42", "2.2") is True
    assert await store.sign_out(A, "42", "2.2") is False
    assert await store.online(A, ["42"]) == []
    assert await store.sign_in(A, "42", "3.3") is True  # online again


async def test_user_store_sign_out_of_an_unknown_socket_changes_nothing() -> None:
    store = MemoryUserStore()
    await store.sign_in(A, "42", "1.1")
    assert await store.sign_out(A, "42", "9.9") is False
    assert await store.sign_out(A, "nobody", "1.1") is False
    assert await store.online(A, ["42"]) == ["42"]


async def test_user_store_online_keeps_the_given_order() -> None:
    store = MemoryUserStore()
    for uid, sid in (("c", "1.1"), ("a", "2.2"), ("b", "3.3")):
        await store.sign_in(A, uid, sid)
    assert await store.online(A, ["b", "x", "c", "a"]) == ["b", "c", "a"]
    assert await store.online(A, []) == []


async def test_user_store_is_per_app() -> None:
    store = MemoryUserStore()
    await store.sign_in(A, "42", "1.1")
    assert await store.online(B, ["42"]) == []
    assert await store.sign_in(B, "42", "2.2") is True
    assert await store.sign_out(B, "42", "1.1") is False


# ---- cache channels (reference 2.8) ------------------------------------------------------


async def test_cache_store_keeps_the_last_event_until_its_ttl() -> None:
    clock = FakeClock(1000.0)
    store = MemoryCacheStore(clock)
    assert await store.get(A, "cache-x") is None
    await store.put(A, "cache-x", "first", '{"n":1}', 60)
    await store.put(A, "cache-x", "second", '{"n":2}', 60)
    assert await store.get(A, "cache-x") == CachedEvent("second", '{"n":2}', 60)
    clock.advance(59.5)
    cached = await store.get(A, "cache-x")
    assert cached is not None
    assert cached.event == "second"
    clock.advance(0.5)
    assert await store.get(A, "cache-x") is None


async def test_cache_store_ttl_counts_down_and_never_reads_zero_while_alive() -> None:
    clock = FakeClock(0.0)
    store = MemoryCacheStore(clock)
    await store.put(A, "cache-x", "ev", "{}", 1800)
    clock.advance(100)
    cached = await store.get(A, "cache-x")
    assert cached is not None
    assert cached.ttl_seconds == 1700
    clock.advance(1699.9)
    cached = await store.get(A, "cache-x")
    assert cached is not None
    assert cached.ttl_seconds == 1


async def test_a_new_put_restarts_the_ttl() -> None:
    clock = FakeClock(0.0)
    store = MemoryCacheStore(clock)
    await store.put(A, "cache-x", "ev", "1", 10)
    clock.advance(8)
    await store.put(A, "cache-x", "ev", "2", 10)
    clock.advance(8)
    assert await store.get(A, "cache-x") == CachedEvent("ev", "2", 2)


async def test_cache_store_is_per_app_and_channel() -> None:
    store = MemoryCacheStore(FakeClock())
    await store.put(A, "cache-x", "ev", "a", 60)
    assert await store.get(B, "cache-x") is None
    assert await store.get(A, "cache-y") is None
    await store.put(B, "cache-x", "ev", "b", 60)
    first, second = await store.get(A, "cache-x"), await store.get(B, "cache-x")
    assert first is not None
    assert first.data == "a"
    assert second is not None
    assert second.data == "b"


async def test_cache_store_drops_expired_channels_nobody_reads() -> None:
    clock = FakeClock(0.0)
    store = MemoryCacheStore(clock)
    for i in range(1000):
        await store.put(A, f"cache-old-{i}", "ev", "{}", 1)
    clock.advance(2)
    for i in range(100):
        await store.put(A, f"cache-new-{i}", "ev", "{}", 60)
    # Peeks at the private dict: the clean-up is invisible through get() by design.
    assert len(store._events) <= 100 + 1024
    assert all(not name.startswith("cache-old-") for _, name in store._events)
    assert await store.get(A, "cache-new-0") is not None
