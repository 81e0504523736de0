"""Node driven directly: recording fake connections, memory backends, a hand-moved clock.

Store-backed steps (subscribe, unsubscribe, leaving on close) run as asyncio tasks, so tests
await `node.drain()` after sending them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from clarion.core.envelope import Envelope
from clarion.core.session import Session
from clarion.node import NodeSettings
from clarion.types import AppId, AppKey

from .fakes import (
    FakeConnection,
    NodeHarness,
    channel_token,
    connect,
    make_app,
    send,
    send_subscribe,
)


@pytest.fixture
def h() -> NodeHarness:
    return NodeHarness(make_app(enable_client_messages=True))


async def subscribe(h: NodeHarness, session: Session, channel: str, **kwargs: Any) -> None:
    send_subscribe(h, session, channel, **kwargs)
    await h.node.drain()


def decoded_data(frame: dict[str, Any]) -> Any:
    assert isinstance(frame["data"], str), "server-to-client data must be a JSON string"
    return json.loads(frame["data"])


# ---- on_open -----------------------------------------------------------------------------


def test_open_sends_connection_established(h: NodeHarness) -> None:
    conn = FakeConnection()
    session = h.node.on_open(conn, "app-key", "7", "https://anywhere.example")
    assert session is not None
    frame = conn.only("pusher:connection_established")
    data = decoded_data(frame)
    assert data == {"socket_id": session.socket_id, "activity_timeout": 30}
    assert re.fullmatch(r"\d+\.\d+", session.socket_id)
    assert not conn.closed
    assert h.node.hub.sessions[session.socket_id] is session


def test_activity_timeout_comes_from_the_settings() -> None:
    h = NodeHarness(settings=NodeSettings(activity_timeout=120))
    conn = FakeConnection()
    h.node.on_open(conn, "app-key", "7", None)
    assert decoded_data(conn.only("pusher:connection_established"))["activity_timeout"] == 120


def test_socket_ids_are_unique(h: NodeHarness) -> None:
    ids = {connect(h)[0].socket_id for _ in range(50)}
    assert len(ids) == 50


@pytest.mark.parametrize("protocol", ["5", "6", "7"])
def test_supported_protocols(h: NodeHarness, protocol: str) -> None:
    assert h.node.on_open(FakeConnection(), "app-key", protocol, None) is not None


@pytest.mark.parametrize(
    ("app", "key", "protocol", "origin", "code"),
    [
        pytest.param(make_app(), "nope", "7", None, 4001, id="unknown-key"),
        pytest.param(make_app(enabled=False), "app-key", "7", None, 4003, id="disabled"),
        pytest.param(make_app(), "app-key", "seven", None, 4006, id="version-not-integer"),
        pytest.param(make_app(), "app-key", "7.0", None, 4006, id="version-not-integer-2"),
        pytest.param(make_app(), "app-key", "4", None, 4007, id="protocol-too-old"),
        pytest.param(make_app(), "app-key", "8", None, 4007, id="protocol-too-new"),
        pytest.param(make_app(), "app-key", None, None, 4008, id="no-protocol"),
        pytest.param(make_app(), "app-key", "", None, 4008, id="empty-protocol"),
        pytest.param(
            make_app(allowed_origins=("https://app.example",)),
            "app-key",
            "7",
            "https://evil.example",
            4009,
            id="origin-refused",
        ),
        pytest.param(
            make_app(allowed_origins=("https://app.example",)),
            "app-key",
            "7",
            None,
            4009,
            id="origin-missing",
        ),
    ],
)
def test_open_refusals(
    app: Any, key: str, protocol: str | None, origin: str | None, code: int
) -> None:
    h = NodeHarness(app)
    conn = FakeConnection()
    assert h.node.on_open(conn, key, protocol, origin) is None
    error = conn.only("pusher:error")
    assert error["data"]["code"] == code
    assert error["data"]["message"]
    assert [c for c, _ in conn.closes] == [code]
    assert "pusher:connection_established" not in conn.events()
    assert h.node.hub.sessions == {}


def test_connection_quota_refuses_with_4004() -> None:
    h = NodeHarness(make_app(max_connections=2))
    connect(h)
    connect(h)
    conn = FakeConnection()
    # The quota may live in Redis, so the socket exists while the question is asked; a
    # refused one is closed and never told it is established (reference 1.6).
    refused = h.node.on_open(conn, "app-key", "7", None)
    assert refused is not None
    assert conn.only("pusher:error")["data"]["code"] == 4004
    assert conn.closes[0][0] == 4004
    assert "pusher:connection_established" not in conn.events()
    h.node.on_close(refused)  # what the transport does once the socket is gone
    assert h.node.hub.connection_count(AppId("app-id")) == 2


async def test_quota_frees_up_when_a_socket_closes() -> None:
    h = NodeHarness(make_app(max_connections=1))
    session, _ = connect(h)
    refused = FakeConnection()
    h.node.on_open(refused, "app-key", "7", None)
    assert [code for code, _ in refused.closes] == [4004]
    h.node.on_close(session)
    await h.node.drain()
    admitted = FakeConnection()
    h.node.on_open(admitted, "app-key", "7", None)
    assert "pusher:connection_established" in admitted.events()
    assert admitted.closes == []


# ---- simple messages ---------------------------------------------------------------------


def test_ping_gets_pong(h: NodeHarness) -> None:
    session, conn = connect(h)
    send(h, session, "pusher:ping", {})
    assert conn.texts == ['{"event":"pusher:pong","data":"{}"}']


@pytest.mark.parametrize(
    "text", ["not json", "[]", "{}", '{"event":"pusher:bogus"}', '{"event":"client-x","data":{}}']
)
def test_bad_message_gets_an_error_and_the_socket_stays_open(h: NodeHarness, text: str) -> None:
    session, conn = connect(h)
    h.node.on_message(session, text)
    assert conn.only("pusher:error")["data"]["code"] == 4200
    assert not conn.closed


# ---- hostile input never escapes the node (reference 7: answer with pusher:error) --------


def test_protocol_with_a_non_ascii_digit_is_refused_4006(h: NodeHarness) -> None:
    """`?protocol=%C2%B2` reaches on_open as "²", which `str.isdigit` accepts but `int` does not."""
    conn = FakeConnection()
    assert h.node.on_open(conn, "app-key", "\u00b2", None) is None
    assert conn.only("pusher:error")["data"]["code"] == 4006
    assert [code for code, _ in conn.closes] == [4006]


def test_deeply_nested_frame_gets_an_error_and_the_socket_stays_open(h: NodeHarness) -> None:
    session, conn = connect(h)
    h.node.on_message(session, "[" * 10_000)
    assert conn.only("pusher:error")["data"]["code"] == 4200
    assert not conn.closed


async def test_client_event_with_a_lone_surrogate(h: NodeHarness) -> None:
    """JSON allows a `\\ud800` escape. Inside object data it is relayed re-escaped (the frame
    stays valid UTF-8); as string data it cannot be relayed as sent and is refused."""
    a, conn_a = connect(h)
    b, conn_b = connect(h)
    for s in (a, b):
        await subscribe(h, s, "private-chat")
    conn_a.clear()
    conn_b.clear()
    h.node.on_message(a, '{"event":"client-x","channel":"private-chat","data":{"t":"\\ud800"}}')
    h.node.on_message(a, '{"event":"client-x","channel":"private-chat","data":"\\ud800"}')
    assert conn_a.events() == ["pusher:error"]
    assert not conn_a.closed
    assert conn_b.events() == ["client-x"]
    assert json.loads(conn_b.frames[0]["data"]) == {"t": "\ud800"}


async def test_presence_channel_data_with_a_lone_surrogate_is_answered(h: NodeHarness) -> None:
    session, conn = connect(h)
    h.node.on_message(
        session,
        '{"event":"pusher:subscribe","data":{"channel":"presence-x","auth":"app-key:00",'
        '"channel_data":"{\\"user_id\\":\\"\\ud800\\"}"}}',
    )
    await h.node.drain()
    assert "pusher:subscription_error" in conn.events() or "pusher:error" in conn.events()
    assert not conn.closed
    assert session.channels == {}


# ---- subscribe / unsubscribe -------------------------------------------------------------


async def test_subscribe_public(h: NodeHarness) -> None:
    session, conn = connect(h)
    await subscribe(h, session, "my-channel")
    frame = conn.only("pusher_internal:subscription_succeeded")
    assert frame["channel"] == "my-channel"
    assert decoded_data(frame) == {}
    assert "my-channel" in session.channels
    assert await h.node.subscription_count(AppId("app-id"), "my-channel") == 1


async def test_subscribe_private_and_encrypted(h: NodeHarness) -> None:
    session, conn = connect(h)
    await subscribe(h, session, "private-chat")
    await subscribe(
        h,
        session,
        "private-encrypted-vault",
        auth=channel_token(session.socket_id, "private-encrypted-vault"),
    )
    assert [f["channel"] for f in conn.of("pusher_internal:subscription_succeeded")] == [
        "private-chat",
        "private-encrypted-vault",
    ]


async def test_subscribe_with_bad_auth_reports_and_keeps_the_socket(h: NodeHarness) -> None:
    session, conn = connect(h)
    await subscribe(h, session, "private-chat", auth="app-key:" + "0" * 64)
    assert conn.events() == ["pusher:error", "pusher:subscription_error"]
    error = conn.only("pusher:error")
    assert error["data"]["code"] is None
    assert error["data"]["message"].startswith("Invalid signature")
    sub_error = conn.only("pusher:subscription_error")
    assert sub_error["channel"] == "private-chat"
    assert sub_error["data"]["type"] == "AuthError"
    assert sub_error["data"]["status"] == 401
    assert not conn.closed
    assert session.channels == {}
    assert await h.node.subscription_count(AppId("app-id"), "private-chat") == 0


async def test_reference_9_5_auth_for_another_socket_is_refused(h: NodeHarness) -> None:
    session, conn = connect(h)
    other, _ = connect(h)
    await subscribe(
        h, session, "private-my-channel", auth=channel_token(other.socket_id, "private-my-channel")
    )
    assert "pusher:subscription_error" in conn.events()
    assert not conn.closed
    # The socket is still usable.
    await subscribe(h, session, "private-my-channel")
    assert conn.of("pusher_internal:subscription_succeeded")


async def test_subscribe_twice_is_refused(h: NodeHarness) -> None:
    session, conn = connect(h)
    await subscribe(h, session, "my-channel")
    conn.clear()
    await subscribe(h, session, "my-channel")
    assert (
        conn.only("pusher:error")["data"]["message"]
        == "Existing subscription to channel my-channel"
    )
    assert not conn.closed


async def test_subscribe_invalid_channel_name(h: NodeHarness) -> None:
    session, conn = connect(h)
    await subscribe(h, session, "bad name")
    assert conn.only("pusher:subscription_error")["data"]["status"] == 4009
    assert not conn.closed


async def test_unsubscribe(h: NodeHarness) -> None:
    session, conn = connect(h)
    await subscribe(h, session, "my-channel")
    conn.clear()
    send(h, session, "pusher:unsubscribe", {"channel": "my-channel"})
    await h.node.drain()
    assert conn.written == []  # no reply to unsubscribe
    assert session.channels == {}
    assert await h.node.subscription_count(AppId("app-id"), "my-channel") == 0
    await h.node.trigger(h.apps[0], ["my-channel"], "ev", "{}", None)
    assert conn.written == []


async def test_unsubscribe_from_a_channel_not_joined_is_ignored(h: NodeHarness) -> None:
    session, conn = connect(h)
    send(h, session, "pusher:unsubscribe", {"channel": "never-joined"})
    await h.node.drain()
    assert conn.written == []


async def test_messages_sent_during_a_subscribe_are_handled_in_order(h: NodeHarness) -> None:
    a, conn_a = connect(h)
    b, conn_b = connect(h)
    await subscribe(h, b, "private-chat")
    conn_b.clear()
    send_subscribe(h, a, "private-chat")
    send(h, a, "client-typing", {"n": 1}, channel="private-chat")
    send(h, a, "pusher:ping", {})
    await h.node.drain()
    assert conn_a.events() == ["pusher_internal:subscription_succeeded", "pusher:pong"]
    assert conn_b.events() == ["client-typing"]


async def test_subscribe_then_unsubscribe_before_the_store_answers(h: NodeHarness) -> None:
    session, _conn = connect(h)
    send_subscribe(h, session, "my-channel")
    send(h, session, "pusher:unsubscribe", {"channel": "my-channel"})
    await h.node.drain()
    assert session.channels == {}
    assert await h.node.subscription_count(AppId("app-id"), "my-channel") == 0


# ---- presence ----------------------------------------------------------------------------


async def test_presence_roster_and_member_events_go_to_others_only(h: NodeHarness) -> None:
    a, conn_a = connect(h)
    b, conn_b = connect(h)
    await subscribe(h, a, "presence-room", user="1", info={"name": "Alice"})
    roster = decoded_data(conn_a.only("pusher_internal:subscription_succeeded"))
    assert roster == {"presence": {"ids": ["1"], "hash": {"1": {"name": "Alice"}}, "count": 1}}
    assert conn_a.of("pusher_internal:member_added") == []
    conn_a.clear()

    await subscribe(h, b, "presence-room", user="2", info={"name": "Bob"})
    roster_b = decoded_data(conn_b.only("pusher_internal:subscription_succeeded"))["presence"]
    assert sorted(roster_b["ids"]) == ["1", "2"]
    assert roster_b["hash"] == {"1": {"name": "Alice"}, "2": {"name": "Bob"}}
    assert roster_b["count"] == 2
    assert conn_b.of("pusher_internal:member_added") == []
    added = conn_a.only("pusher_internal:member_added")
    assert added["channel"] == "presence-room"
    assert decoded_data(added) == {"user_id": "2", "user_info": {"name": "Bob"}}
    conn_a.clear()
    conn_b.clear()

    send(h, b, "pusher:unsubscribe", {"channel": "presence-room"})
    await h.node.drain()
    removed = conn_a.only("pusher_internal:member_removed")
    assert decoded_data(removed) == {"user_id": "2"}
    assert conn_b.written == []
    assert await h.node.user_count(AppId("app-id"), "presence-room") == 1
    assert await h.node.presence_user_ids(AppId("app-id"), "presence-room") == ["1"]


async def test_presence_user_on_several_sockets_counts_once(h: NodeHarness) -> None:
    observer, conn_o = connect(h)
    first, _ = connect(h)
    second, conn_second = connect(h)
    await subscribe(h, observer, "presence-room", user="obs")
    conn_o.clear()

    await subscribe(h, first, "presence-room", user="42")
    assert len(conn_o.of("pusher_internal:member_added")) == 1
    await subscribe(h, second, "presence-room", user="42")
    assert len(conn_o.of("pusher_internal:member_added")) == 1
    roster = decoded_data(conn_second.only("pusher_internal:subscription_succeeded"))["presence"]
    assert roster["count"] == 2
    assert await h.node.user_count(AppId("app-id"), "presence-room") == 2

    send(h, first, "pusher:unsubscribe", {"channel": "presence-room"})
    await h.node.drain()
    assert conn_o.of("pusher_internal:member_removed") == []
    h.node.on_close(second)
    await h.node.drain()
    assert [decoded_data(f) for f in conn_o.of("pusher_internal:member_removed")] == [
        {"user_id": "42"}
    ]


async def test_presence_member_limit() -> None:
    h = NodeHarness(make_app(max_presence_members=1))
    a, _ = connect(h)
    b, conn_b = connect(h)
    c, conn_c = connect(h)
    await subscribe(h, a, "presence-room", user="1")
    await subscribe(h, b, "presence-room", user="2")
    sub_error = conn_b.only("pusher:subscription_error")
    assert (sub_error["data"]["type"], sub_error["data"]["status"]) == ("LimitReached", 4100)
    assert not conn_b.closed
    # Another socket of a user already in the channel does not count against the limit.
    await subscribe(h, c, "presence-room", user="1")
    assert conn_c.of("pusher_internal:subscription_succeeded")


async def test_presence_numeric_user_id_is_sent_as_a_string(h: NodeHarness) -> None:
    a, conn_a = connect(h)
    b, _ = connect(h)
    await subscribe(h, a, "presence-room", user="x")
    conn_a.clear()
    channel_data = '{"user_id":10,"user_info":{"name":"Mr. Channels"}}'
    send(
        h,
        b,
        "pusher:subscribe",
        {
            "channel": "presence-room",
            "auth": channel_token(b.socket_id, "presence-room", channel_data),
            "channel_data": channel_data,
        },
    )
    await h.node.drain()
    assert decoded_data(conn_a.only("pusher_internal:member_added"))["user_id"] == "10"


# ---- client events -----------------------------------------------------------------------


async def test_client_event_reaches_others_but_not_the_sender(h: NodeHarness) -> None:
    a, conn_a = connect(h)
    b, conn_b = connect(h)
    for s in (a, b):
        await subscribe(h, s, "private-chat")
    conn_a.clear()
    conn_b.clear()
    send(h, a, "client-typing", {"who": "a"}, channel="private-chat")
    assert conn_a.written == []
    assert conn_b.texts == [
        '{"event":"client-typing","channel":"private-chat","data":"{\\"who\\":\\"a\\"}"}'
    ]


async def test_presence_client_event_carries_user_id(h: NodeHarness) -> None:
    a, _ = connect(h)
    b, conn_b = connect(h)
    await subscribe(h, a, "presence-chat", user="42")
    await subscribe(h, b, "presence-chat", user="7")
    conn_b.clear()
    send(h, a, "client-typing", {}, channel="presence-chat")
    frame = conn_b.only("client-typing")
    assert frame["user_id"] == "42"
    assert frame["channel"] == "presence-chat"


async def test_client_event_refusals_keep_the_socket_open() -> None:
    h = NodeHarness(make_app(enable_client_messages=False))
    a, conn_a = connect(h)
    await subscribe(h, a, "private-chat")
    conn_a.clear()
    send(h, a, "client-typing", {}, channel="private-chat")
    assert conn_a.only("pusher:error")["data"]["code"] == 4301
    assert not conn_a.closed


async def test_client_event_on_public_channel_is_rejected(h: NodeHarness) -> None:
    a, conn_a = connect(h)
    b, conn_b = connect(h)
    for s in (a, b):
        await subscribe(h, s, "my-channel")
    conn_a.clear()
    conn_b.clear()
    send(h, a, "client-typing", {}, channel="my-channel")
    assert conn_a.only("pusher:error")["data"]["message"] == (
        "Client event rejected - only supported on private and presence channels"
    )
    assert conn_b.written == []


async def test_client_event_without_subscription_is_rejected(h: NodeHarness) -> None:
    a, conn_a = connect(h)
    b, conn_b = connect(h)
    await subscribe(h, b, "private-chat")
    conn_b.clear()
    send(h, a, "client-typing", {}, channel="private-chat")
    assert conn_a.events() == ["pusher:error"]
    assert conn_b.written == []


# ---- the fan-out path --------------------------------------------------------------------


async def test_deliver_encodes_once_for_all_subscribers(h: NodeHarness) -> None:
    sessions = [connect(h) for _ in range(5)]
    for session, _ in sessions:
        await subscribe(h, session, "my-channel")
    for _, conn in sessions:
        conn.clear()
    before = h.frame.calls
    await h.node.trigger(h.apps[0], ["my-channel"], "my-event", '{"message": "hello"}', None)
    assert h.frame.calls - before == 1
    first = sessions[0][1].written[0]
    for _, conn in sessions:
        assert len(conn.written) == 1
        assert conn.written[0] is first


async def test_client_event_is_encoded_once_too(h: NodeHarness) -> None:
    sessions = [connect(h) for _ in range(4)]
    for session, _ in sessions:
        await subscribe(h, session, "private-chat")
    before = h.frame.calls
    send(h, sessions[0][0], "client-x", {}, channel="private-chat")
    assert h.frame.calls - before == 1


async def test_trigger_excludes_the_socket_id(h: NodeHarness) -> None:
    a, conn_a = connect(h)
    b, conn_b = connect(h)
    for s in (a, b):
        await subscribe(h, s, "my-channel")
    conn_a.clear()
    conn_b.clear()
    await h.node.trigger(h.apps[0], ["my-channel"], "my-event", '{"message": "hello"}', a.socket_id)
    assert conn_a.written == []
    # Reference 9.3: the expected delivery, byte for byte.
    assert conn_b.texts == [
        '{"event":"my-event","channel":"my-channel","data":"{\\"message\\": \\"hello\\"}"}'
    ]


def test_deliver_without_subscribers_encodes_nothing(h: NodeHarness) -> None:
    before = h.frame.calls
    h.node.deliver(Envelope(AppId("app-id"), "empty", "ev", "{}"))
    assert h.frame.calls == before


async def test_trigger_to_several_channels(h: NodeHarness) -> None:
    a, conn_a = connect(h)
    await subscribe(h, a, "one")
    await subscribe(h, a, "two")
    conn_a.clear()
    await h.node.trigger(h.apps[0], ["one", "two", "three"], "ev", "x", None)
    assert [(f["channel"], f["data"]) for f in conn_a.frames] == [("one", "x"), ("two", "x")]


async def test_apps_are_isolated() -> None:
    first = make_app()
    second = make_app(id=AppId("other-id"), key=AppKey("other-key"), secret="other-secret")
    h = NodeHarness(first, second)
    a, conn_a = connect(h, "app-key")
    b, conn_b = connect(h, "other-key")
    for s in (a, b):
        await subscribe(h, s, "same-name")
    conn_a.clear()
    conn_b.clear()
    await h.node.trigger(second, ["same-name"], "ev", "{}", None)
    assert conn_a.written == []
    assert conn_b.events() == ["ev"]


# ---- close -------------------------------------------------------------------------------


async def test_close_leaves_every_channel(h: NodeHarness) -> None:
    a, conn_a = connect(h)
    b, conn_b = connect(h)
    await subscribe(h, a, "my-channel")
    await subscribe(h, a, "private-chat")
    await subscribe(h, a, "presence-room", user="1")
    await subscribe(h, b, "presence-room", user="2")
    conn_a.clear()
    conn_b.clear()

    h.node.on_close(a)
    await h.node.drain()
    app_id = AppId("app-id")
    for channel in ("my-channel", "private-chat", "presence-room"):
        assert a.socket_id not in h.node.hub.subscribers(app_id, channel)
    assert await h.node.subscription_count(app_id, "my-channel") == 0
    assert await h.node.subscription_count(app_id, "presence-room") == 1
    assert await h.node.user_count(app_id, "presence-room") == 1
    assert await h.node.occupied_channels(app_id, "") == {"presence-room": 1}
    assert a.socket_id not in h.node.hub.sessions
    assert h.node.hub.connection_count(app_id) == 1
    assert [decoded_data(f) for f in conn_b.of("pusher_internal:member_removed")] == [
        {"user_id": "1"}
    ]
    assert conn_a.written == []
    h.node.on_close(a)  # idempotent
    await h.node.drain()


async def test_close_while_a_subscribe_is_in_flight_leaves_nothing_behind(h: NodeHarness) -> None:
    a, _ = connect(h)
    b, conn_b = connect(h)
    await subscribe(h, b, "presence-room", user="2")
    conn_b.clear()
    send_subscribe(h, a, "presence-room", user="1")
    h.node.on_close(a)
    await h.node.drain()
    app_id = AppId("app-id")
    assert await h.node.user_count(app_id, "presence-room") == 1
    assert await h.node.subscription_count(app_id, "presence-room") == 1
    assert a.socket_id not in h.node.hub.subscribers(app_id, "presence-room")
    added = [decoded_data(f)["user_id"] for f in conn_b.of("pusher_internal:member_added")]
    removed = [decoded_data(f)["user_id"] for f in conn_b.of("pusher_internal:member_removed")]
    assert added == removed  # whatever was announced was taken back


def test_close_all_sends_the_code_to_everyone(h: NodeHarness) -> None:
    conns = [connect(h)[1] for _ in range(3)]
    h.node.close_all(4200, "Server shutting down")
    for conn in conns:
        assert conn.only("pusher:error")["data"]["code"] == 4200
        assert conn.closes == [(4200, "Server shutting down")]


# ---- liveness sweep with a hand clock ----------------------------------------------------


def test_sweep_pings_after_silence_then_closes_4201(h: NodeHarness) -> None:
    _session, conn = connect(h)
    h.clock.advance(29.9)
    h.node.sweep()
    assert conn.written == []
    h.clock.advance(0.1)
    h.node.sweep()
    assert conn.texts == ['{"event":"pusher:ping","data":"{}"}']
    h.clock.advance(10)
    h.node.sweep()
    assert conn.texts == ['{"event":"pusher:ping","data":"{}"}']  # one ping only
    h.clock.advance(20)
    h.node.sweep()
    assert conn.events() == ["pusher:ping", "pusher:error"]
    assert conn.of("pusher:error")[0]["data"]["code"] == 4201
    assert [code for code, _ in conn.closes] == [4201]


def test_any_message_after_the_ping_keeps_the_socket(h: NodeHarness) -> None:
    session, conn = connect(h)
    h.clock.advance(30)
    h.node.sweep()
    h.clock.advance(29)
    send(h, session, "pusher:pong", {})
    h.clock.advance(10)
    h.node.sweep()
    assert not conn.closed
    assert conn.events() == ["pusher:ping"]
    h.clock.advance(20)  # 30 s since the pong: ping again, no close
    h.node.sweep()
    assert conn.events() == ["pusher:ping", "pusher:ping"]
    assert not conn.closed


def test_sweep_follows_the_settings() -> None:
    h = NodeHarness(settings=NodeSettings(activity_timeout=120, pong_timeout=5))
    _, conn = connect(h)
    h.clock.advance(119)
    h.node.sweep()
    assert conn.written == []
    h.clock.advance(1)
    h.node.sweep()
    h.clock.advance(5)
    h.node.sweep()
    assert conn.events() == ["pusher:ping", "pusher:error"]
    assert conn.closes[0][0] == 4201


def test_sweep_encodes_the_ping_once(h: NodeHarness) -> None:
    conns = [connect(h)[1] for _ in range(3)]
    h.clock.advance(30)
    before = h.frame.calls
    h.node.sweep()
    assert h.frame.calls - before == 1
    assert all(conn.events() == ["pusher:ping"] for conn in conns)


async def test_bad_frame_while_a_subscribe_is_in_flight_keeps_the_session(h: NodeHarness) -> None:
    """A frame that fails to decode is answered, not queued: only a close leaves channels."""
    session, conn = connect(h)
    await subscribe(h, session, "public-a")
    send_subscribe(h, session, "public-b")  # starts a store-backed step
    h.node.on_message(session, "not json")  # arrives while that step is queued
    await h.node.drain()
    assert set(session.channels) == {"public-a", "public-b"}
    assert "pusher:error" in conn.events()
    assert set(h.node.hub.subscribers(session.app.id, "public-a")) == {session.socket_id}


def test_sweep_looks_only_at_sockets_that_may_be_due(h: NodeHarness) -> None:
    """A socket is not examined each second (no full scan per sweep): one made to look long
    silent behind the node's back is only examined, and pinged, when its filed time comes."""
    connected = [connect(h) for _ in range(50)]
    for session, _ in connected:
        session.last_seen -= 1000  # overdue to any sweep that looked at it
    for _ in range(29):
        h.clock.advance(1)
        h.node.sweep()
    assert [conn.events() for _, conn in connected] == [[]] * 50
    h.clock.advance(1)
    h.node.sweep()
    assert [conn.events() for _, conn in connected] == [["pusher:ping"]] * 50


def test_a_socket_heard_from_is_pinged_30_s_after_its_last_message(h: NodeHarness) -> None:
    session, conn = connect(h)
    h.clock.advance(20)
    send(h, session, "pusher:pong", {})
    h.clock.advance(10)
    h.node.sweep()  # its first due time: found not due, filed again
    assert conn.written == []
    h.clock.advance(19)
    h.node.sweep()
    assert conn.written == []
    h.clock.advance(1)
    h.node.sweep()
    assert conn.events() == ["pusher:ping"]


def test_a_closed_socket_leaves_the_sweep(h: NodeHarness) -> None:
    session, conn = connect(h)
    h.node.on_close(session)
    assert session.socket_id not in h.node._liveness
    h.clock.advance(60)
    h.node.sweep()
    assert conn.written == []
