"""Channel features through the node: cache channels, subscription counts, per-connection
limits (reference 2.7, 2.8, 4)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from clarion.core.apps import Webhook
from clarion.node import SUBSCRIPTION_COUNT_INTERVAL_S
from clarion.ports import CachedEvent
from clarion.protocol.webhooks import SUBSCRIPTION_COUNT
from clarion.types import AppId, AppKey

from .fakes import (
    FakeConnection,
    NodeHarness,
    close,
    connect,
    decoded_data,
    make_app,
    send,
    subscribe,
    unsubscribe,
)

APP_ID = AppId("app-id")
COUNT = "pusher_internal:subscription_count"


@pytest.fixture
def h() -> NodeHarness:
    return NodeHarness(make_app(enable_client_messages=True))


# ---- cache channels (reference 2.8) ------------------------------------------------------


async def test_subscribe_to_an_empty_cache_channel_gets_cache_miss(h: NodeHarness) -> None:
    session, conn = connect(h)
    await subscribe(h, session, "cache-x")
    assert conn.events() == ["pusher_internal:subscription_succeeded", "pusher:cache_miss"]
    assert conn.texts[1] == '{"event":"pusher:cache_miss","channel":"cache-x"}'


async def test_subscribe_gets_the_last_triggered_event(h: NodeHarness) -> None:
    await h.node.trigger(h.apps[0], ["cache-x"], "first", '{"n":1}', None)
    await h.node.trigger(h.apps[0], ["cache-x"], "price", '{"n":2}', None)
    session, conn = connect(h)
    await subscribe(h, session, "cache-x")
    assert conn.events() == ["pusher_internal:subscription_succeeded", "price"]
    assert conn.texts[1] == '{"event":"price","channel":"cache-x","data":"{\\"n\\":2}"}'


@pytest.mark.parametrize(
    "channel", ["cache-x", "private-cache-x", "presence-cache-x", "private-encrypted-cache-x"]
)
async def test_every_cache_prefix_keeps_the_last_event(h: NodeHarness, channel: str) -> None:
    await h.node.trigger(h.apps[0], [channel], "ev", "{}", None)
    assert await h.node.cached(APP_ID, channel) == CachedEvent("ev", "{}", 1800)


@pytest.mark.parametrize("channel", ["my-channel", "private-x", "presence-x", "xcache-x"])
async def test_other_channels_keep_nothing(h: NodeHarness, channel: str) -> None:
    await h.node.trigger(h.apps[0], [channel], "ev", "{}", None)
    assert await h.node.cached(APP_ID, channel) is None


async def test_non_cache_channels_get_neither_event_nor_miss(h: NodeHarness) -> None:
    await h.node.trigger(h.apps[0], ["my-channel"], "ev", "{}", None)
    session, conn = connect(h)
    await subscribe(h, session, "my-channel")
    assert conn.events() == ["pusher_internal:subscription_succeeded"]


async def test_the_cached_event_expires_after_the_app_ttl() -> None:
    h = NodeHarness(make_app(cache_ttl_seconds=60))
    await h.node.trigger(h.apps[0], ["cache-x"], "ev", "{}", None)
    h.clock.advance(59)
    cached = await h.node.cached(APP_ID, "cache-x")
    assert cached == CachedEvent("ev", "{}", 1)
    early, conn_early = connect(h)
    await subscribe(h, early, "cache-x")
    assert conn_early.events()[-1] == "ev"
    h.clock.advance(1)
    assert await h.node.cached(APP_ID, "cache-x") is None
    late, conn_late = connect(h)
    await subscribe(h, late, "cache-x")
    assert conn_late.events()[-1] == "pusher:cache_miss"


async def test_client_events_are_never_cached(h: NodeHarness) -> None:
    a, _ = connect(h)
    b, conn_b = connect(h)
    await subscribe(h, a, "private-cache-x")
    await subscribe(h, b, "private-cache-x")
    conn_b.clear()
    send(h, a, "client-typing", {"a": 1}, channel="private-cache-x")
    assert conn_b.events() == ["client-typing"]  # relayed as usual
    assert await h.node.cached(APP_ID, "private-cache-x") is None
    c, conn_c = connect(h)
    await subscribe(h, c, "private-cache-x")
    assert conn_c.events()[-1] == "pusher:cache_miss"


async def test_a_trigger_to_a_cache_channel_still_reaches_subscribers(h: NodeHarness) -> None:
    session, conn = connect(h)
    await subscribe(h, session, "cache-x")
    conn.clear()
    await h.node.trigger(h.apps[0], ["cache-x"], "ev", "{}", session.socket_id)
    assert conn.written == []  # exclusion applies; the event is still cached for later ones
    assert await h.node.cached(APP_ID, "cache-x") == CachedEvent("ev", "{}", 1800)


async def test_presence_cache_sends_the_cached_event_after_the_roster(h: NodeHarness) -> None:
    await h.node.trigger(h.apps[0], ["presence-cache-room"], "ev", "{}", None)
    session, conn = connect(h)
    await subscribe(h, session, "presence-cache-room", user="1")
    assert conn.events() == ["pusher_internal:subscription_succeeded", "ev"]
    assert decoded_data(conn.frames[0])["presence"]["ids"] == ["1"]


async def test_the_cache_is_per_app() -> None:
    other = make_app(id=AppId("other-id"), key=AppKey("other-key"), secret="other-secret")
    h = NodeHarness(make_app(), other)
    await h.node.trigger(other, ["cache-x"], "ev", "{}", None)
    session, conn = connect(h)
    await subscribe(h, session, "cache-x")
    assert conn.events()[-1] == "pusher:cache_miss"


async def test_a_failed_cache_subscribe_sends_no_cached_event(h: NodeHarness) -> None:
    await h.node.trigger(h.apps[0], ["private-cache-x"], "ev", "{}", None)
    session, conn = connect(h)
    await subscribe(h, session, "private-cache-x", auth="app-key:" + "0" * 64)
    assert conn.events() == ["pusher:error", "pusher:subscription_error"]


# ---- subscription_count (reference 2.7) --------------------------------------------------


def counts(conn: FakeConnection, channel: str = "my-channel") -> list[int]:
    out = []
    for frame in conn.of(COUNT):
        assert frame["channel"] == channel
        out.append(decoded_data(frame)["subscription_count"])
    return out


@pytest.fixture
def hc() -> NodeHarness:
    return NodeHarness(make_app(enable_subscription_count=True, enable_client_messages=True))


async def test_subscription_count_is_off_by_default(h: NodeHarness) -> None:
    a, conn_a = connect(h)
    b, _ = connect(h)
    await subscribe(h, a, "my-channel")
    await subscribe(h, b, "my-channel")
    assert COUNT not in conn_a.events()


async def test_subscription_count_on_subscribe_and_unsubscribe(hc: NodeHarness) -> None:
    a, conn_a = connect(hc)
    b, conn_b = connect(hc)
    await subscribe(hc, a, "my-channel")
    assert conn_a.events() == ["pusher_internal:subscription_succeeded", COUNT]
    assert conn_a.texts[1] == (
        '{"event":"pusher_internal:subscription_count","channel":"my-channel",'
        '"data":"{\\"subscription_count\\":1}"}'
    )
    await subscribe(hc, b, "my-channel")
    assert counts(conn_a) == [1, 2]
    assert counts(conn_b) == [2]
    await unsubscribe(hc, b, "my-channel")
    assert counts(conn_a) == [1, 2, 1]
    assert counts(conn_b) == [2]  # no longer a subscriber
    conn_a.clear()
    await unsubscribe(hc, a, "my-channel")
    assert conn_a.written == []  # nobody left to tell; N=0 is never sent


async def test_subscription_count_on_close(hc: NodeHarness) -> None:
    a, conn_a = connect(hc)
    b, _ = connect(hc)
    await subscribe(hc, a, "private-chat")
    await subscribe(hc, b, "private-chat")
    await close(hc, b)
    assert counts(conn_a, "private-chat") == [1, 2, 1]


async def test_subscription_count_is_encoded_once(hc: NodeHarness) -> None:
    sessions = [connect(hc) for _ in range(3)]
    for s, _ in sessions[:2]:
        await subscribe(hc, s, "my-channel")
    before = hc.frame.calls
    await subscribe(hc, sessions[2][0], "my-channel")
    assert hc.frame.calls - before == 2  # subscription_succeeded, then one count frame
    last = [c.written[-1] for _, c in sessions]
    assert all(f is last[0] for f in last)


@pytest.mark.parametrize("channel", ["presence-room", "presence-cache-room"])
async def test_no_subscription_count_on_presence_channels(hc: NodeHarness, channel: str) -> None:
    a, conn_a = connect(hc)
    b, _ = connect(hc)
    await subscribe(hc, a, channel, user="1")
    await subscribe(hc, b, channel, user="2")
    assert COUNT not in conn_a.events()


async def test_subscription_count_after_the_cached_event(hc: NodeHarness) -> None:
    session, conn = connect(hc)
    await subscribe(hc, session, "cache-x")
    assert conn.events() == [
        "pusher_internal:subscription_succeeded",
        "pusher:cache_miss",
        COUNT,
    ]


class CallLater:
    """Stands in for the running loop's `call_later`: records, never waits."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, Callable[..., Any], tuple[Any, ...]]] = []

    def __call__(self, delay: float, callback: Callable[..., Any], *args: Any) -> None:
        self.calls.append((delay, callback, args))

    def fire(self, index: int = 0) -> None:
        _, callback, args = self.calls[index]
        callback(*args)


@pytest.fixture
async def call_later(monkeypatch: pytest.MonkeyPatch) -> CallLater:
    recorder = CallLater()
    monkeypatch.setattr(asyncio.get_running_loop(), "call_later", recorder)
    return recorder


async def fill(
    h: NodeHarness, n: int, channel: str = "my-channel"
) -> list[tuple[Any, FakeConnection]]:
    sessions = [connect(h) for _ in range(n)]
    for s, _ in sessions:
        await subscribe(h, s, channel)
    return sessions


async def test_up_to_100_subscribers_every_change_is_sent_at_once(
    hc: NodeHarness, call_later: CallLater
) -> None:
    sessions = await fill(hc, 100)
    assert counts(sessions[0][1]) == list(range(1, 101))
    assert call_later.calls == []


async def test_above_100_subscribers_counts_are_throttled_to_one_per_5_s(
    hc: NodeHarness, call_later: CallLater
) -> None:
    sessions = await fill(hc, 100)
    first = sessions[0][1]
    first.clear()
    extra = [connect(hc) for _ in range(3)]
    for s, _ in extra:
        await subscribe(hc, s, "my-channel")  # 101, 102, 103 within the window
    assert counts(first) == []
    # One deferred send for the channel, due 5 s after the last one went out.
    assert len(call_later.calls) == 1
    assert call_later.calls[0][0] == pytest.approx(SUBSCRIPTION_COUNT_INTERVAL_S)

    hc.clock.advance(5)
    call_later.fire()
    await hc.node.drain()
    assert counts(first) == [103]  # the then-current count, once
    assert counts(extra[0][1]) == [103]


async def test_after_the_window_the_next_change_goes_out_at_once(
    hc: NodeHarness, call_later: CallLater
) -> None:
    sessions = await fill(hc, 101)  # the 101st was deferred
    call_later.fire()
    await hc.node.drain()
    first = sessions[0][1]
    first.clear()
    hc.clock.advance(SUBSCRIPTION_COUNT_INTERVAL_S)
    await unsubscribe(hc, sessions[-1][0], "my-channel")  # 100: not above the threshold
    hc.clock.advance(SUBSCRIPTION_COUNT_INTERVAL_S)
    await subscribe(hc, sessions[-1][0], "my-channel")  # 101, 5 s after the last send
    assert counts(first) == [100, 101]
    assert len(call_later.calls) == 1


async def test_a_deferred_count_for_an_emptied_channel_sends_nothing(
    hc: NodeHarness, call_later: CallLater, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = await fill(hc, 101)
    for s, _ in sessions:
        await close(hc, s)
    for _, c in sessions:
        c.clear()
    call_later.fire()
    await hc.node.drain()
    assert all(c.written == [] for _, c in sessions)
    assert "node step failed" not in caplog.text
    assert await hc.node.subscription_count(APP_ID, "my-channel") == 0


def count_hooks(h: NodeHarness) -> list[int | None]:
    """The subscription_count values handed to the webhook sink (it filters by type itself)."""
    return [e.subscription_count for _, e in h.webhooks.emitted if e.name == SUBSCRIPTION_COUNT]


async def test_subscription_count_webhook_without_client_frames(
    call_later: CallLater,
) -> None:
    hook = Webhook("http://hooks.example/", frozenset({SUBSCRIPTION_COUNT}))
    h = NodeHarness(make_app(webhooks=(hook,)))
    a, conn_a = connect(h)
    await subscribe(h, a, "my-channel")
    await unsubscribe(h, a, "my-channel")
    assert COUNT not in conn_a.events()
    assert count_hooks(h) == [1, 0]
    (_, event) = next(x for x in h.webhooks.emitted if x[1].name == SUBSCRIPTION_COUNT)
    assert event.to_json() == {
        "name": "subscription_count",
        "channel": "my-channel",
        "subscription_count": 1,
    }


async def test_subscription_count_webhook_follows_the_throttle(
    call_later: CallLater,
) -> None:
    hook = Webhook("http://hooks.example/", frozenset({SUBSCRIPTION_COUNT}))
    h = NodeHarness(make_app(webhooks=(hook,)))
    await fill(h, 102)
    assert count_hooks(h) == list(range(1, 101))
    h.clock.advance(5)
    call_later.fire()
    await h.node.drain()
    assert count_hooks(h)[100:] == [102]


# ---- per-connection limits ---------------------------------------------------------------


async def test_channels_per_connection_limit() -> None:
    h = NodeHarness(make_app(max_channels_per_connection=2))
    session, conn = connect(h)
    await subscribe(h, session, "a")
    await subscribe(h, session, "private-b")
    conn.clear()
    await subscribe(h, session, "c")
    assert conn.events() == ["pusher:error", "pusher:subscription_error"]
    assert conn.frames[0]["data"]["code"] is None
    error = conn.frames[1]
    assert error["channel"] == "c"
    assert (error["data"]["type"], error["data"]["status"]) == ("LimitReached", 4100)
    assert not conn.closed
    assert set(session.channels) == {"a", "private-b"}
    assert await h.node.subscription_count(APP_ID, "c") == 0
    await unsubscribe(h, session, "a")
    conn.clear()
    await subscribe(h, session, "c")
    assert conn.events() == ["pusher_internal:subscription_succeeded"]


async def test_the_channel_limit_is_per_connection() -> None:
    h = NodeHarness(make_app(max_channels_per_connection=1))
    a, _ = connect(h)
    b, conn_b = connect(h)
    await subscribe(h, a, "x")
    await subscribe(h, b, "x")
    assert conn_b.events() == ["pusher_internal:subscription_succeeded"]


async def test_client_event_rate_limit(h: NodeHarness) -> None:
    a, conn_a = connect(h)
    b, conn_b = connect(h)
    for s in (a, b):
        await subscribe(h, s, "private-chat")
    conn_a.clear()
    conn_b.clear()
    for i in range(11):
        send(h, a, "client-typing", {"i": i}, channel="private-chat")
    assert len(conn_b.of("client-typing")) == 10
    error = conn_a.only("pusher:error")["data"]
    assert error["code"] == 4301
    assert "rate limit" in error["message"]
    assert not conn_a.closed
    h.clock.advance(0.25)  # 2.5 tokens back
    send(h, a, "client-typing", {"i": 11}, channel="private-chat")
    assert len(conn_b.of("client-typing")) == 11
    assert [decoded_data(f)["i"] for f in conn_b.of("client-typing")] == [*range(10), 11]


async def test_client_event_rate_limit_follows_the_app() -> None:
    h = NodeHarness(make_app(enable_client_messages=True, max_client_events_per_second=2))
    a, conn_a = connect(h)
    b, conn_b = connect(h)
    for s in (a, b):
        await subscribe(h, s, "private-chat")
    for _ in range(3):
        send(h, a, "client-typing", {}, channel="private-chat")
    assert len(conn_b.of("client-typing")) == 2
    assert conn_a.only("pusher:error")["data"]["code"] == 4301
