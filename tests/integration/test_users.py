"""Reference 2.10, 3.2-3.4: sign-in, server-to-user events, watchlists, terminating a user's
connections, and the authorized-connections timeout."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from it_support import (
    AUTH_REQUIRED,
    MAIN,
    TIMEOUT,
    UNIT,
    data_of,
    error_code,
    presence_data,
    signed_http,
    user_auth,
    watchlist_of,
)
from pusher.errors import PusherBadAuth
from websockets.exceptions import ConnectionClosed

USER_CHANNEL = "#server-to-user-"


# ---- sign-in ------------------------------------------------------------------------------


async def test_signin_success_echoes_the_user_data_string(server):
    client = await server.connect()
    msg = await server.signin_ok(client, {"id": "42", "user_info": {"name": "Ann"}})
    # data is a JSON string holding {"user_data": <the exact string sent>}.
    assert json.loads(json.loads(msg["data"])["user_data"]) == {
        "id": "42",
        "user_info": {"name": "Ann"},
    }
    # No watchlist, no watchlist events.
    await client.assert_nothing_pending()


async def test_signin_with_a_bad_signature_is_4009_and_the_socket_stays_open(server):
    client = await server.connect()
    other = await server.connect()
    # Signed for another socket: a replayed signature must not work.
    signed = server.sdk().authenticate_user(other.socket_id, {"id": "42"})
    await client.send_event("pusher:signin", signed)
    frames = await client.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error"], frames
    assert error_code(frames[0]) == 4009
    expected = f"{client.socket_id}::user::{signed['user_data']}"
    assert data_of(frames[0])["message"] == (
        f"Invalid signature: Expected HMAC SHA256 hex digest of {expected}, "
        f"but got {signed['auth']}"
    )
    # Still open, not signed in (no server-to-user events), and a good sign-in works after.
    await server.call(server.sdk().send_to_user, "42", "hello", {"n": 1})
    await client.assert_nothing_pending()
    await server.signin_ok(client, {"id": "42"})


@pytest.mark.parametrize(
    "user_data",
    [
        pytest.param(None, id="missing-user-data"),
        pytest.param("not json", id="not-json"),
        pytest.param('["42"]', id="array"),
        pytest.param('{"user_info": {}}', id="no-id"),
        pytest.param('{"id": ""}', id="empty-id"),
        pytest.param('{"id": 42}', id="numeric-id"),
        pytest.param(json.dumps({"id": "x" * 129}), id="id-over-128"),
        pytest.param(json.dumps({"id": "1", "user_info": {"x": "y" * 1100}}), id="info-over-1kb"),
        pytest.param('{"id": "1", "watchlist": "2"}', id="watchlist-not-a-list"),
    ],
)
async def test_bad_signin_payloads_are_4009_without_closing(server, user_data):
    client = await server.connect()
    data: dict[str, str] = {}
    if user_data is not None:
        data = {"auth": user_auth(MAIN, client.socket_id, user_data), "user_data": user_data}
    else:
        data = {"auth": user_auth(MAIN, client.socket_id, "")}
    await client.send_event("pusher:signin", data)
    frames = await client.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error"], frames
    assert error_code(frames[0]) == 4009
    await server.signin_ok(client, {"id": "1"})


async def test_signin_without_auth_is_4009(server):
    client = await server.connect()
    await client.send_event("pusher:signin", {"user_data": '{"id": "1"}'})
    frames = await client.until_pong()
    assert [(f["event"], error_code(f)) for f in frames] == [("pusher:error", 4009)], frames


async def test_signing_in_again_as_the_same_user_is_accepted_but_not_as_another(server):
    client = await server.connect()
    await server.signin_ok(client, {"id": "1"})
    await server.signin_ok(client, {"id": "1", "user_info": {"again": True}})
    await server.signin(client, {"id": "2"})
    frames = await client.until_pong()
    assert [(f["event"], error_code(f)) for f in frames] == [("pusher:error", 4009)], frames
    # Still user 1, not user 2.
    await server.call(server.sdk().send_to_user, "2", "for-two", "x")
    await client.assert_nothing_pending()
    await server.call(server.sdk().send_to_user, "1", "for-one", "y")
    assert (await client.expect("for-one"))["data"] == "y"


async def test_presence_subscribe_without_channel_data_uses_the_signed_in_user(server):
    watcher = await server.connect()
    await server.subscribe_ok(watcher, "presence-room", presence_data("0"))
    client = await server.connect()
    await server.signin_ok(client, {"id": "7", "user_info": {"name": "Seven"}})
    signed = server.auth(client, "presence-room")  # over socket_id:channel only
    assert "channel_data" not in signed
    await client.subscribe("presence-room", signed["auth"])
    roster = (await client.expect_succeeded("presence-room"))["presence"]
    assert sorted(roster["ids"]) == ["0", "7"]
    assert roster["hash"]["7"] == {"name": "Seven"}
    added = await watcher.expect("pusher_internal:member_added", "presence-room")
    assert data_of(added) == {"user_id": "7", "user_info": {"name": "Seven"}}


# ---- server-to-user (reference 2.10) -------------------------------------------------------


async def test_send_to_user_reaches_every_socket_signed_in_as_that_user(server):
    phone = await server.connect()
    laptop = await server.connect()
    someone_else = await server.connect()
    anonymous = await server.connect()
    await server.signin_ok(phone, {"id": "1"})
    await server.signin_ok(laptop, {"id": "1"})
    await server.signin_ok(someone_else, {"id": "2"})
    # pusher-js subscribes to its own channel after signin; the laptop does, the phone not.
    await laptop.subscribe(f"{USER_CHANNEL}1")
    await laptop.expect_succeeded(f"{USER_CHANNEL}1")

    assert await server.call(server.sdk().send_to_user, "1", "notice", {"n": 1}) == {}
    for client in (phone, laptop):
        msg = await client.expect("notice", f"{USER_CHANNEL}1")
        assert set(msg) == {"event", "channel", "data"}, msg
        assert data_of(msg) == {"n": 1}
        await client.assert_nothing_pending()
    for client in (someone_else, anonymous):
        await client.assert_nothing_pending()


async def test_send_to_user_honours_socket_id_exclusion(server):
    phone = await server.connect()
    laptop = await server.connect()
    await server.signin_ok(phone, {"id": "1"})
    await server.signin_ok(laptop, {"id": "1"})
    await server.trigger(f"{USER_CHANNEL}1", "sync", "x", socket_id=phone.socket_id)
    assert (await laptop.expect("sync", f"{USER_CHANNEL}1"))["data"] == "x"
    await phone.assert_nothing_pending()


async def test_server_to_user_channel_subscription_needs_a_signin_as_that_user(server):
    stranger = await server.connect()
    await stranger.subscribe(f"{USER_CHANNEL}1")
    signed_in = await server.connect()
    await server.signin_ok(signed_in, {"id": "2"})
    await signed_in.subscribe(f"{USER_CHANNEL}1")
    for client in (stranger, signed_in):
        frames = await client.until_pong()
        errors = [f for f in frames if f["event"] == "pusher:subscription_error"]
        assert len(errors) == 1, frames
        assert errors[0]["channel"] == f"{USER_CHANNEL}1"
        assert data_of(errors[0])["type"] == "AuthError"
        assert data_of(errors[0])["status"] == 401
        assert not any(f["event"] == "pusher_internal:subscription_succeeded" for f in frames)
    # Neither gets user 1's events.
    await server.call(server.sdk().send_to_user, "1", "private-note", "x")
    await stranger.assert_nothing_pending()
    await signed_in.assert_nothing_pending()


async def test_server_to_user_channels_are_not_listed_as_channels(server):
    client = await server.connect()
    await server.signin_ok(client, {"id": "1"})
    await client.subscribe(f"{USER_CHANNEL}1")
    await client.expect_succeeded(f"{USER_CHANNEL}1")
    await server.call(server.sdk().send_to_user, "1", "e", "x")
    await client.expect("e", f"{USER_CHANNEL}1")
    assert await server.call(server.sdk().channels_info) == {"channels": {}}
    # Unsubscribing does not sign out: events still come.
    await client.unsubscribe(f"{USER_CHANNEL}1")
    await server.call(server.sdk().send_to_user, "1", "e2", "y")
    assert (await client.expect("e2", f"{USER_CHANNEL}1"))["data"] == "y"


# ---- watchlists (reference 3.3) ------------------------------------------------------------


async def test_signin_gets_the_online_members_of_its_watchlist_in_watchlist_order(server):
    for user in ("4", "3", "8"):
        await server.signin_ok(await server.connect(), {"id": user})
    # A presence member that never signed in is not "online".
    member = await server.connect()
    await server.subscribe_ok(member, "presence-room", presence_data("2"))

    watcher = await server.connect()
    await server.signin_ok(watcher, {"id": "1", "watchlist": ["2", "3", 4, "3", "5"]})
    msg = await watcher.expect("pusher_internal:watchlist_events")
    assert watchlist_of(msg) == [("online", ["3", "4"])]
    await watcher.assert_nothing_pending()


async def test_watchlist_with_nobody_online_still_gets_an_empty_online_list(server):
    watcher = await server.connect()
    await server.signin_ok(watcher, {"id": "1", "watchlist": ["9"]})
    msg = await watcher.expect("pusher_internal:watchlist_events")
    assert watchlist_of(msg) == [("online", [])]
    await watcher.assert_nothing_pending()


async def test_watchers_hear_online_at_the_first_socket_and_offline_at_the_last(server):
    watcher = await server.connect()
    other_watcher = await server.connect()
    bystander = await server.connect()
    await server.signin_ok(watcher, {"id": "1", "watchlist": ["2"]})
    await server.signin_ok(other_watcher, {"id": "3", "watchlist": ["5", "2"]})
    await server.signin_ok(bystander, {"id": "4", "watchlist": ["5"]})
    for client in (watcher, other_watcher, bystander):
        await client.expect("pusher_internal:watchlist_events")

    phone = await server.connect()
    await server.signin_ok(phone, {"id": "2"})
    for client in (watcher, other_watcher):
        msg = await client.expect("pusher_internal:watchlist_events")
        assert watchlist_of(msg) == [("online", ["2"])]
    await bystander.assert_nothing_pending()

    # A second socket of user 2: already online, nothing new.
    laptop = await server.connect()
    await server.signin_ok(laptop, {"id": "2"})
    await watcher.assert_nothing_pending()
    # Signing the same socket in again is not a new arrival either.
    await server.signin_ok(laptop, {"id": "2"})
    await watcher.assert_nothing_pending()

    await phone.close()
    await watcher.assert_nothing_pending()  # the laptop is still signed in
    await laptop.close()
    for client in (watcher, other_watcher):
        msg = await client.expect("pusher_internal:watchlist_events")
        assert watchlist_of(msg) == [("offline", ["2"])]
    await bystander.assert_nothing_pending()


async def test_a_watcher_that_left_hears_nothing_more(server):
    watcher = await server.connect()
    await server.signin_ok(watcher, {"id": "1", "watchlist": ["2"]})
    await watcher.expect("pusher_internal:watchlist_events")
    await watcher.close()
    spy = await server.connect()
    await server.signin_ok(spy, {"id": "3", "watchlist": ["2"]})
    await spy.expect("pusher_internal:watchlist_events")
    await server.signin_ok(await server.connect(), {"id": "2"})
    msg = await spy.expect("pusher_internal:watchlist_events")
    assert watchlist_of(msg) == [("online", ["2"])]


# ---- terminate_connections (reference 3.4) -------------------------------------------------


async def _expect_terminated(client):
    code, frames = await client.closed()
    assert code == 4009
    assert [f["event"] for f in frames] == ["pusher:error"], frames
    assert data_of(frames[0]) == {"code": 4009, "message": "Connection terminated by the app"}


async def test_sdk_terminate_user_connections_closes_every_signed_in_socket_of_the_user(server):
    phone = await server.connect()
    laptop = await server.connect()
    await server.signin_ok(phone, {"id": "1"})
    await server.signin_ok(laptop, {"id": "1"})
    other_user = await server.connect()
    await server.signin_ok(other_user, {"id": "2", "watchlist": ["1"]})
    assert watchlist_of(await other_user.expect("pusher_internal:watchlist_events")) == [
        ("online", ["1"])
    ]
    # In a presence channel as user 1, but never signed in: not user 1's connection.
    lookalike = await server.connect()
    await server.subscribe_ok(lookalike, "presence-room", presence_data("1"))

    # pusher-http-python 3.3 posts to /users/1/terminate_connections (no /apps/{id}).
    assert await server.call(server.sdk().terminate_user_connections, "1") == {}
    await _expect_terminated(phone)
    await _expect_terminated(laptop)
    # Its watchers see it go offline, and the others are untouched.
    msg = await other_user.expect("pusher_internal:watchlist_events")
    assert watchlist_of(msg) == [("offline", ["1"])]
    await other_user.assert_nothing_pending()
    await lookalike.assert_nothing_pending()
    await server.trigger("presence-room", "still", "here")
    assert (await lookalike.expect("still", "presence-room"))["data"] == "here"


async def test_terminate_through_the_apps_path(server):
    client = await server.connect()
    await server.signin_ok(client, {"id": "u-7"})
    bystander = await server.connect()
    await server.signin_ok(bystander, {"id": "u-8"})
    path = f"/apps/{MAIN.id}/users/u-7/terminate_connections"
    status, body = await signed_http(server.port, "POST", path, b"{}")
    assert (status, json.loads(body)) == (200, {})
    await _expect_terminated(client)
    await bystander.assert_nothing_pending()


async def test_terminate_of_a_user_with_no_connections_is_200(server):
    path = f"/apps/{MAIN.id}/users/nobody/terminate_connections"
    status, body = await signed_http(server.port, "POST", path, b"{}")
    assert (status, json.loads(body)) == (200, {})
    assert await server.call(server.sdk().terminate_user_connections, "nobody") == {}


async def test_terminate_with_a_bad_signature_is_401_and_closes_nothing(server):
    client = await server.connect()
    await server.signin_ok(client, {"id": "1"})
    with pytest.raises(PusherBadAuth):
        await server.call(server.sdk(secret="wrong").terminate_user_connections, "1")
    path = f"/apps/{MAIN.id}/users/1/terminate_connections"
    status, _ = await signed_http(server.port, "POST", path, b"{}", secret="wrong")
    assert status == 401
    await client.assert_nothing_pending()


async def test_terminate_only_reaches_the_signing_apps_users(server):
    from it_support import SMALL_ROOM

    mine = await server.connect()
    await server.signin_ok(mine, {"id": "1"})
    theirs = await server.connect(SMALL_ROOM)
    await server.signin_ok(theirs, {"id": "1"}, app=SMALL_ROOM)
    assert await server.call(server.sdk(SMALL_ROOM).terminate_user_connections, "1") == {}
    await _expect_terminated(theirs)
    await mine.assert_nothing_pending()


# ---- authorized connections (reference 3.2, enable_user_authentication) ---------------------


async def _ping_until_closed(client):
    """Keep talking (pusher-js pings every activity_timeout) until the server closes the socket;
    the frames other than pongs, and the close code."""
    frames = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            await client.send_event("pusher:ping")
            while (msg := await client.recv())["event"] != "pusher:pong":
                frames.append(msg)
    code, rest = await client.closed(within=0.5 * UNIT)
    return code, frames + rest


async def test_unauthorized_sockets_are_closed_with_4009_after_the_timeout(server):
    # One server, one wait (1 s timeout, checked by the 1 s sweep) for every case.
    loop = asyncio.get_running_loop()
    # Talking does not count as authorizing, nor does it postpone the deadline.
    chatty = await server.connect(AUTH_REQUIRED)
    chatter = asyncio.create_task(_ping_until_closed(chatty))
    signed_in = await server.connect(AUTH_REQUIRED)
    await server.signin_ok(signed_in, {"id": "1"}, app=AUTH_REQUIRED)
    private = await server.connect(AUTH_REQUIRED)
    await server.subscribe_ok(private, "private-x", app=AUTH_REQUIRED)
    presence = await server.connect(AUTH_REQUIRED)
    await server.subscribe_ok(presence, "presence-x", presence_data("2"), app=AUTH_REQUIRED)
    encrypted = await server.connect(AUTH_REQUIRED)
    await server.subscribe_ok(encrypted, "private-encrypted-x", app=AUTH_REQUIRED)
    # Authorized within the timeout, then left the channel: it did authorize in time.
    was_private = await server.connect(AUTH_REQUIRED)
    await server.subscribe_ok(was_private, "private-y", app=AUTH_REQUIRED)
    await was_private.unsubscribe("private-y")
    public_only = await server.connect(AUTH_REQUIRED)
    await server.subscribe_ok(public_only, "news", app=AUTH_REQUIRED)
    # Opened last: when it is closed, every socket above had its own deadline checked.
    silent = await server.connect(AUTH_REQUIRED)
    started = loop.time()
    # Another app's sockets are never subject to it.
    elsewhere = await server.connect(MAIN)

    for client in (public_only, silent):
        code, frames = await client.closed(within=TIMEOUT)
        assert code == 4009
        assert [f["event"] for f in frames] == ["pusher:error"], frames
        assert data_of(frames[0]) == {
            "code": 4009,
            "message": "Connection not authorized within timeout",
        }
    assert loop.time() - started >= 1 - 0.1 * UNIT
    async with asyncio.timeout(TIMEOUT):
        code, frames = await chatter
    assert code == 4009, "a socket that kept pinging was never closed"
    assert [(f["event"], error_code(f)) for f in frames] == [("pusher:error", 4009)], frames
    for client in (signed_in, private, presence, encrypted, elsewhere):
        await client.assert_nothing_pending()
    # Reference 3.2 (soketi): the timer is cleared by the first private subscription.
    await was_private.assert_nothing_pending()


async def test_a_user_watching_itself_hears_of_its_own_arrival_once(server):
    client = await server.connect()
    await server.signin_ok(client, {"id": "1", "watchlist": ["1", "2"]})
    frames = await client.until_pong()
    entries = [entry for frame in frames for entry in watchlist_of(frame)]
    online = [user for name, users in entries if name == "online" for user in users]
    assert online == ["1"], entries


async def test_batch_events_reach_users_too(server):
    client = await server.connect()
    await server.signin_ok(client, {"id": "1"})
    batch = [
        {"channel": f"{USER_CHANNEL}1", "name": "first", "data": "a"},
        {"channel": f"{USER_CHANNEL}2", "name": "not-mine", "data": "b"},
        {"channel": f"{USER_CHANNEL}1", "name": "second", "data": "c"},
    ]
    assert await server.call(server.sdk().trigger_batch, batch) == {}
    assert (await client.expect("first", f"{USER_CHANNEL}1"))["data"] == "a"
    assert (await client.expect("second", f"{USER_CHANNEL}1"))["data"] == "c"
    await client.assert_nothing_pending()


async def test_a_terminated_user_leaves_its_presence_channels(server):
    stayer = await server.connect()
    await server.subscribe_ok(stayer, "presence-room", presence_data("2"))
    leaver = await server.connect()
    await server.signin_ok(leaver, {"id": "1", "user_info": {"name": "One"}})
    signed = server.auth(leaver, "presence-room")
    await leaver.subscribe("presence-room", signed["auth"])
    await leaver.expect_succeeded("presence-room")
    await stayer.expect("pusher_internal:member_added", "presence-room")
    await server.call(server.sdk().terminate_user_connections, "1")
    await _expect_terminated(leaver)
    removed = await stayer.expect("pusher_internal:member_removed", "presence-room")
    assert data_of(removed) == {"user_id": "1"}
    assert await server.call(server.sdk().users_info, "presence-room") == {"users": [{"id": "2"}]}
