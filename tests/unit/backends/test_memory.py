"""The memory ports: the embedded default and what the node tests run on."""

from __future__ import annotations

from clarion.backends.memory import (
    MemoryAppStore,
    MemoryBroker,
    MemoryChannelStore,
    MemoryPresenceStore,
)
from clarion.core.envelope import Envelope
from clarion.types import AppId

from ..fakes import make_app

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
