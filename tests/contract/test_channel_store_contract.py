"""ChannelStore contract (ports.ChannelStore): subscription counts per (app, channel); `add` and
`remove` return the count after the change and are idempotent per socket id, so a count goes
0 -> 1 and 1 -> 0 exactly once; `occupied` lists every channel with at least one subscriber
whose name starts with the prefix."""

from __future__ import annotations

from clarion.ports import ChannelStore
from clarion.types import AppId

A, B = AppId("app-a"), AppId("app-b")


async def test_an_unused_channel_counts_zero(channel_store: ChannelStore) -> None:
    assert await channel_store.count(A, "c") == 0
    assert await channel_store.occupied(A, "") == {}


async def test_add_returns_the_count_after_the_change(channel_store: ChannelStore) -> None:
    assert await channel_store.add(A, "c", "1.1") == 1
    assert await channel_store.add(A, "c", "2.2") == 2
    assert await channel_store.add(A, "c", "3.3") == 3
    assert await channel_store.count(A, "c") == 3


async def test_add_is_idempotent_per_socket(channel_store: ChannelStore) -> None:
    assert await channel_store.add(A, "c", "1.1") == 1
    assert await channel_store.add(A, "c", "1.1") == 1
    assert await channel_store.count(A, "c") == 1
    assert await channel_store.add(A, "c", "2.2") == 2
    assert await channel_store.add(A, "c", "2.2") == 2
    assert await channel_store.count(A, "c") == 2
    # Each socket was counted once, so one remove each empties the channel.
    assert await channel_store.remove(A, "c", "1.1") == 1
    assert await channel_store.remove(A, "c", "2.2") == 0


async def test_remove_returns_the_count_after_the_change(channel_store: ChannelStore) -> None:
    for socket_id in ("1.1", "2.2", "3.3"):
        await channel_store.add(A, "c", socket_id)
    assert await channel_store.remove(A, "c", "2.2") == 2
    assert await channel_store.count(A, "c") == 2
    assert await channel_store.remove(A, "c", "1.1") == 1
    assert await channel_store.remove(A, "c", "3.3") == 0
    assert await channel_store.count(A, "c") == 0


async def test_remove_is_idempotent_per_socket(channel_store: ChannelStore) -> None:
    await channel_store.add(A, "c", "1.1")
    await channel_store.add(A, "c", "2.2")
    assert await channel_store.remove(A, "c", "1.1") == 1
    assert await channel_store.remove(A, "c", "1.1") == 1
    assert await channel_store.count(A, "c") == 1
    assert await channel_store.remove(A, "c", "2.2") == 0
    assert await channel_store.remove(A, "c", "2.2") == 0
    assert await channel_store.count(A, "c") == 0


async def test_remove_of_a_socket_that_never_subscribed_changes_nothing(
    channel_store: ChannelStore,
) -> None:
    assert await channel_store.remove(A, "c", "1.1") == 0
    assert await channel_store.count(A, "c") == 0
    assert await channel_store.occupied(A, "") == {}
    await channel_store.add(A, "c", "1.1")
    assert await channel_store.remove(A, "c", "9.9") == 1
    assert await channel_store.count(A, "c") == 1


async def test_occupied_and_vacated_happen_exactly_once(channel_store: ChannelStore) -> None:
    """Replays a noisy sequence (repeated adds and removes) and records the 0 -> 1 and 1 -> 0
    changes the node turns into channel_occupied / channel_vacated webhooks."""
    ops = [
        ("add", "1.1"),
        ("add", "1.1"),
        ("add", "2.2"),
        ("remove", "1.1"),
        ("remove", "1.1"),
        ("add", "1.1"),
        ("remove", "2.2"),
        ("remove", "1.1"),
        ("remove", "1.1"),
        ("remove", "2.2"),
    ]
    counts: list[int] = []
    for op, socket_id in ops:
        if op == "add":
            counts.append(await channel_store.add(A, "c", socket_id))
        else:
            counts.append(await channel_store.remove(A, "c", socket_id))
    assert counts == [1, 1, 2, 1, 1, 2, 1, 0, 0, 0]
    changes = list(zip([0, *counts], counts, strict=False))
    assert changes.count((0, 1)) == 1
    assert changes.count((1, 0)) == 1


async def test_channels_of_different_apps_are_separate(channel_store: ChannelStore) -> None:
    assert await channel_store.add(A, "c", "1.1") == 1
    assert await channel_store.add(B, "c", "1.1") == 1
    assert await channel_store.add(B, "c", "2.2") == 2
    assert await channel_store.count(A, "c") == 1
    assert await channel_store.remove(A, "c", "1.1") == 0
    assert await channel_store.count(B, "c") == 2
    assert await channel_store.remove(B, "c", "1.1") == 1


async def test_channels_of_one_app_are_separate(channel_store: ChannelStore) -> None:
    assert await channel_store.add(A, "c", "1.1") == 1
    assert await channel_store.add(A, "d", "1.1") == 1
    assert await channel_store.add(A, "d", "2.2") == 2
    assert await channel_store.remove(A, "c", "2.2") == 1  # 2.2 is in d, not c
    assert await channel_store.remove(A, "d", "1.1") == 1
    assert await channel_store.count(A, "c") == 1
    assert await channel_store.count(A, "d") == 1


async def test_occupied_filters_by_prefix_with_counts(channel_store: ChannelStore) -> None:
    await channel_store.add(A, "presence-a", "1.1")
    await channel_store.add(A, "presence-a", "2.2")
    await channel_store.add(A, "presence-b", "1.1")
    await channel_store.add(A, "private-c", "1.1")
    await channel_store.add(A, "chat", "3.3")
    assert await channel_store.occupied(A, "presence-") == {"presence-a": 2, "presence-b": 1}
    assert await channel_store.occupied(A, "private-") == {"private-c": 1}
    assert await channel_store.occupied(A, "") == {
        "presence-a": 2,
        "presence-b": 1,
        "private-c": 1,
        "chat": 1,
    }
    assert await channel_store.occupied(A, "private-encrypted-") == {}


async def test_occupied_prefix_is_literal_and_may_be_a_whole_name(
    channel_store: ChannelStore,
) -> None:
    """Channel names may hold `.`, `-`, `_`, `=`, `@`, `,` and `;`: none of them is a
    wildcard, and a prefix is a plain `startswith`."""
    for name in ("cache-a.b", "cache-aXb", "cache-a.b.c", "cache-a_b", "x=1@y,z;w"):
        await channel_store.add(A, name, "1.1")
    assert await channel_store.occupied(A, "cache-a.") == {"cache-a.b": 1, "cache-a.b.c": 1}
    assert await channel_store.occupied(A, "cache-a.b") == {"cache-a.b": 1, "cache-a.b.c": 1}
    assert await channel_store.occupied(A, "cache-a.b.c") == {"cache-a.b.c": 1}
    assert await channel_store.occupied(A, "cache-a.b.c.") == {}
    assert await channel_store.occupied(A, "x=1@y,z;") == {"x=1@y,z;w": 1}
    assert await channel_store.occupied(A, "cache-a?b") == {}
    assert await channel_store.occupied(A, "cache-*") == {}


async def test_occupied_lists_only_channels_with_subscribers(channel_store: ChannelStore) -> None:
    await channel_store.add(A, "presence-a", "1.1")
    await channel_store.add(A, "presence-b", "1.1")
    await channel_store.add(A, "presence-b", "2.2")
    await channel_store.remove(A, "presence-a", "1.1")
    assert await channel_store.occupied(A, "presence-") == {"presence-b": 2}
    await channel_store.remove(A, "presence-b", "1.1")
    assert await channel_store.occupied(A, "presence-") == {"presence-b": 1}
    await channel_store.remove(A, "presence-b", "2.2")
    assert await channel_store.occupied(A, "presence-") == {}
    await channel_store.remove(A, "presence-never", "1.1")
    assert await channel_store.occupied(A, "") == {}


async def test_occupied_is_per_app(channel_store: ChannelStore) -> None:
    await channel_store.add(A, "presence-a", "1.1")
    await channel_store.add(B, "presence-b", "1.1")
    await channel_store.add(B, "presence-a", "2.2")
    await channel_store.add(B, "presence-a", "3.3")
    assert await channel_store.occupied(A, "") == {"presence-a": 1}
    assert await channel_store.occupied(B, "presence-") == {"presence-a": 2, "presence-b": 1}
    assert await channel_store.occupied(AppId("app-none"), "") == {}
