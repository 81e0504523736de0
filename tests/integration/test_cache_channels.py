"""Reference 2.8: cache channels keep the last HTTP-triggered event for new subscribers."""

from __future__ import annotations

import asyncio

import pytest
from it_support import MAIN, SHORT_CACHE, UNIT, presence_data, sdk_request
from pusher.errors import PusherBadRequest

KINDS = [
    pytest.param("cache-news", id="public"),
    pytest.param("private-cache-news", id="private"),
    pytest.param("presence-cache-news", id="presence"),
    pytest.param("private-encrypted-cache-news", id="encrypted"),
]


async def _join(server, channel, user="1", app=MAIN):
    client = await server.connect(app)
    custom = presence_data(user) if channel.startswith("presence-") else None
    await server.subscribe_ok(client, channel, custom, app=app)
    return client


@pytest.mark.parametrize("channel", KINDS)
async def test_first_subscriber_gets_a_cache_miss_later_ones_the_last_event(server, channel):
    first = await _join(server, channel, "1")
    assert await first.recv() == {"event": "pusher:cache_miss", "channel": channel}

    await server.trigger(channel, "old", {"v": 1})
    await server.trigger(channel, "score", {"v": 2})
    await first.expect("old", channel)
    live = await first.expect("score", channel)

    second = await _join(server, channel, "2")
    cached = await second.recv()
    # The last event only, as a plain channel event, byte for byte what the live one carried
    # (for the encrypted kind that is the SDK's ciphertext: the server never decrypts).
    assert cached == {"event": "score", "channel": channel, "data": live["data"]}
    await second.assert_nothing_pending()


async def test_a_cache_miss_comes_after_subscription_succeeded_for_each_subscriber(server):
    clients = [await server.connect() for _ in range(3)]
    for client in clients:
        await client.subscribe("cache-empty")
    for client in clients:
        await client.expect_succeeded("cache-empty")
        assert await client.recv() == {"event": "pusher:cache_miss", "channel": "cache-empty"}
        await client.assert_nothing_pending()


async def test_client_events_are_never_cached(server):
    sender = await _join(server, "private-cache-chat")
    await sender.expect("pusher:cache_miss", "private-cache-chat")
    await sender.send_event("client-typing", {"who": "me"}, channel="private-cache-chat")
    await sender.assert_nothing_pending()  # accepted: no pusher:error
    late = await _join(server, "private-cache-chat")
    assert await late.recv() == {"event": "pusher:cache_miss", "channel": "private-cache-chat"}


async def test_events_on_ordinary_channels_are_not_cached_and_send_no_cache_miss(server):
    await server.trigger("news", "headline", "x")
    client = await _join(server, "news")
    await client.assert_nothing_pending()


async def test_cache_is_per_channel_and_per_app(server):
    from it_support import COUNTED

    await server.trigger("cache-a", "ev", "for-a")
    other_channel = await _join(server, "cache-b")
    assert (await other_channel.recv())["event"] == "pusher:cache_miss"
    other_app = await server.connect(COUNTED)
    await server.subscribe(other_app, "cache-a", app=COUNTED)
    await other_app.expect_succeeded("cache-a")
    assert (await other_app.recv())["event"] == "pusher:cache_miss"


async def test_excluded_socket_still_leaves_the_event_in_the_cache(server):
    subscriber = await _join(server, "cache-x")
    await subscriber.expect("pusher:cache_miss", "cache-x")
    await server.trigger("cache-x", "ev", "d", socket_id=subscriber.socket_id)
    await subscriber.assert_nothing_pending()
    late = await _join(server, "cache-x")
    assert await late.recv() == {"event": "ev", "channel": "cache-x", "data": "d"}


async def test_batch_triggers_fill_the_cache_too(server):
    await server.call(
        server.sdk().trigger_batch,
        [
            {"channel": "cache-a", "name": "first", "data": "1"},
            {"channel": "cache-a", "name": "second", "data": "2"},
        ],
    )
    late = await _join(server, "cache-a")
    assert await late.recv() == {"event": "second", "channel": "cache-a", "data": "2"}


# ---- GET /channels/{c}?info=cache ---------------------------------------------------------


async def test_channel_info_cache_reports_event_data_and_ttl(server):
    api = server.sdk()
    empty = await server.call(api.channel_info, "cache-stats", ["cache"])
    assert empty == {"occupied": False, "cache": None}

    await server.trigger("cache-stats", "tick", {"n": 5})
    info = await server.call(api.channel_info, "cache-stats", ["cache"])
    assert info["occupied"] is False
    assert info["cache"]["event"] == "tick"
    assert info["cache"]["data"] == '{"n": 5}'  # the data string exactly as triggered
    # cache_ttl_seconds defaults to 30 minutes.
    assert 1790 <= info["cache"]["ttl"] <= 1800

    client = await _join(server, "cache-stats")
    await client.expect("tick", "cache-stats")
    both = await server.call(api.channel_info, "cache-stats", ["cache", "subscription_count"])
    assert both["occupied"] is True
    assert both["subscription_count"] == 1
    assert both["cache"]["event"] == "tick"


async def test_info_cache_on_a_non_cache_channel_is_400(server):
    with pytest.raises(PusherBadRequest):
        await server.call(server.sdk().channel_info, "news", ["cache"])
    with pytest.raises(PusherBadRequest):
        await server.call(
            sdk_request, server.sdk(), "GET", f"/apps/{MAIN.id}/channels", {"info": "cache"}
        )


async def test_cached_event_expires_after_the_apps_ttl(server):
    api = server.sdk(SHORT_CACHE)
    loop = asyncio.get_running_loop()
    triggered = loop.time()
    await server.call(api.trigger, "cache-brief", "ev", "soon-gone")
    info = await server.call(api.channel_info, "cache-brief", ["cache"])
    assert info["cache"] == {"event": "ev", "data": "soon-gone", "ttl": 1}
    # Waiting on the server's own answer: ask until it reports the entry gone.
    async with asyncio.timeout(3 * UNIT):
        while info["cache"] is not None:
            info = await server.call(api.channel_info, "cache-brief", ["cache"])
    assert loop.time() - triggered >= 1.0
    late = await _join(server, "cache-brief", app=SHORT_CACHE)
    assert await late.recv() == {"event": "pusher:cache_miss", "channel": "cache-brief"}
