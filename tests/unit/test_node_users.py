"""Users through the node: sign-in, watchlists, server-to-user, terminate, the auth timeout
(reference 2.6, 2.10, 3.2-3.4)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import pytest

from clarion.core.apps import Webhook
from clarion.core.envelope import Envelope, Target
from clarion.node import NodeSettings
from clarion.types import AppId, AppKey

from .fakes import (
    NodeHarness,
    channel_token,
    close,
    connect,
    decoded_data,
    make_app,
    send,
    sign_in,
    subscribe,
    unsubscribe,
    user_data,
    user_token,
)

APP_ID = AppId("app-id")
WATCHLIST = "pusher_internal:watchlist_events"


@pytest.fixture
def h() -> NodeHarness:
    return NodeHarness(make_app(enable_client_messages=True))


def watch_events(frames: list[dict[str, object]]) -> list[tuple[str, list[str]]]:
    """Each watchlist_events frame as (name, user_ids); every frame holds exactly one entry."""
    out = []
    for frame in frames:
        assert frame["event"] == WATCHLIST
        assert "channel" not in frame
        (entry,) = decoded_data(frame)["events"]
        out.append((entry["name"], entry["user_ids"]))
    return out


# ---- sign-in -----------------------------------------------------------------------------


async def test_signin_success_echoes_user_data(h: NodeHarness) -> None:
    session, conn = connect(h)
    await sign_in(h, session, '{"id":"42"}')
    assert conn.texts == [
        r'{"event":"pusher:signin_success","data":"{\"user_data\":\"{\\\"id\\\":\\\"42\\\"}\"}"}'
    ]
    assert session.user_id == "42"
    assert set(h.node.hub.user_sessions(APP_ID, "42")) == {session.socket_id}
    assert not conn.closed


async def test_signin_keeps_user_info_and_echoes_user_data_unchanged(h: NodeHarness) -> None:
    session, conn = connect(h)
    data = '{"id": "42", "user_info": {"name": "Alice"}}'
    await sign_in(h, session, data)
    assert decoded_data(conn.only("pusher:signin_success")) == {"user_data": data}
    assert session.user_info == {"name": "Alice"}


async def test_signin_with_a_bad_signature(h: NodeHarness) -> None:
    session, conn = connect(h)
    data = user_data("42")
    bad = user_token("1.1", data)
    await sign_in(h, session, data, auth=bad)
    error = conn.only("pusher:error")["data"]
    assert error["code"] == 4009
    assert error["message"] == (
        f"Invalid signature: Expected HMAC SHA256 hex digest of "
        f"{session.socket_id}::user::{data}, but got {bad}"
    )
    assert conn.events() == ["pusher:error"]
    assert not conn.closed
    assert session.user_id is None
    assert h.node.hub.user_sessions(APP_ID, "42") == {}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"user_data": '{"id":"1"}'}, id="no-auth"),
        pytest.param({"auth": "app-key:00"}, id="no-user-data"),
    ],
)
async def test_signin_with_missing_fields(h: NodeHarness, data: dict[str, str]) -> None:
    session, conn = connect(h)
    send(h, session, "pusher:signin", data)
    await h.node.drain()
    assert conn.only("pusher:error")["data"]["code"] == 4009
    assert not conn.closed
    assert session.user_id is None


@pytest.mark.parametrize("data", ['{"id":42}', '{"id":""}', "[]", '{"name":"x"}'])
async def test_signin_with_bad_user_data(h: NodeHarness, data: str) -> None:
    session, conn = connect(h)
    await sign_in(h, session, data)
    assert conn.only("pusher:error")["data"]["code"] == 4009
    assert "pusher:signin_success" not in conn.events()
    assert not conn.closed


async def test_signin_as_a_second_user_is_refused(h: NodeHarness) -> None:
    session, conn = connect(h)
    await sign_in(h, session, user_data("42"))
    conn.clear()
    await sign_in(h, session, user_data("7"))
    assert conn.only("pusher:error")["data"]["code"] == 4009
    assert conn.events() == ["pusher:error"]
    assert not conn.closed
    assert session.user_id == "42"
    assert h.node.hub.user_sessions(APP_ID, "7") == {}


async def test_signin_again_as_the_same_user(h: NodeHarness) -> None:
    watcher, conn_w = connect(h)
    await sign_in(h, watcher, user_data("w", watchlist=["42"]))
    session, conn = connect(h)
    await sign_in(h, session, user_data("42"))
    conn_w.clear()
    await sign_in(h, session, user_data("42", user_info={"v": 2}))
    assert conn.events() == ["pusher:signin_success", "pusher:signin_success"]
    assert session.user_info == {"v": 2}
    assert conn_w.written == []  # still the same online user
    assert await h.users.online(APP_ID, ["42"]) == ["42"]


async def test_signin_sent_as_a_json_string(h: NodeHarness) -> None:
    """pusher-js sends `data` as an object; a string holding JSON is accepted too."""
    session, conn = connect(h)
    data = user_data("42")
    payload = json.dumps({"auth": user_token(session.socket_id, data), "user_data": data})
    send(h, session, "pusher:signin", payload)
    await h.node.drain()
    assert conn.events() == ["pusher:signin_success"]


# ---- watchlists (reference 3.3) ----------------------------------------------------------


async def test_no_watchlist_no_watchlist_events(h: NodeHarness) -> None:
    session, conn = connect(h)
    await sign_in(h, session, user_data("1"))
    other, conn_o = connect(h)
    await sign_in(h, other, user_data("2", watchlist=[]))
    assert conn.events() == ["pusher:signin_success"]
    assert conn_o.events() == ["pusher:signin_success"]


async def test_initial_watchlist_lists_online_ids_in_watchlist_order(h: NodeHarness) -> None:
    for uid in ("c", "a"):
        s, _ = connect(h)
        await sign_in(h, s, user_data(uid))
    session, conn = connect(h)
    await sign_in(h, session, user_data("me", watchlist=["a", "b", "c"]))
    assert conn.events() == ["pusher:signin_success", WATCHLIST]
    assert watch_events(conn.of(WATCHLIST)) == [("online", ["a", "c"])]


async def test_initial_watchlist_is_sent_even_when_nobody_is_online(h: NodeHarness) -> None:
    session, conn = connect(h)
    await sign_in(h, session, user_data("me", watchlist=["a", 7]))
    assert conn.texts[1] == (
        '{"event":"pusher_internal:watchlist_events",'
        '"data":"{\\"events\\":[{\\"name\\":\\"online\\",\\"user_ids\\":[]}]}"}'
    )


async def test_watched_user_online_and_offline_across_sockets(h: NodeHarness) -> None:
    watcher, conn_w = connect(h)
    await sign_in(h, watcher, user_data("w", watchlist=["42"]))
    conn_w.clear()

    first, _ = connect(h)
    second, _ = connect(h)
    await sign_in(h, first, user_data("42"))
    assert watch_events(conn_w.frames) == [("online", ["42"])]
    await sign_in(h, second, user_data("42"))
    assert len(conn_w.written) == 1  # the second socket is not news

    await close(h, first)
    assert len(conn_w.written) == 1  # still online on the second socket
    await close(h, second)
    assert watch_events(conn_w.frames) == [("online", ["42"]), ("offline", ["42"])]


async def test_every_watcher_hears_and_others_do_not(h: NodeHarness) -> None:
    w1, c1 = connect(h)
    w2, c2 = connect(h)
    bystander, cb = connect(h)
    await sign_in(h, w1, user_data("w1", watchlist=["42", "7"]))
    await sign_in(h, w2, user_data("w2", watchlist=["42"]))
    await sign_in(h, bystander, user_data("b", watchlist=["7"]))
    for c in (c1, c2, cb):
        c.clear()
    target, _ = connect(h)
    await sign_in(h, target, user_data("42"))
    assert watch_events(c1.frames) == [("online", ["42"])]
    assert watch_events(c2.frames) == [("online", ["42"])]
    assert cb.written == []


async def test_online_event_is_encoded_once_for_all_watchers(h: NodeHarness) -> None:
    conns = []
    for i in range(4):
        s, c = connect(h)
        await sign_in(h, s, user_data(f"w{i}", watchlist=["42"]))
        conns.append(c)
    target, _ = connect(h)
    before = h.frame.calls
    await sign_in(h, target, user_data("42"))
    assert h.frame.calls - before == 2  # signin_success, then one online frame for all
    frames = [c.written[-1] for c in conns]
    assert all(f is frames[0] for f in frames)


async def test_closing_an_unsigned_socket_sends_no_offline(h: NodeHarness) -> None:
    watcher, conn_w = connect(h)
    await sign_in(h, watcher, user_data("w", watchlist=["42"]))
    presence_only, _ = connect(h)
    await subscribe(h, presence_only, "presence-room", user="42")
    conn_w.clear()
    await close(h, presence_only)
    assert conn_w.written == []


async def test_a_closed_watcher_hears_nothing_more(h: NodeHarness) -> None:
    watcher, conn_w = connect(h)
    await sign_in(h, watcher, user_data("w", watchlist=["42"]))
    await close(h, watcher)
    conn_w.clear()
    target, _ = connect(h)
    await sign_in(h, target, user_data("42"))
    assert conn_w.written == []
    assert h.node.hub.watchers(APP_ID, "42") == {}


async def test_watchlist_over_the_limit() -> None:
    h = NodeHarness(make_app(max_watchlist_size=2))
    online, _ = connect(h)
    await sign_in(h, online, user_data("c"))
    session, conn = connect(h)
    await sign_in(h, session, user_data("me", watchlist=["a", "b", "c"]))
    assert "pusher:signin_success" in conn.events()
    assert conn.events()[0] == "pusher:signin_success"
    error = conn.only("pusher:error")["data"]
    assert error["code"] == 4302
    assert not conn.closed
    assert session.user_id == "me"
    # Only the first two ids count: "c" is online but beyond the limit.
    assert watch_events(conn.of(WATCHLIST)) == [("online", [])]
    assert session.watchlist == ("a", "b")
    assert h.node.hub.watchers(AppId("app-id"), "c") == {}


async def test_re_signin_replaces_the_watchlist(h: NodeHarness) -> None:
    session, conn = connect(h)
    await sign_in(h, session, user_data("me", watchlist=["a"]))
    await sign_in(h, session, user_data("me", watchlist=["b"]))
    conn.clear()
    for uid in ("a", "b"):
        s, _ = connect(h)
        await sign_in(h, s, user_data(uid))
    assert watch_events(conn.frames) == [("online", ["b"])]


async def test_users_are_per_app() -> None:
    other = make_app(id=AppId("other-id"), key=AppKey("other-key"), secret="other-secret")
    h = NodeHarness(make_app(), other)
    watcher, conn_w = connect(h, "other-key")
    data = user_data("w", watchlist=["42"])
    to_sign = f"{watcher.socket_id}::user::{data}".encode()
    sig = hmac.new(b"other-secret", to_sign, hashlib.sha256).hexdigest()
    await sign_in(h, watcher, data, auth=f"other-key:{sig}")
    assert watcher.user_id == "w"
    conn_w.clear()
    target, conn_t = connect(h)  # app-key
    await sign_in(h, target, user_data("42"))
    assert conn_w.written == []
    h.node.terminate_user(other, "42")
    assert not conn_t.closed


# ---- presence after sign-in (reference 2.6, last point) ----------------------------------


async def test_presence_without_channel_data_uses_the_signed_in_user(h: NodeHarness) -> None:
    observer, conn_o = connect(h)
    await subscribe(h, observer, "presence-room", user="obs")
    conn_o.clear()
    session, conn = connect(h)
    await sign_in(h, session, user_data("42", user_info={"name": "Alice"}))
    send(
        h,
        session,
        "pusher:subscribe",
        {"channel": "presence-room", "auth": channel_token(session.socket_id, "presence-room")},
    )
    await h.node.drain()
    roster = decoded_data(conn.only("pusher_internal:subscription_succeeded"))["presence"]
    assert roster["hash"]["42"] == {"name": "Alice"}
    assert roster["count"] == 2
    added = decoded_data(conn_o.only("pusher_internal:member_added"))
    assert added == {"user_id": "42", "user_info": {"name": "Alice"}}


async def test_presence_without_channel_data_nor_signin_is_refused(h: NodeHarness) -> None:
    session, conn = connect(h)
    send(
        h,
        session,
        "pusher:subscribe",
        {"channel": "presence-room", "auth": channel_token(session.socket_id, "presence-room")},
    )
    await h.node.drain()
    assert conn.only("pusher:subscription_error")["data"]["status"] == 401
    assert session.channels == {}


# ---- server-to-user (reference 2.10) -----------------------------------------------------


async def test_server_to_user_subscription_needs_that_sign_in(h: NodeHarness) -> None:
    session, conn = connect(h)
    await subscribe(h, session, "#server-to-user-42")
    error = conn.only("pusher:subscription_error")
    assert (error["data"]["type"], error["data"]["status"]) == ("AuthError", 401)
    await sign_in(h, session, user_data("7"))
    await subscribe(h, session, "#server-to-user-42")
    assert len(conn.of("pusher:subscription_error")) == 2
    conn.clear()
    await sign_in(h, session, user_data("7"))
    await subscribe(h, session, "#server-to-user-7")
    frame = conn.only("pusher_internal:subscription_succeeded")
    assert frame == {
        "event": "pusher_internal:subscription_succeeded",
        "channel": "#server-to-user-7",
        "data": "{}",
    }
    assert "#server-to-user-7" in session.channels


async def test_send_to_user_reaches_every_signed_in_socket(h: NodeHarness) -> None:
    subscribed_s, conn_s = connect(h)
    unsubscribed_s, conn_u = connect(h)
    other_user, conn_other = connect(h)
    presence_only, conn_p = connect(h)
    await sign_in(h, subscribed_s, user_data("42"))
    await subscribe(h, subscribed_s, "#server-to-user-42")
    await sign_in(h, unsubscribed_s, user_data("42"))
    await sign_in(h, other_user, user_data("7"))
    await subscribe(h, presence_only, "presence-room", user="42")
    for c in (conn_s, conn_u, conn_other, conn_p):
        c.clear()
    await h.node.trigger(h.apps[0], ["#server-to-user-42"], "my-event", '{"x":1}', None)
    expected = '{"event":"my-event","channel":"#server-to-user-42","data":"{\\"x\\":1}"}'
    assert conn_s.texts == [expected]
    assert conn_u.texts == [expected]
    assert conn_other.written == []
    assert conn_p.written == []


async def test_send_to_user_honours_socket_id_exclusion(h: NodeHarness) -> None:
    a, conn_a = connect(h)
    b, conn_b = connect(h)
    for s in (a, b):
        await sign_in(h, s, user_data("42"))
    conn_a.clear()
    conn_b.clear()
    await h.node.trigger(h.apps[0], ["#server-to-user-42"], "ev", "{}", a.socket_id)
    assert conn_a.written == []
    assert conn_b.events() == ["ev"]


async def test_server_to_user_channels_are_not_channels() -> None:
    h = NodeHarness(
        make_app(webhooks=(Webhook("http://hooks.example/"),), enable_subscription_count=True)
    )
    session, conn = connect(h)
    await sign_in(h, session, user_data("42"))
    await subscribe(h, session, "#server-to-user-42")
    await h.node.trigger(h.apps[0], ["#server-to-user-42"], "ev", "{}", None)
    assert await h.node.occupied_channels(APP_ID, "") == {}
    assert await h.node.subscription_count(APP_ID, "#server-to-user-42") == 0
    assert h.webhooks.emitted == []
    assert "pusher_internal:subscription_count" not in conn.events()
    send(h, session, "pusher:unsubscribe", {"channel": "#server-to-user-42"})
    await close(h, session)
    assert h.webhooks.emitted == []


async def test_after_close_send_to_user_reaches_nobody(h: NodeHarness) -> None:
    session, conn = connect(h)
    await sign_in(h, session, user_data("42"))
    await close(h, session)
    conn.clear()
    await h.node.trigger(h.apps[0], ["#server-to-user-42"], "ev", "{}", None)
    assert conn.written == []
    assert h.node.hub.user_sessions(APP_ID, "42") == {}


# ---- terminate_connections (reference 3.4) -----------------------------------------------


async def test_terminate_closes_every_socket_signed_in_as_the_user(h: NodeHarness) -> None:
    a, conn_a = connect(h)
    b, conn_b = connect(h)
    other, conn_other = connect(h)
    presence_only, conn_p = connect(h)
    for s in (a, b):
        await sign_in(h, s, user_data("42"))
    await sign_in(h, other, user_data("7"))
    await subscribe(h, presence_only, "presence-room", user="42")
    for c in (conn_a, conn_b, conn_other, conn_p):
        c.clear()
    h.node.terminate_user(h.apps[0], "42")
    for conn in (conn_a, conn_b):
        assert conn.frames == [
            {
                "event": "pusher:error",
                "data": {"code": 4009, "message": "Connection terminated by the app"},
            }
        ]
        assert conn.closes == [(4009, "Connection terminated by the app")]
    assert conn_other.written == []
    assert not conn_other.closed
    assert conn_p.written == []
    assert not conn_p.closed


async def test_terminate_of_nobody_is_harmless(h: NodeHarness) -> None:
    _, conn = connect(h)
    h.node.terminate_user(h.apps[0], "nobody")
    assert conn.written == []


async def test_terminated_user_goes_offline_once_the_sockets_close(h: NodeHarness) -> None:
    watcher, conn_w = connect(h)
    await sign_in(h, watcher, user_data("w", watchlist=["42"]))
    a, _ = connect(h)
    await sign_in(h, a, user_data("42"))
    conn_w.clear()
    h.node.terminate_user(h.apps[0], "42")
    await close(h, a)  # the transport reports the close it was asked for
    assert watch_events(conn_w.frames) == [("offline", ["42"])]


# ---- authorized connections: the auth timeout in the sweep (reference 3.2) ---------------


def auth_app(**overrides: Any) -> NodeHarness:
    values: dict[str, Any] = {"enable_user_authentication": True, "user_authentication_timeout": 30}
    app = make_app(**{**values, **overrides})
    # A long activity timeout keeps pings out of the way.
    return NodeHarness(app, settings=NodeSettings(activity_timeout=120))


def test_an_unauthorized_socket_is_closed_after_the_timeout() -> None:
    h = auth_app()
    _, conn = connect(h)
    h.clock.advance(29)
    h.node.sweep()
    assert conn.written == []
    h.clock.advance(1)
    h.node.sweep()
    assert conn.frames == [
        {
            "event": "pusher:error",
            "data": {"code": 4009, "message": "Connection not authorized within timeout"},
        }
    ]
    assert conn.closes == [(4009, "Connection not authorized within timeout")]


def test_the_auth_timeout_is_off_by_default() -> None:
    h = NodeHarness(settings=NodeSettings(activity_timeout=120))
    _, conn = connect(h)
    h.clock.advance(100)
    h.node.sweep()
    assert not conn.closed


def test_the_auth_timeout_follows_the_app() -> None:
    h = auth_app(user_authentication_timeout=5)
    _, conn = connect(h)
    h.clock.advance(5)
    h.node.sweep()
    assert conn.closes[0][0] == 4009


async def test_signed_in_sockets_are_authorized() -> None:
    h = auth_app()
    session, conn = connect(h)
    await sign_in(h, session, user_data("42"))
    h.clock.advance(100)
    h.node.sweep()
    assert not conn.closed


@pytest.mark.parametrize(
    ("channel", "closed"),
    [
        ("private-chat", False),
        ("presence-room", False),
        ("private-encrypted-vault", False),
        ("my-channel", True),
        ("cache-x", True),
    ],
)
async def test_a_subscription_that_needed_auth_authorizes(channel: str, closed: bool) -> None:
    h = auth_app()
    session, conn = connect(h)
    user = "1" if channel.startswith("presence-") else None
    await subscribe(h, session, channel, user=user)
    h.clock.advance(100)
    h.node.sweep()
    assert conn.closed is closed


async def test_a_socket_that_only_pings_is_still_closed_at_the_timeout() -> None:
    """pusher-js pings (and answers our pings) whatever its auth state; traffic must not
    restart the auth clock, or an idle unauthorized socket is never closed."""
    h = auth_app()
    session, conn = connect(h)
    for _ in range(3):
        h.clock.advance(10)
        send(h, session, "pusher:ping", {})
        h.node.sweep()
    assert h.clock.now - session.last_seen == 0
    assert conn.closes == [(4009, "Connection not authorized within timeout")]


def test_the_auth_timeout_with_the_default_activity_timeout() -> None:
    """With activity_timeout == user_authentication_timeout the 30 s sweep pings; the socket
    is still closed for want of auth no later than the next sweep."""
    h = NodeHarness(make_app(enable_user_authentication=True))
    _, conn = connect(h)
    h.clock.advance(30)
    h.node.sweep()
    h.clock.advance(1)
    h.node.sweep()
    assert conn.closes == [(4009, "Connection not authorized within timeout")]


async def test_a_socket_authorized_in_time_is_not_closed_after_leaving_the_channel() -> None:
    """Spec: closed if it "has neither signed in nor subscribed to a private-/presence- channel
    within the timeout". One that did, then left the channel later (Echo leaving a page),
    passed the check; a 4009 close would keep pusher-js disconnected for good."""
    h = auth_app()
    session, conn = connect(h)
    h.clock.advance(5)
    await subscribe(h, session, "private-chat")
    h.clock.advance(40)
    await unsubscribe(h, session, "private-chat")
    for _ in range(60):
        h.clock.advance(1)
        h.node.sweep()
    assert not conn.closed


class GatedUserStore:
    """The memory store, but `online` waits until the test opens the gate (a store round trip
    during which other nodes' watchlist events arrive)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gate = asyncio.Event()

    async def sign_in(self, app_id: AppId, user_id: str, socket_id: str) -> bool:
        return bool(await self.inner.sign_in(app_id, user_id, socket_id))

    async def sign_out(self, app_id: AppId, user_id: str, socket_id: str) -> bool:
        return bool(await self.inner.sign_out(app_id, user_id, socket_id))

    async def online(self, app_id: AppId, user_ids: Any) -> list[str]:
        await self.gate.wait()
        return list(await self.inner.online(app_id, user_ids))


async def test_watch_events_during_a_slow_signin_come_after_signin_success(
    h: NodeHarness,
) -> None:
    """A watched user's status changes while the watcher's sign-in waits on the store: the
    watcher hears signin_success and its initial list first, then only what the list does not
    already say (reference 3.3)."""
    gated = GatedUserStore(h.users)
    h.node._users = gated
    watcher, conn_w = connect(h)
    data = user_data("w", watchlist=["42", "43"])
    send(
        h,
        watcher,
        "pusher:signin",
        {"auth": user_token(watcher.socket_id, data), "user_data": data},
    )
    # Meanwhile (other nodes): 42 comes online, 43 comes online and goes offline again.
    for user_id, name in (("42", "online"), ("43", "online"), ("43", "offline")):
        h.node.deliver(Envelope(APP_ID, "", name, "", user_id=user_id, target=Target.WATCHERS))
    assert conn_w.frames == []
    await gated.inner.sign_in(APP_ID, "42", "9.9")  # what the store says once it answers
    gated.gate.set()
    await h.node.drain()
    assert conn_w.frames[0]["event"] == "pusher:signin_success"
    # 42's online is already in the initial list; 43 came and went while the store was asked,
    # so the watcher hears both, after the list.
    assert watch_events(conn_w.frames[1:]) == [
        ("online", ["42"]),
        ("online", ["43"]),
        ("offline", ["43"]),
    ]
