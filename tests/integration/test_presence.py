"""Reference 2.4, 2.6: presence rosters, member_added/member_removed, one user on several
sockets, and the member limit."""

from __future__ import annotations

import hashlib
import hmac

from it_support import MAIN, SMALL_ROOM, data_of, presence_data

ROOM = "presence-room"


def api_sign(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


async def test_roster_lists_ids_hash_and_count_including_the_subscriber(server):
    alice = await server.connect()
    roster = await server.subscribe_ok(alice, ROOM, presence_data("1", "Alice"))
    assert roster == {"presence": {"ids": ["1"], "hash": {"1": {"name": "Alice"}}, "count": 1}}

    bob = await server.connect()
    roster = (await server.subscribe_ok(bob, ROOM, presence_data("2", "Bob")))["presence"]
    assert sorted(roster["ids"]) == ["1", "2"]
    assert roster["hash"] == {"1": {"name": "Alice"}, "2": {"name": "Bob"}}
    assert roster["count"] == 2


async def test_numeric_user_id_is_reported_as_a_string(server):
    # Reference 2.6: the docs' own example uses `"user_id": 10`.
    client = await server.connect()
    roster = (await server.subscribe_ok(client, ROOM, {"user_id": 10}))["presence"]
    assert roster["ids"] == ["10"]
    assert roster["count"] == 1
    assert set(roster["hash"]) == {"10"}
    assert roster["hash"]["10"] is None


async def test_member_added_and_removed_go_to_the_others_only(server):
    alice = await server.connect()
    await server.subscribe_ok(alice, ROOM, presence_data("1", "Alice"))
    bob = await server.connect()
    await server.subscribe_ok(bob, ROOM, presence_data("2", "Bob"))

    added = await alice.expect("pusher_internal:member_added", ROOM)
    assert isinstance(added["data"], str)  # double-encoded (reference 1.2)
    assert data_of(added) == {"user_id": "2", "user_info": {"name": "Bob"}}
    # Bob is not told about himself.
    await bob.assert_nothing_pending()

    await bob.unsubscribe(ROOM)
    removed = await alice.expect("pusher_internal:member_removed", ROOM)
    assert data_of(removed) == {"user_id": "2"}
    await bob.assert_nothing_pending()


async def test_member_removed_on_disconnect(server):
    alice = await server.connect()
    await server.subscribe_ok(alice, ROOM, presence_data("1"))
    bob = await server.connect()
    await server.subscribe_ok(bob, ROOM, presence_data("2"))
    await alice.expect("pusher_internal:member_added", ROOM)
    await bob.close()
    removed = await alice.expect("pusher_internal:member_removed", ROOM)
    assert data_of(removed) == {"user_id": "2"}
    users = await server.call(server.sdk().users_info, ROOM)
    assert users == {"users": [{"id": "1"}]}


async def test_same_user_on_two_sockets_counts_once(server):
    alice = await server.connect()
    await server.subscribe_ok(alice, ROOM, presence_data("1", "Alice"))

    bob_phone = await server.connect()
    await server.subscribe_ok(bob_phone, ROOM, presence_data("2", "Bob"))
    await alice.expect("pusher_internal:member_added", ROOM)

    bob_laptop = await server.connect()
    roster = (await server.subscribe_ok(bob_laptop, ROOM, presence_data("2", "Bob")))["presence"]
    assert sorted(roster["ids"]) == ["1", "2"]
    assert roster["count"] == 2
    # No second member_added for Bob's second socket.
    await alice.assert_nothing_pending()
    await bob_phone.assert_nothing_pending()

    info = await server.call(server.sdk().channel_info, ROOM, ["user_count", "subscription_count"])
    assert info["occupied"] is True
    assert info["user_count"] == 2
    users = await server.call(server.sdk().users_info, ROOM)
    assert sorted(u["id"] for u in users["users"]) == ["1", "2"]

    # Bob's first socket leaves: he is still present, so nobody hears of it.
    await bob_phone.unsubscribe(ROOM)
    await bob_phone.assert_nothing_pending()
    await alice.assert_nothing_pending()
    await bob_laptop.assert_nothing_pending()
    # His last socket leaves: now he is gone.
    await bob_laptop.close()
    removed = await alice.expect("pusher_internal:member_removed", ROOM)
    assert data_of(removed) == {"user_id": "2"}


async def test_presence_without_channel_data_is_rejected(server):
    client = await server.connect()
    signed = server.auth(client, ROOM)  # signs socket:channel only
    await client.subscribe(ROOM, signed["auth"])
    frames = await client.until_pong()
    assert frames
    assert not any(f["event"] == "pusher_internal:subscription_succeeded" for f in frames)


async def test_presence_member_limit(server):
    members = []
    for user in ("1", "2"):
        client = await server.connect(SMALL_ROOM)
        await server.subscribe_ok(client, ROOM, presence_data(user), app=SMALL_ROOM)
        members.append(client)
    await members[0].expect("pusher_internal:member_added", ROOM)

    third = await server.connect(SMALL_ROOM)
    await server.subscribe(third, ROOM, presence_data("3"), app=SMALL_ROOM)
    frames = await third.until_pong()
    assert not any(f["event"] == "pusher_internal:subscription_succeeded" for f in frames), frames
    sub_errors = [f for f in frames if f["event"] == "pusher:subscription_error"]
    assert len(sub_errors) == 1, frames
    assert sub_errors[0]["channel"] == ROOM
    # Nobody was told about user 3, and the roster is unchanged.
    for member in members:
        await member.assert_nothing_pending()
    api = server.sdk(SMALL_ROOM)
    users = await server.call(api.users_info, ROOM)
    assert sorted(u["id"] for u in users["users"]) == ["1", "2"]

    # A user already in the room may still open another socket in it.
    again = await server.connect(SMALL_ROOM)
    roster = await server.subscribe_ok(again, ROOM, presence_data("2"), app=SMALL_ROOM)
    assert roster["presence"]["count"] == 2
    # And once someone leaves, user 3 fits.
    await members[0].unsubscribe(ROOM)
    await members[0].assert_nothing_pending()
    await server.subscribe_ok(third, ROOM, presence_data("3"), app=SMALL_ROOM)


async def test_channel_data_is_verified_exactly_as_sent(server):
    # Reference 3.1 / 9.5: node and PHP SDKs send compact JSON, PHP escapes "/" as "\/"; the
    # signature covers those exact bytes, never a re-serialization.
    client = await server.connect()
    channel_data = '{"user_id":"42","user_info":{"url":"https:\\/\\/example.com\\/me"}}'
    auth = f"{MAIN.key}:{api_sign(MAIN.secret, f'{client.socket_id}:{ROOM}:{channel_data}')}"
    await client.subscribe(ROOM, auth, channel_data)
    roster = (await client.expect_succeeded(ROOM))["presence"]
    assert roster["ids"] == ["42"]
    assert roster["hash"] == {"42": {"url": "https://example.com/me"}}
