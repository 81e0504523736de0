"""Reference 2.7: `pusher_internal:subscription_count` to a channel's subscribers when the app
enables it."""

from __future__ import annotations

import pytest
from it_support import COUNTED, MAIN, data_of, presence_data

COUNT = "pusher_internal:subscription_count"


async def _expect_count(client, channel, n):
    msg = await client.expect(COUNT, channel)
    assert isinstance(msg["data"], str), msg  # double-encoded like every pusher_internal event
    assert data_of(msg) == {"subscription_count": n}, msg
    return msg


@pytest.mark.parametrize("channel", ["news", "private-news", "cache-news"])
async def test_every_subscriber_hears_the_count_on_subscribe_and_unsubscribe(server, channel):
    cache = channel.startswith("cache-")
    a = await server.connect(COUNTED)
    await server.subscribe_ok(a, channel, app=COUNTED)
    if cache:
        await a.expect("pusher:cache_miss", channel)  # the cache answer comes first
    await _expect_count(a, channel, 1)

    b = await server.connect(COUNTED)
    await server.subscribe_ok(b, channel, app=COUNTED)
    if cache:
        await b.expect("pusher:cache_miss", channel)
    await _expect_count(b, channel, 2)
    await _expect_count(a, channel, 2)

    c = await server.connect(COUNTED)
    await server.subscribe_ok(c, channel, app=COUNTED)
    if cache:
        await c.expect("pusher:cache_miss", channel)
    for client in (a, b, c):
        await _expect_count(client, channel, 3)

    await b.unsubscribe(channel)
    for client in (a, c):
        await _expect_count(client, channel, 2)
    await b.assert_nothing_pending()

    await c.close()  # a disconnect counts like an unsubscribe
    await _expect_count(a, channel, 1)
    await a.unsubscribe(channel)
    await a.assert_nothing_pending()  # no count of 0 to anyone


async def test_counts_are_per_channel(server):
    a = await server.connect(COUNTED)
    await server.subscribe_ok(a, "one", app=COUNTED)
    await _expect_count(a, "one", 1)
    b = await server.connect(COUNTED)
    await server.subscribe_ok(b, "two", app=COUNTED)
    await _expect_count(b, "two", 1)
    await a.assert_nothing_pending()


async def test_presence_channels_get_no_subscription_count(server):
    a = await server.connect(COUNTED)
    await server.subscribe_ok(a, "presence-room", presence_data("1"), app=COUNTED)
    b = await server.connect(COUNTED)
    await server.subscribe_ok(b, "presence-room", presence_data("2"), app=COUNTED)
    await a.expect("pusher_internal:member_added", "presence-room")
    await a.assert_nothing_pending()
    await b.assert_nothing_pending()


async def test_apps_without_the_option_get_no_subscription_count(server):
    a = await server.connect(MAIN)
    await server.subscribe_ok(a, "news")
    b = await server.connect(MAIN)
    await server.subscribe_ok(b, "news")
    await a.assert_nothing_pending()
    await b.assert_nothing_pending()


async def test_a_refused_or_repeated_subscribe_changes_no_count(server):
    a = await server.connect(COUNTED)
    await server.subscribe_ok(a, "private-x", app=COUNTED)
    await _expect_count(a, "private-x", 1)
    intruder = await server.connect(COUNTED)
    await intruder.subscribe("private-x", f"{COUNTED.key}:{'0' * 64}")
    frames = await intruder.until_pong()
    assert COUNT not in [f["event"] for f in frames], frames
    await a.subscribe("private-x", server.auth(a, "private-x", app=COUNTED)["auth"])
    frames = await a.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error"], frames  # existing subscription
    await a.assert_nothing_pending()


async def test_above_100_subscribers_the_count_is_not_sent_on_every_change(server):
    # Reference 2.7: above 100 subscribers at most once per 5 s per channel. The first 100
    # changes go out at once; the 101st, right after, must wait (deferred, not tested here).
    clients = []
    for _ in range(100):
        # Most of the crowd is never read: let their frames pile up without flow control.
        client = await server.connect(COUNTED, max_queue=None)
        await client.subscribe("crowd")
        clients.append(client)
    first = clients[0]
    await first.expect_succeeded("crowd")
    for n in range(1, 101):
        await _expect_count(first, "crowd", n)
    last = clients[-1]
    await last.expect_succeeded("crowd")
    await _expect_count(last, "crowd", 100)

    extra = await server.connect(COUNTED, max_queue=None)
    await server.subscribe_ok(extra, "crowd", app=COUNTED)
    await extra.assert_nothing_pending()
    await first.assert_nothing_pending()
