"""Issue 3 limits (reference 2.6, 3.2, 4, 5.4): rate limits, channels per connection, watchlist
size, and the per-app sizes, each at Pusher's default and as configured."""

from __future__ import annotations

import json

import pytest
from it_support import (
    FEW_CHANNELS,
    MAIN,
    SLOW_EVENTS,
    SMALL_WATCH,
    THROTTLED,
    TIGHT,
    data_of,
    error_code,
    presence_data,
    signed_http,
    watchlist_of,
)
from pusher.errors import PusherBadRequest, PusherBadStatus


async def _pair(server, channel, app):
    sender = await server.connect(app)
    receiver = await server.connect(app)
    await server.subscribe_ok(sender, channel, app=app)
    await server.subscribe_ok(receiver, channel, app=app)
    return sender, receiver


async def _burst(sender, receiver, channel, count):
    """Send `count` client events at once; (events relayed, pusher:error frames the sender got)."""
    for i in range(count):
        await sender.send_event("client-tick", {"i": i}, channel=channel)
    errors = await sender.until_pong()
    relayed = await receiver.until_pong()
    assert all(f["event"] == "client-tick" for f in relayed), relayed
    assert all(f["event"] == "pusher:error" for f in errors), errors
    return [data_of(f)["i"] for f in relayed], errors


# ---- client events per connection per second (reference 4) ----------------------------------


async def test_client_events_over_the_default_10_per_second_are_dropped_with_4301(server):
    sender, receiver = await _pair(server, "private-chat", MAIN)
    relayed, errors = await _burst(sender, receiver, "private-chat", 15)
    # A burst of 10 passes; the bucket refills at 10/s, so at most one more in the meantime.
    assert relayed[:10] == list(range(10))
    assert 10 <= len(relayed) <= 11
    assert len(relayed) + len(errors) == 15
    assert all(error_code(e) == 4301 for e in errors)
    assert "rate limit" in data_of(errors[0])["message"]
    # The socket stays open and subscribed (pusher-js refuses at once on a 43xx *close*).
    await server.trigger("private-chat", "server-side", "still-here")
    assert (await sender.expect("server-side", "private-chat"))["data"] == "still-here"


async def test_the_client_event_limit_is_per_connection_and_configurable(server):
    sender, receiver = await _pair(server, "private-chat", SLOW_EVENTS)
    relayed, errors = await _burst(sender, receiver, "private-chat", 5)
    assert relayed == [0, 1]
    assert [error_code(e) for e in errors] == [4301, 4301, 4301]
    # Another connection of the same app has its own budget.
    relayed, errors = await _burst(receiver, sender, "private-chat", 2)
    assert (relayed, errors) == ([0, 1], [])


async def test_refused_client_events_spend_no_tokens(server):
    # Refused events (not subscribed, public channel) spend no tokens: the budget is for events
    # that are relayed.
    sender, receiver = await _pair(server, "private-chat", SLOW_EVENTS)
    await server.subscribe_ok(sender, "news", app=SLOW_EVENTS)
    for _ in range(3):
        await sender.send_event("client-x", {}, channel="news")
    frames = await sender.until_pong()
    assert [error_code(f) for f in frames] == [None, None, None], frames
    relayed, errors = await _burst(sender, receiver, "private-chat", 2)
    assert (relayed, errors) == ([0, 1], [])


# ---- HTTP API requests per second per app --------------------------------------------------


async def test_api_requests_over_the_apps_rate_get_429(server):
    api = server.sdk(THROTTLED)
    for _ in range(3):
        assert await server.call(api.trigger, "news", "e", "x") == {}
    with pytest.raises(PusherBadStatus) as refused:
        await server.call(api.channels_info)
    assert str(refused.value).startswith("429")
    status, body = await signed_http(
        server.port, "GET", f"/apps/{THROTTLED.id}/channels", app=THROTTLED
    )
    assert status == 429
    assert json.loads(body) == {"error": "Too many requests: this app may make 3 per second"}
    # Per app: another app is not affected, and the default is unlimited.
    for _ in range(20):
        assert await server.call(server.sdk().channels_info) == {"channels": {}}


async def test_unauthenticated_requests_do_not_spend_the_apps_budget(server):
    for _ in range(5):
        status, _ = await signed_http(
            server.port, "GET", f"/apps/{THROTTLED.id}/channels", app=THROTTLED, secret="bad"
        )
        assert status == 401
    assert await server.call(server.sdk(THROTTLED).channels_info) == {"channels": {}}


# ---- channels per connection ---------------------------------------------------------------


async def test_channels_per_connection_limit(server):
    client = await server.connect(FEW_CHANNELS)
    await server.subscribe_ok(client, "a", app=FEW_CHANNELS)
    await server.subscribe_ok(client, "private-b", app=FEW_CHANNELS)
    await client.subscribe("c")
    frames = await client.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error", "pusher:subscription_error"], frames
    assert error_code(frames[0]) is None
    assert frames[1]["channel"] == "c"
    assert data_of(frames[1])["type"] == "LimitReached"
    assert data_of(frames[1])["status"] == 4100
    # Not subscribed to c: its events do not arrive, and it is not occupied.
    api = server.sdk(FEW_CHANNELS)
    await server.call(api.trigger, "c", "e", "x")
    await client.assert_nothing_pending()
    assert set((await server.call(api.channels_info))["channels"]) == {"a", "private-b"}
    # Leaving one makes room.
    await client.unsubscribe("a")
    await server.subscribe_ok(client, "c", app=FEW_CHANNELS)
    # The limit is per connection.
    other = await server.connect(FEW_CHANNELS)
    await server.subscribe_ok(other, "a", app=FEW_CHANNELS)
    await server.subscribe_ok(other, "c", app=FEW_CHANNELS)


async def test_the_own_server_to_user_channel_does_not_count_against_the_limit(server):
    # pusher-js subscribes to it by itself after every sign-in.
    client = await server.connect(FEW_CHANNELS)
    await server.signin_ok(client, {"id": "1"}, app=FEW_CHANNELS)
    await client.subscribe("#server-to-user-1")
    await client.expect_succeeded("#server-to-user-1")
    await server.subscribe_ok(client, "a", app=FEW_CHANNELS)
    await server.subscribe_ok(client, "b", app=FEW_CHANNELS)
    await client.subscribe("c")
    frames = await client.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error", "pusher:subscription_error"], frames


async def test_resubscribing_at_the_limit_is_an_existing_subscription_not_a_limit(server):
    client = await server.connect(FEW_CHANNELS)
    await server.subscribe_ok(client, "a", app=FEW_CHANNELS)
    await server.subscribe_ok(client, "b", app=FEW_CHANNELS)
    await client.subscribe("a")
    frames = await client.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error"], frames
    assert "Existing subscription" in data_of(frames[0])["message"]


# ---- watchlist size (reference 3.2) --------------------------------------------------------


async def test_watchlist_over_the_default_100_ids_signs_in_with_4302(server):
    online = await server.connect()
    await server.signin_ok(online, {"id": "100"})
    late = await server.connect()
    await server.signin_ok(late, {"id": "late-0"})

    watcher = await server.connect()
    ids = [str(i) for i in range(101)]  # "100" is the 101st
    await server.signin_ok(watcher, {"id": "w", "watchlist": ids})
    frames = await watcher.until_pong()
    assert sorted(f["event"] for f in frames) == [
        "pusher:error",
        "pusher_internal:watchlist_events",
    ], frames
    [error] = [f for f in frames if f["event"] == "pusher:error"]
    assert error_code(error) == 4302
    [events] = [f for f in frames if f["event"] != "pusher:error"]
    assert watchlist_of(events) == [("online", [])]  # "100" is online but not watched


async def test_watchlist_limit_is_configurable_and_only_the_first_ids_are_watched(server):
    for user in ("b", "c"):
        await server.signin_ok(await server.connect(SMALL_WATCH), {"id": user}, app=SMALL_WATCH)
    watcher = await server.connect(SMALL_WATCH)
    user_data = {"id": "w", "watchlist": ["a", "b", "b", "c", "d"]}  # deduplicated: a, b, c, d
    await server.signin_ok(watcher, user_data, app=SMALL_WATCH)
    frames = await watcher.until_pong()
    assert sorted(f["event"] for f in frames) == [
        "pusher:error",
        "pusher_internal:watchlist_events",
    ], frames
    assert [error_code(f) for f in frames if f["event"] == "pusher:error"] == [4302]
    [events] = [f for f in frames if f["event"] != "pusher:error"]
    assert watchlist_of(events) == [("online", ["b"])]
    # d is beyond the limit: never reported; a is within it.
    await server.signin_ok(await server.connect(SMALL_WATCH), {"id": "d"}, app=SMALL_WATCH)
    await watcher.assert_nothing_pending()
    await server.signin_ok(await server.connect(SMALL_WATCH), {"id": "a"}, app=SMALL_WATCH)
    assert watchlist_of(await watcher.expect("pusher_internal:watchlist_events")) == [
        ("online", ["a"])
    ]


async def test_watchlist_at_the_limit_has_no_4302(server):
    watcher = await server.connect(SMALL_WATCH)
    await server.signin_ok(watcher, {"id": "w", "watchlist": ["a", "b", "a"]}, app=SMALL_WATCH)
    frames = await watcher.until_pong()
    assert [f["event"] for f in frames] == ["pusher_internal:watchlist_events"], frames


# ---- event name length, payload, channels per trigger, batch size (reference 5.4) ------------


async def _trigger_status(server, app, payload, path="events"):
    body = json.dumps(payload).encode()
    status, response = await signed_http(server.port, "POST", f"/apps/{app.id}/{path}", body, app)
    return status, response


async def test_http_event_name_over_200_characters_is_400(server):
    client = await server.connect()
    await server.subscribe_ok(client, "news")
    payload = {"name": "e" * 201, "channels": ["news"], "data": "x"}
    status, response = await _trigger_status(server, MAIN, payload)
    assert status == 400, response
    payload["name"] = "e" * 200
    assert (await _trigger_status(server, MAIN, payload))[0] == 200
    assert (await client.expect("e" * 200, "news"))["data"] == "x"


async def test_client_event_name_over_200_characters_is_refused(server):
    sender, receiver = await _pair(server, "private-chat", MAIN)
    await sender.send_event("client-" + "x" * 194, {}, channel="private-chat")  # 201
    frames = await sender.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error"], frames
    await receiver.assert_nothing_pending()
    await sender.send_event("client-" + "x" * 193, {}, channel="private-chat")  # 200
    await receiver.expect("client-" + "x" * 193, "private-chat")


async def test_configured_http_limits(server):
    client = await server.connect(TIGHT)
    await server.subscribe_ok(client, "news", app=TIGHT)
    ok = {"name": "e" * 20, "channels": ["news", "other"], "data": "x" * 1024}
    assert (await _trigger_status(server, TIGHT, ok))[0] == 200
    assert (await client.expect("e" * 20, "news"))["data"] == "x" * 1024
    for change, status in [
        ({"data": "x" * 1025}, 413),
        ({"name": "e" * 21}, 400),
        ({"channels": ["news", "a", "b"]}, 400),
    ]:
        code, response = await _trigger_status(server, TIGHT, {**ok, **change})
        assert code == status, (change, response)
    batch = [{"channel": "news", "name": f"b{i}", "data": "x"} for i in range(3)]
    assert (await _trigger_status(server, TIGHT, {"batch": batch}, "batch_events"))[0] == 400
    assert (await _trigger_status(server, TIGHT, {"batch": batch[:2]}, "batch_events"))[0] == 200
    await client.expect("b0", "news")
    await client.expect("b1", "news")
    await client.assert_nothing_pending()


async def test_configured_client_event_limits(server):
    sender, receiver = await _pair(server, "private-chat", TIGHT)
    await sender.send_event("client-" + "n" * 14, "x" * 1100, channel="private-chat")
    await sender.send_event("client-" + "n" * 14, "ok", channel="private-chat")  # 21 chars
    frames = await sender.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error", "pusher:error"], frames
    await receiver.assert_nothing_pending()
    await sender.send_event("client-" + "n" * 13, "x" * 1000, channel="private-chat")
    await receiver.expect("client-" + "n" * 13, "private-chat")


@pytest.mark.parametrize(
    ("app", "member"),
    [
        pytest.param(MAIN, {"user_id": "u" * 129}, id="default-id-129"),
        pytest.param(MAIN, {"user_id": "1", "user_info": {"x": "y" * 1100}}, id="default-info"),
        pytest.param(TIGHT, {"user_id": "123456"}, id="configured-id-6"),
        pytest.param(TIGHT, {"user_id": "1", "user_info": {"x": "y" * 1030}}, id="configured-info"),
    ],
)
async def test_presence_member_over_the_size_limits_is_refused(server, app, member):
    client = await server.connect(app)
    await server.subscribe(client, "presence-room", member, app=app)
    frames = await client.until_pong()
    errors = [f for f in frames if f["event"] == "pusher:subscription_error"]
    assert len(errors) == 1, frames
    assert data_of(errors[0])["type"] == "LimitReached"
    assert not any(f["event"] == "pusher_internal:subscription_succeeded" for f in frames)
    assert await server.call(server.sdk(app).channels_info) == {"channels": {}}


async def test_presence_member_at_the_size_limits_is_accepted(server):
    client = await server.connect(TIGHT)
    info = {"x": "y" * (1024 - len('{"x":""}'))}  # exactly 1 KB as compact JSON
    roster = await server.subscribe_ok(client, "presence-room", presence_data("12345"), app=TIGHT)
    assert roster["presence"]["ids"] == ["12345"]
    other = await server.connect(TIGHT)
    await server.subscribe_ok(
        other, "presence-room", {"user_id": "2", "user_info": info}, app=TIGHT
    )


# ---- encrypted channels (reference 2.9) -----------------------------------------------------


async def test_client_events_on_encrypted_channels_are_refused(server):
    sender, receiver = await _pair(server, "private-encrypted-vault", MAIN)
    await sender.send_event(
        "client-x", {"nonce": "n", "ciphertext": "c"}, "private-encrypted-vault"
    )
    frames = await sender.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error"], frames
    assert data_of(frames[0]) == {
        "code": None,
        "message": "Client event rejected - only supported on private and presence channels",
    }
    await receiver.assert_nothing_pending()


async def test_trigger_naming_an_encrypted_channel_and_another_is_400(server):
    with pytest.raises((PusherBadRequest, ValueError)):
        await server.call(server.sdk().trigger, ["private-encrypted-a", "news"], "e", "x")
    payload = {"name": "e", "channels": ["news", "private-encrypted-a"], "data": "x"}
    assert (await _trigger_status(server, MAIN, payload))[0] == 400
