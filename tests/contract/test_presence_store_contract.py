"""PresenceStore contract (ports.PresenceStore): members per (app, channel); `join` is True only
for a user's first socket in the channel, `leave` only for its last; both are idempotent per
socket id; `members` maps user id -> user_info and `count` counts users, not sockets."""

from __future__ import annotations

from typing import Any

import pytest

from clarion.ports import PresenceStore
from clarion.types import AppId

A, B = AppId("app-a"), AppId("app-b")
ROOM = "presence-room"


async def test_an_empty_channel_has_no_members(presence_store: PresenceStore) -> None:
    assert await presence_store.count(A, ROOM) == 0
    assert await presence_store.members(A, ROOM) == {}


async def test_join_is_true_only_for_the_users_first_socket(presence_store: PresenceStore) -> None:
    assert await presence_store.join(A, ROOM, "42", "1.1", {"name": "Ann"}) is True
    assert await presence_store.count(A, ROOM) == 1
    assert await presence_store.join(A, ROOM, "42", "2.2", {"name": "Ann"}) is False
    assert await presence_store.count(A, ROOM) == 1
    assert await presence_store.join(A, ROOM, "7", "3.3", {"name": "Bob"}) is True
    assert await presence_store.count(A, ROOM) == 2


async def test_join_is_idempotent_per_socket(presence_store: PresenceStore) -> None:
    assert await presence_store.join(A, ROOM, "42", "1.1", None) is True
    assert await presence_store.join(A, ROOM, "42", "1.1", None) is False
    assert await presence_store.count(A, ROOM) == 1
    assert await presence_store.members(A, ROOM) == {"42": None}
    # The socket was recorded once, so leaving it once is the user's last leave.
    assert await presence_store.leave(A, ROOM, "42", "1.1") is True
    assert await presence_store.count(A, ROOM) == 0


async def test_leave_is_true_only_for_the_users_last_socket(presence_store: PresenceStore) -> None:
    await presence_store.join(A, ROOM, "42", "1.1", None)
    await presence_store.join(A, ROOM, "42", "2.2", None)
    await presence_store.join(A, ROOM, "42", "3.3", None)
    assert await presence_store.leave(A, ROOM, "42", "2.2") is False
    assert await presence_store.count(A, ROOM) == 1
    assert await presence_store.leave(A, ROOM, "42", "1.1") is False
    assert await presence_store.count(A, ROOM) == 1
    assert await presence_store.leave(A, ROOM, "42", "3.3") is True
    assert await presence_store.count(A, ROOM) == 0


async def test_leave_is_idempotent_per_socket(presence_store: PresenceStore) -> None:
    await presence_store.join(A, ROOM, "42", "1.1", None)
    await presence_store.join(A, ROOM, "42", "2.2", None)
    assert await presence_store.leave(A, ROOM, "42", "1.1") is False
    # Leaving 1.1 again must not count as 2.2 leaving: the user is still here.
    assert await presence_store.leave(A, ROOM, "42", "1.1") is False
    assert await presence_store.count(A, ROOM) == 1
    assert await presence_store.members(A, ROOM) == {"42": None}
    assert await presence_store.leave(A, ROOM, "42", "2.2") is True
    assert await presence_store.leave(A, ROOM, "42", "2.2") is False
    assert await presence_store.count(A, ROOM) == 0


async def test_leave_of_a_socket_that_never_joined_changes_nothing(
    presence_store: PresenceStore,
) -> None:
    assert await presence_store.leave(A, ROOM, "42", "1.1") is False  # empty channel
    await presence_store.join(A, ROOM, "42", "1.1", {"n": 1})
    assert await presence_store.leave(A, ROOM, "42", "9.9") is False
    assert await presence_store.leave(A, ROOM, "nobody", "9.9") is False
    assert await presence_store.count(A, ROOM) == 1
    assert await presence_store.members(A, ROOM) == {"42": {"n": 1}}


async def test_a_user_who_left_is_first_again_on_rejoin(presence_store: PresenceStore) -> None:
    await presence_store.join(A, ROOM, "42", "1.1", None)
    assert await presence_store.leave(A, ROOM, "42", "1.1") is True
    assert await presence_store.join(A, ROOM, "42", "1.1", None) is True
    assert await presence_store.join(A, ROOM, "42", "2.2", None) is False
    assert await presence_store.count(A, ROOM) == 1


async def test_count_follows_every_change(presence_store: PresenceStore) -> None:
    steps: list[tuple[str, str, str, int]] = [
        ("join", "1", "s1", 1),
        ("join", "2", "s2", 2),
        ("join", "1", "s3", 2),
        ("join", "3", "s4", 3),
        ("leave", "1", "s1", 3),
        ("leave", "2", "s2", 2),
        ("leave", "1", "s3", 1),
        ("join", "2", "s5", 2),
        ("leave", "3", "s4", 1),
        ("leave", "2", "s5", 0),
    ]
    for op, user_id, socket_id, expected in steps:
        if op == "join":
            await presence_store.join(A, ROOM, user_id, socket_id, None)
        else:
            await presence_store.leave(A, ROOM, user_id, socket_id)
        assert await presence_store.count(A, ROOM) == expected, (op, user_id, socket_id)
        assert len(await presence_store.members(A, ROOM)) == expected


@pytest.mark.parametrize(
    "user_info",
    [
        None,
        "plain text",
        12.5,
        True,
        ["a", 1, None],
        {"name": "Zoë ✓", "tags": ["x", "y"], "nested": {"n": 1, "ok": False, "none": None}},
    ],
    ids=["null", "string", "number", "bool", "list", "object"],
)
async def test_members_maps_each_user_to_its_user_info(
    presence_store: PresenceStore, user_info: Any
) -> None:
    await presence_store.join(A, ROOM, "42", "1.1", user_info)
    await presence_store.join(A, ROOM, "7", "2.2", {"name": "Bob"})
    assert await presence_store.members(A, ROOM) == {"42": user_info, "7": {"name": "Bob"}}


async def test_members_keeps_a_user_until_its_last_socket_leaves(
    presence_store: PresenceStore,
) -> None:
    await presence_store.join(A, ROOM, "42", "1.1", {"name": "Ann"})
    await presence_store.join(A, ROOM, "42", "2.2", {"name": "Ann"})
    await presence_store.join(A, ROOM, "7", "3.3", {"name": "Bob"})
    await presence_store.leave(A, ROOM, "42", "1.1")
    assert await presence_store.members(A, ROOM) == {"42": {"name": "Ann"}, "7": {"name": "Bob"}}
    await presence_store.leave(A, ROOM, "42", "2.2")
    assert await presence_store.members(A, ROOM) == {"7": {"name": "Bob"}}


async def test_channels_of_different_apps_are_separate(presence_store: PresenceStore) -> None:
    assert await presence_store.join(A, ROOM, "42", "1.1", {"app": "a"}) is True
    assert await presence_store.join(B, ROOM, "42", "1.1", {"app": "b"}) is True
    assert await presence_store.count(B, ROOM) == 1
    assert await presence_store.members(B, ROOM) == {"42": {"app": "b"}}
    assert await presence_store.leave(A, ROOM, "42", "1.1") is True
    assert await presence_store.count(A, ROOM) == 0
    assert await presence_store.count(B, ROOM) == 1
    assert await presence_store.members(B, ROOM) == {"42": {"app": "b"}}


async def test_channels_of_one_app_are_separate(presence_store: PresenceStore) -> None:
    other = "presence-other"
    assert await presence_store.join(A, ROOM, "42", "1.1", None) is True
    assert await presence_store.join(A, other, "42", "1.1", None) is True
    assert await presence_store.join(A, other, "7", "2.2", None) is True
    assert await presence_store.count(A, ROOM) == 1
    assert await presence_store.count(A, other) == 2
    assert await presence_store.leave(A, other, "42", "1.1") is True
    assert await presence_store.members(A, ROOM) == {"42": None}
    assert await presence_store.members(A, other) == {"7": None}
    # Leaving a channel the socket never joined does not touch the one it did.
    assert await presence_store.leave(A, "presence-third", "42", "1.1") is False
    assert await presence_store.count(A, ROOM) == 1
