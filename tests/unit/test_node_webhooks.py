"""Which webhook events the node hands its sink, in what order, with which fields
(reference 6). Hold-back, batching and delivery belong to the sink and are tested with it."""

from __future__ import annotations

import pytest

from clarion.core.apps import Webhook
from clarion.protocol.webhooks import SUBSCRIPTION_COUNT, WEBHOOK_EVENT_TYPES, WebhookEvent
from clarion.types import AppId, AppKey

from .fakes import (
    NodeHarness,
    close,
    connect,
    make_app,
    send,
    sign_in,
    subscribe,
    unsubscribe,
    user_data,
)

# Every type but subscription_count, which would interleave with the others on non-presence
# channels (its own tests below).
HOOK = Webhook("http://hooks.example/", WEBHOOK_EVENT_TYPES - {SUBSCRIPTION_COUNT})
EVERY_TYPE = Webhook("http://hooks.example/")


@pytest.fixture
def h() -> NodeHarness:
    return NodeHarness(make_app(enable_client_messages=True, webhooks=(HOOK,)))


def events(h: NodeHarness) -> list[dict[str, object]]:
    return [event.to_json() for _, event in h.webhooks.emitted]


async def test_nothing_is_emitted_for_an_app_without_webhooks() -> None:
    h = NodeHarness(make_app(enable_client_messages=True))
    a, _ = connect(h)
    b, _ = connect(h)
    await subscribe(h, a, "presence-room", user="1")
    await subscribe(h, b, "presence-room", user="2")
    await subscribe(h, a, "cache-x")
    send(h, a, "client-x", {}, channel="presence-room")
    await close(h, a)
    assert h.webhooks.emitted == []


async def test_occupied_on_the_first_subscriber_vacated_on_the_last(h: NodeHarness) -> None:
    a, _ = connect(h)
    b, _ = connect(h)
    await subscribe(h, a, "my-channel")
    assert events(h) == [{"name": "channel_occupied", "channel": "my-channel"}]
    await subscribe(h, b, "my-channel")
    await unsubscribe(h, a, "my-channel")
    assert len(h.webhooks.emitted) == 1
    await unsubscribe(h, b, "my-channel")
    assert events(h) == [
        {"name": "channel_occupied", "channel": "my-channel"},
        {"name": "channel_vacated", "channel": "my-channel"},
    ]
    assert all(app_id == "app-id" for app_id, _ in h.webhooks.emitted)


async def test_vacated_when_the_last_subscriber_disconnects(h: NodeHarness) -> None:
    a, _ = connect(h)
    await subscribe(h, a, "private-chat")
    await close(h, a)
    assert [e["name"] for e in events(h)] == ["channel_occupied", "channel_vacated"]


async def test_presence_order_occupied_then_added_removed_then_vacated(h: NodeHarness) -> None:
    a, _ = connect(h)
    await subscribe(h, a, "presence-room", user="42")
    assert events(h) == [
        {"name": "channel_occupied", "channel": "presence-room"},
        {"name": "member_added", "channel": "presence-room", "user_id": "42"},
    ]
    await unsubscribe(h, a, "presence-room")
    assert events(h)[2:] == [
        {"name": "member_removed", "channel": "presence-room", "user_id": "42"},
        {"name": "channel_vacated", "channel": "presence-room"},
    ]


async def test_presence_order_on_disconnect(h: NodeHarness) -> None:
    a, _ = connect(h)
    await subscribe(h, a, "presence-room", user="42")
    await close(h, a)
    assert [e["name"] for e in events(h)] == [
        "channel_occupied",
        "member_added",
        "member_removed",
        "channel_vacated",
    ]


async def test_member_events_once_per_user(h: NodeHarness) -> None:
    first, _ = connect(h)
    second, _ = connect(h)
    other, _ = connect(h)
    await subscribe(h, first, "presence-room", user="42")
    await subscribe(h, second, "presence-room", user="42")
    await subscribe(h, other, "presence-room", user="7")
    await close(h, first)
    await close(h, other)
    await close(h, second)
    assert [(e["name"], e.get("user_id")) for e in events(h)] == [
        ("channel_occupied", None),
        ("member_added", "42"),
        ("member_added", "7"),
        ("member_removed", "7"),
        ("member_removed", "42"),
        ("channel_vacated", None),
    ]


async def test_a_refused_subscription_emits_nothing(h: NodeHarness) -> None:
    a, _ = connect(h)
    await subscribe(h, a, "private-chat", auth="app-key:" + "0" * 64)
    await subscribe(h, a, "presence-room", user="x" * 200)
    assert h.webhooks.emitted == []


async def test_client_event_on_a_private_channel(h: NodeHarness) -> None:
    a, _ = connect(h)
    b, _ = connect(h)
    for s in (a, b):
        await subscribe(h, s, "private-chat")
    h.webhooks.emitted.clear()
    send(h, a, "client-typing", {"t": 1}, channel="private-chat")
    assert events(h) == [
        {
            "name": "client_event",
            "channel": "private-chat",
            "event": "client-typing",
            "data": '{"t":1}',  # object data is relayed as compact JSON text
            "socket_id": a.socket_id,
        }
    ]


async def test_client_event_on_a_presence_channel_has_the_user_id(h: NodeHarness) -> None:
    a, _ = connect(h)
    await subscribe(h, a, "presence-chat", user="42")
    h.webhooks.emitted.clear()
    send(h, a, "client-typing", "{}", channel="presence-chat")
    (_, event) = h.webhooks.emitted[0]
    assert event == WebhookEvent(
        "client_event",
        "presence-chat",
        user_id="42",
        event="client-typing",
        data="{}",
        socket_id=a.socket_id,
    )


async def test_a_client_event_alone_in_the_channel_still_fires(h: NodeHarness) -> None:
    a, _ = connect(h)
    await subscribe(h, a, "private-chat")
    h.webhooks.emitted.clear()
    send(h, a, "client-typing", {}, channel="private-chat")
    assert [e["name"] for e in events(h)] == ["client_event"]


async def test_a_rejected_client_event_fires_nothing() -> None:
    h = NodeHarness(
        make_app(enable_client_messages=True, webhooks=(HOOK,), max_client_events_per_second=1)
    )
    a, _ = connect(h)
    await subscribe(h, a, "private-chat")
    await subscribe(h, a, "my-channel")
    h.webhooks.emitted.clear()
    send(h, a, "client-x", {}, channel="my-channel")  # public: refused
    send(h, a, "client-x", {}, channel="private-other")  # not subscribed
    send(h, a, "client-x", {}, channel="private-chat")  # passes
    send(h, a, "client-x", {}, channel="private-chat")  # over the rate
    assert [e["name"] for e in events(h)] == ["client_event"]


async def test_cache_miss_webhook(h: NodeHarness) -> None:
    a, _ = connect(h)
    b, _ = connect(h)
    await subscribe(h, a, "cache-x")
    assert events(h) == [
        {"name": "channel_occupied", "channel": "cache-x"},
        {"name": "cache_miss", "channel": "cache-x"},
    ]
    # The sink de-duplicates simultaneous misses; the node reports each one it answered.
    await subscribe(h, b, "cache-x")
    assert events(h)[2:] == [{"name": "cache_miss", "channel": "cache-x"}]


async def test_no_cache_miss_webhook_on_a_hit(h: NodeHarness) -> None:
    await h.node.trigger(h.apps[0], ["cache-x"], "ev", "{}", None)
    a, _ = connect(h)
    await subscribe(h, a, "cache-x")
    assert [e["name"] for e in events(h)] == ["channel_occupied"]


async def test_api_triggers_fire_no_webhooks(h: NodeHarness) -> None:
    a, _ = connect(h)
    await subscribe(h, a, "my-channel")
    h.webhooks.emitted.clear()
    await h.node.trigger(h.apps[0], ["my-channel", "cache-y"], "ev", "{}", None)
    assert h.webhooks.emitted == []


async def test_sign_in_and_send_to_user_fire_no_webhooks(h: NodeHarness) -> None:
    a, _ = connect(h)
    await sign_in(h, a, user_data("42"))
    await subscribe(h, a, "#server-to-user-42")
    await h.node.trigger(h.apps[0], ["#server-to-user-42"], "ev", "{}", None)
    await close(h, a)
    assert h.webhooks.emitted == []


async def test_events_carry_their_app() -> None:
    other = make_app(
        id=AppId("other-id"), key=AppKey("other-key"), secret="other-secret", webhooks=(HOOK,)
    )
    h = NodeHarness(make_app(webhooks=(HOOK,)), other)
    a, _ = connect(h, "other-key")
    await subscribe(h, a, "my-channel")
    assert [app_id for app_id, _ in h.webhooks.emitted] == ["other-id"]


async def test_filtered_endpoints_still_get_events_through_the_sink() -> None:
    """The node hands every event to the sink when the app has any endpoint; the sink
    filters per endpoint (event_types)."""
    only_vacated = Webhook("http://hooks.example/", frozenset({"channel_vacated"}))
    h = NodeHarness(make_app(webhooks=(only_vacated,)))
    a, _ = connect(h)
    await subscribe(h, a, "my-channel")
    await close(h, a)
    assert "channel_vacated" in h.webhooks.names()


async def test_subscription_count_comes_after_the_other_subscribe_events() -> None:
    h = NodeHarness(make_app(webhooks=(EVERY_TYPE,)))
    a, _ = connect(h)
    await subscribe(h, a, "cache-x")
    await close(h, a)
    assert events(h) == [
        {"name": "channel_occupied", "channel": "cache-x"},
        {"name": "cache_miss", "channel": "cache-x"},
        {"name": "subscription_count", "channel": "cache-x", "subscription_count": 1},
        {"name": "channel_vacated", "channel": "cache-x"},
        {"name": "subscription_count", "channel": "cache-x", "subscription_count": 0},
    ]


async def test_no_subscription_count_webhook_for_presence_channels() -> None:
    h = NodeHarness(make_app(webhooks=(EVERY_TYPE,)))
    a, _ = connect(h)
    await subscribe(h, a, "presence-room", user="1")
    await close(h, a)
    assert "subscription_count" not in h.webhooks.names()
