"""Reference 6, through the running server: what the node emits, as a real receiver sees it.

Each test starts a server whose one app has webhooks pointing at an `aiohttp.web` receiver on
127.0.0.1 (`it_support.WebhookReceiver`), with short batching, hold-back and retry timings.
Every request is checked with the pusher SDK's `validate_webhook`. To show that something was
NOT sent, a later marker is made to follow it through the same queue: once the marker has
arrived, anything emitted (or released from the hold-back) before it would have too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import pytest
from it_support import UNIT, WebhookReceiver, presence_data

from clarion.core.apps import App, Webhook
from clarion.types import AppId, AppKey

HOOKED = App(
    id=AppId("987654"),
    key=AppKey("hooked-key"),
    secret="hooked-secret",
    name="hooked",
    enable_client_messages=True,
)
HOLDBACK_S = 0.3
FAST = {
    "webhook_batch_ms": 20,
    "webhook_holdback_s": HOLDBACK_S,
    "webhook_retry_initial_s": 0.05,
    "webhook_retry_max_s": 0.2,
}
OCCUPIED, VACATED = "channel_occupied", "channel_vacated"
ADDED, REMOVED = "member_added", "member_removed"


@pytest.fixture
async def receiver():
    started = await WebhookReceiver(HOOKED).start()
    yield started
    await started.close()


@pytest.fixture
async def hooked(receiver, start_server):
    """Start the server with `{path: event types}` endpoints (set() = every type); the server
    is shut down (flushing its hold-back) before the receiver goes."""

    async def start(endpoints: dict[str, set[str]], **settings):
        hooks = tuple(Webhook(receiver.url(p), frozenset(t)) for p, t in endpoints.items())
        app = dataclasses.replace(HOOKED, webhooks=hooks)
        return await start_server(apps=(app,), **{**FAST, **settings})

    return start


async def _join(server, channel, user=None):
    client = await server.connect(HOOKED)
    await server.subscribe_ok(client, channel, presence_data(user) if user else None, app=HOOKED)
    return client


# ---- channel_occupied / channel_vacated -----------------------------------------------------


async def test_occupied_and_vacated_are_signed_and_sent_once_per_transition(hooked, receiver):
    server = await hooked({"hook": {OCCUPIED, VACATED}})
    a = await _join(server, "news")
    await receiver.until(lambda: receiver.names() == ["channel_occupied:news"])
    request = receiver.accepted()[0]
    body = json.loads(request["raw"])
    assert set(body) == {"time_ms", "events"}
    assert abs(body["time_ms"] - time.time() * 1000) < 60_000
    assert body["events"] == [{"name": OCCUPIED, "channel": "news"}]

    b = await _join(server, "news")  # second subscriber: no new occupied
    await b.unsubscribe("news")  # one left: not vacated
    await b.assert_nothing_pending()
    left = asyncio.get_running_loop().time()
    await a.close()
    await receiver.until(lambda: len(receiver.names()) == 2)
    assert receiver.names() == ["channel_occupied:news", "channel_vacated:news"]
    assert receiver.events()[1] == {"name": VACATED, "channel": "news"}
    # Held back (reference 6: "delayed up to 3 s"), here webhook_holdback_s.
    assert receiver.accepted()[-1]["at"] - left >= HOLDBACK_S - 0.02


async def test_vacate_then_reoccupy_within_the_holdback_sends_nothing(hooked, receiver):
    server = await hooked({"hook": {OCCUPIED, VACATED}})
    a = await _join(server, "a")
    await receiver.until(lambda: receiver.names() == ["channel_occupied:a"])
    # The same socket leaves and comes back; then another socket takes over from it.
    await a.unsubscribe("a")
    await server.subscribe_ok(a, "a", app=HOOKED)
    await a.close()
    await _join(server, "a")
    # Marker: held after the above, so a leaked vacated:a would be due first.
    marker = await _join(server, "marker")
    await marker.unsubscribe("marker")
    await receiver.until(lambda: "channel_vacated:marker" in receiver.names())
    assert receiver.names() == [
        "channel_occupied:a",
        "channel_occupied:marker",
        "channel_vacated:marker",
    ]


# ---- member_added / member_removed ----------------------------------------------------------


async def test_members_are_counted_once_across_sockets_in_the_right_order(hooked, receiver):
    server = await hooked({"hook": {OCCUPIED, VACATED, ADDED, REMOVED}})
    phone = await _join(server, "presence-room", "1")
    laptop = await _join(server, "presence-room", "1")
    other = await _join(server, "presence-room", "2")
    await receiver.until(lambda: len(receiver.names()) >= 3)
    # Occupied first, then the member that occupied it (reference 6 / issue spec order).
    assert receiver.names() == [
        "channel_occupied:presence-room",
        "member_added:presence-room:1",
        "member_added:presence-room:2",
    ]
    await phone.close()  # user 1 is still there on the laptop: nothing
    await laptop.close()
    await other.close()
    await receiver.until(lambda: "channel_vacated:presence-room" in receiver.names())
    assert receiver.names() == [
        "channel_occupied:presence-room",
        "member_added:presence-room:1",
        "member_added:presence-room:2",
        "member_removed:presence-room:1",
        "member_removed:presence-room:2",
        "channel_vacated:presence-room",
    ]
    assert receiver.events()[-3] == {
        "name": REMOVED,
        "channel": "presence-room",
        "user_id": "1",
    }


async def test_a_member_who_comes_back_within_the_holdback_is_never_removed(hooked, receiver):
    server = await hooked({"hook": {ADDED, REMOVED}})
    await _join(server, "presence-room", "1")
    leaver = await _join(server, "presence-room", "2")
    await receiver.until(lambda: len(receiver.names()) == 2)
    await leaver.close()
    await _join(server, "presence-room", "2")  # a page reload
    marker = await _join(server, "presence-room", "3")
    await marker.close()
    await receiver.until(lambda: "member_removed:presence-room:3" in receiver.names())
    assert receiver.names() == [
        "member_added:presence-room:1",
        "member_added:presence-room:2",
        "member_added:presence-room:3",
        "member_removed:presence-room:3",
    ]


# ---- client_event -------------------------------------------------------------------------


async def test_client_events_are_reported_with_user_id_on_presence_only(hooked, receiver):
    server = await hooked({"hook": {"client_event"}})
    sender = await _join(server, "private-chat")
    await _join(server, "private-chat")
    # Refused client events make no webhook.
    await server.subscribe_ok(sender, "news", app=HOOKED)
    await sender.send_event("client-shout", {"no": 1}, channel="news")
    await sender.send_event("client-typing", {"who": "me"}, channel="private-chat")
    talker = await _join(server, "presence-chat", "7")
    await _join(server, "presence-chat", "8")
    await talker.send_event("client-wave", "hi", channel="presence-chat")
    await receiver.until(lambda: len(receiver.events()) >= 2)
    first, second = receiver.events()
    assert json.loads(first.pop("data")) == {"who": "me"}
    assert first == {
        "name": "client_event",
        "channel": "private-chat",
        "event": "client-typing",
        "socket_id": sender.socket_id,
    }
    assert second == {
        "name": "client_event",
        "channel": "presence-chat",
        "event": "client-wave",
        "data": "hi",
        "socket_id": talker.socket_id,
        "user_id": "7",
    }
    frames = await sender.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error"], frames  # the refused one


# ---- cache_miss -----------------------------------------------------------------------------


async def test_cache_miss_once_per_channel_and_none_when_cached(hooked, receiver):
    server = await hooked({"hook": {"cache_miss"}})
    clients = [await server.connect(HOOKED) for _ in range(3)]
    for client in clients:
        await client.subscribe("cache-a")
    for client in clients:
        await client.expect_succeeded("cache-a")
        await client.expect("pusher:cache_miss", "cache-a")
    await server.call(server.sdk(HOOKED).trigger, "cache-a", "ev", "x")
    late = await _join(server, "cache-a")
    assert (await late.recv())["event"] == "ev"
    # A public, uncached, non-cache channel: no cache_miss either.
    await _join(server, "news")
    marker = await _join(server, "cache-marker")
    await marker.expect("pusher:cache_miss", "cache-marker")
    await receiver.until(lambda: "cache_miss:cache-marker" in receiver.names())
    assert receiver.names() == ["cache_miss:cache-a", "cache_miss:cache-marker"]
    assert receiver.events()[0] == {"name": "cache_miss", "channel": "cache-a"}


# ---- subscription_count ----------------------------------------------------------------------


async def test_subscription_count_webhook_follows_every_change_down_to_zero(hooked, receiver):
    # The app does not enable subscription_count for clients: the endpoint alone asks for it.
    server = await hooked({"hook": {"subscription_count"}})
    await _join(server, "presence-room", "1")  # presence channels have no count
    a = await _join(server, "news")
    b = await _join(server, "news")
    await b.unsubscribe("news")
    await a.close()
    await receiver.until(lambda: len(receiver.events()) >= 4)
    assert receiver.events() == [
        {"name": "subscription_count", "channel": "news", "subscription_count": n}
        for n in (1, 2, 1, 0)
    ]
    await b.assert_nothing_pending()  # no pusher_internal:subscription_count to clients


# ---- endpoints and event types ----------------------------------------------------------------


async def test_each_endpoint_gets_the_types_it_asked_for(hooked, receiver):
    server = await hooked({"occupied": {OCCUPIED}, "all": set(), "members": {ADDED}})
    # Server-to-user channels are not channels: no webhook of any kind.
    user = await server.connect(HOOKED)
    await server.signin_ok(user, {"id": "1"}, app=HOOKED)
    await user.subscribe("#server-to-user-1")
    await user.expect_succeeded("#server-to-user-1")
    client = await _join(server, "news")
    await client.unsubscribe("news")
    await receiver.until(lambda: "channel_vacated:news" in receiver.names("all"))
    assert receiver.names("all") == [
        "channel_occupied:news",
        "subscription_count:news",
        "subscription_count:news",
        "channel_vacated:news",
    ]
    assert [e.get("subscription_count") for e in receiver.events("all")] == [None, 1, 0, None]
    assert receiver.names("occupied") == ["channel_occupied:news"]
    assert receiver.names("members") == []


# ---- a receiver that fails for a while ---------------------------------------------------------


async def test_a_failing_receiver_gets_every_webhook_exactly_once_after_it_recovers(
    hooked, receiver
):
    receiver.plan = lambda n: 500 if n < 3 else 200
    server = await hooked({"hook": {OCCUPIED}})
    client = await server.connect(HOOKED)
    channels = [f"c{i}" for i in range(12)]
    for channel in channels[:5]:
        await server.subscribe_ok(client, channel, app=HOOKED)
    # More events while the receiver is failing.
    await receiver.until(lambda: len(receiver.requests) >= 1)
    for channel in channels[5:]:
        await server.subscribe_ok(client, channel, app=HOOKED)
    await receiver.until(lambda: len(receiver.events()) >= 12, within=5 * UNIT)
    assert [r["status"] for r in receiver.requests[:3]] == [500, 500, 500]
    # Every event once, in the order the channels were occupied; every try validly signed.
    assert receiver.names() == [f"channel_occupied:{c}" for c in channels]
    assert all(r["valid"] is not None for r in receiver.requests)
    # The failed batch was retried as it was (later events waited behind it), each try with
    # its own time stamp and signature.
    tries = [json.loads(r["raw"]) for r in receiver.requests[:4]]
    assert all(t["events"] == tries[0]["events"] for t in tries), tries
    assert tries[0]["time_ms"] < tries[3]["time_ms"]
    # Nothing more arrives once the marker has.
    marker = await _join(server, "marker")
    await receiver.until(lambda: "channel_occupied:marker" in receiver.names())
    assert len(receiver.events()) == 13
    await marker.assert_nothing_pending()
