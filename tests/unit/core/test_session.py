"""Session rules: subscribe authorization, client events, liveness (reference 1.4, 2, 3.1, 4)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from clarion.core.envelope import Envelope
from clarion.core.session import (
    Authorized,
    Liveness,
    Member,
    Session,
    SignedIn,
    authorize_client_event,
    authorize_signin,
    authorize_subscribe,
)
from clarion.protocol.channels import ChannelKind
from clarion.protocol.errors import (
    CLIENT_EVENT_REJECTED,
    INVALID_MESSAGE,
    UNAUTHORIZED,
    PusherError,
    SubscriptionError,
)
from clarion.protocol.messages import ClientEvent, Signin, Subscribe
from clarion.types import SocketId

from ..fakes import FakeConnection, make_app

SOCKET = SocketId("1234.5678")
PRIVATE_TOKEN = "app-key:e515fbcb76197996c03c540be1e5511b56962a120b99a7056054d3e473c79511"
ENCRYPTED_TOKEN = "app-key:daa8df64edc68120f99d4ddab288076cc65ba569dd68bf48a8cb32f7bef61d32"
PRESENCE_SDK_DATA = '{"user_id": "42", "user_info": {"name": "Alice"}}'
PRESENCE_SDK_TOKEN = "app-key:a5a5b142802233e974ae625b4787006eb95d145a46d1aa3b530005f6791ece7e"
PRESENCE_COMPACT_DATA = '{"user_id":"42","user_info":{"name":"Alice"}}'
PRESENCE_COMPACT_TOKEN = "app-key:bba1d9b7bd7be79a753146b9814fc6862192700c25a8259101a67d04c9380f26"


def token(to_sign: str, key: str = "app-key", secret: str = "app-secret") -> str:
    sig = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{key}:{sig}"


def presence_sub(channel_data: str | None, channel: str = "presence-room") -> Subscribe:
    to_sign = f"{SOCKET}:{channel}" + (f":{channel_data}" if channel_data is not None else "")
    return Subscribe(channel=channel, auth=token(to_sign), channel_data=channel_data)


def session(now: float = 0.0, **app_overrides: Any) -> Session:
    return Session(make_app(**app_overrides), SOCKET, FakeConnection(), now)


def refused(sess: Session, msg: Subscribe) -> SubscriptionError:
    with pytest.raises(SubscriptionError) as caught:
        authorize_subscribe(sess, msg)
    error = caught.value
    assert error.channel == msg.channel
    assert error.code is None
    assert error.close is False
    assert error.message
    return error


# ---- authorize_subscribe: accepted -------------------------------------------------------


@pytest.mark.parametrize("auth", [None, "", "anything:at-all"])
def test_public_channel_ignores_auth(auth: str | None) -> None:
    granted = authorize_subscribe(session(), Subscribe("my-channel", auth, None))
    assert granted == Authorized("my-channel", ChannelKind.PUBLIC, None)


def test_private_channel_with_reference_signature() -> None:
    granted = authorize_subscribe(session(), Subscribe("private-my-channel", PRIVATE_TOKEN, None))
    assert granted == Authorized("private-my-channel", ChannelKind.PRIVATE, None)


def test_private_channel_ignores_channel_data() -> None:
    msg = Subscribe("private-my-channel", PRIVATE_TOKEN, '{"user_id":"1"}')
    assert authorize_subscribe(session(), msg).member is None


def test_encrypted_channel_with_reference_signature() -> None:
    msg = Subscribe("private-encrypted-my-channel", ENCRYPTED_TOKEN, None)
    assert authorize_subscribe(session(), msg).kind is ChannelKind.ENCRYPTED


@pytest.mark.parametrize(
    ("channel_data", "auth"),
    [(PRESENCE_SDK_DATA, PRESENCE_SDK_TOKEN), (PRESENCE_COMPACT_DATA, PRESENCE_COMPACT_TOKEN)],
    ids=["sdk", "compact"],
)
def test_presence_with_reference_signatures(channel_data: str, auth: str) -> None:
    granted = authorize_subscribe(session(), Subscribe("presence-my-channel", auth, channel_data))
    assert granted == Authorized(
        "presence-my-channel", ChannelKind.PRESENCE, Member("42", {"name": "Alice"})
    )


def test_presence_numeric_user_id_becomes_a_string() -> None:
    granted = authorize_subscribe(session(), presence_sub('{"user_id":10}'))
    assert granted.member == Member("10", None)


def test_presence_without_channel_data_uses_the_signed_in_user() -> None:
    sess = session()
    sess.user_id, sess.user_info = "42", {"name": "Alice"}
    granted = authorize_subscribe(sess, presence_sub(None))
    assert granted.member == Member("42", {"name": "Alice"})


def test_server_to_user_channel_for_the_signed_in_user() -> None:
    sess = session()
    sess.user_id = "42"
    granted = authorize_subscribe(sess, Subscribe("#server-to-user-42", "", None))
    assert granted == Authorized("#server-to-user-42", ChannelKind.SERVER_TO_USER, None)


# ---- authorize_subscribe: refused --------------------------------------------------------


@pytest.mark.parametrize("channel", ["bad name", "#private", "x" * 201, "a/b"])
def test_invalid_channel_name(channel: str) -> None:
    error = refused(session(), Subscribe(channel, None, None))
    assert (error.error_type, error.status) == ("InvalidChannel", 4009)


def test_channel_name_limit_follows_the_app() -> None:
    error = refused(session(max_channel_name_length=10), Subscribe("x" * 11, None, None))
    assert error.error_type == "InvalidChannel"


def test_already_subscribed() -> None:
    sess = session()
    sess.channels["presence-x"] = "42"
    # Reference 2.3: Pusher's plain pusher:error (code null); not a subscription error, since the
    # subscription stands.
    with pytest.raises(PusherError) as caught:
        authorize_subscribe(sess, Subscribe("presence-x", None, None))
    assert not isinstance(caught.value, SubscriptionError)
    assert caught.value.code is None
    assert caught.value.message == "Existing subscription to channel presence-x"


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "",
        "app-key:0000",
        PRIVATE_TOKEN.replace("app-key", "other-key"),
        token("1234.5678:private-other"),
        token("1234.5678:private-my-channel", secret="wrong"),
    ],
)
def test_private_channel_bad_auth(auth: str | None) -> None:
    error = refused(session(), Subscribe("private-my-channel", auth, None))
    assert (error.error_type, error.status) == ("AuthError", 401)
    assert error.message.startswith(
        "Invalid signature: Expected HMAC SHA256 hex digest of 1234.5678:private-my-channel"
    )


def test_reference_9_5_signature_for_another_socket() -> None:
    other = Session(make_app(), SocketId("1234.5679"), FakeConnection(), 0.0)
    error = refused(other, Subscribe("private-my-channel", PRIVATE_TOKEN, None))
    assert (error.error_type, error.status) == ("AuthError", 401)


def test_reference_9_5_reserialized_channel_data_is_refused() -> None:
    # The SDK's signature with the compact (re-serialized) channel_data.
    msg = Subscribe("presence-my-channel", PRESENCE_SDK_TOKEN, PRESENCE_COMPACT_DATA)
    assert refused(session(), msg).status == 401


def test_presence_signature_must_cover_channel_data() -> None:
    msg = Subscribe("presence-room", token("1234.5678:presence-room"), '{"user_id":"1"}')
    assert refused(session(), msg).status == 401


def test_encrypted_bad_auth() -> None:
    msg = Subscribe("private-encrypted-my-channel", PRIVATE_TOKEN, None)
    assert refused(session(), msg).error_type == "AuthError"


def test_presence_without_channel_data_nor_sign_in() -> None:
    error = refused(session(), presence_sub(None))
    assert (error.error_type, error.status) == ("AuthError", 401)


@pytest.mark.parametrize(
    "channel_data",
    [
        pytest.param("not json", id="not-json"),
        pytest.param("[]", id="array"),
        pytest.param("{}", id="no-user-id"),
        pytest.param('{"user_id":""}', id="empty-user-id"),
        pytest.param('{"user_id":null}', id="null-user-id"),
        pytest.param('{"user_id":true}', id="bool-user-id"),
        pytest.param('{"user_id":{"a":1}}', id="object-user-id"),
    ],
)
def test_presence_bad_channel_data(channel_data: str) -> None:
    error = refused(session(), presence_sub(channel_data))
    assert (error.error_type, error.status) == ("AuthError", 400)


def test_presence_user_id_length_limit() -> None:
    ok = json.dumps({"user_id": "u" * 128})
    assert authorize_subscribe(session(), presence_sub(ok)).member is not None
    error = refused(session(), presence_sub(json.dumps({"user_id": "u" * 129})))
    assert (error.error_type, error.status) == ("LimitReached", 4301)


def test_presence_user_info_size_limit() -> None:
    # `{"a":"…"}` compact: 8 bytes of framing.
    ok = json.dumps({"user_id": "1", "user_info": {"a": "x" * (1024 - 8)}})
    assert authorize_subscribe(session(), presence_sub(ok)).member is not None
    big = json.dumps({"user_id": "1", "user_info": {"a": "x" * (1024 - 7)}})
    error = refused(session(), presence_sub(big))
    assert (error.error_type, error.status) == ("LimitReached", 4301)


@pytest.mark.parametrize("user_id", [None, "7"])
def test_server_to_user_channel_of_someone_else(user_id: str | None) -> None:
    sess = session()
    sess.user_id = user_id
    error = refused(sess, Subscribe("#server-to-user-42", "", None))
    assert (error.error_type, error.status) == ("AuthError", 401)


# ---- authorize_client_event --------------------------------------------------------------


def subscribed(channel: str, member: str | None = None, **app_overrides: Any) -> Session:
    sess = session(**{"enable_client_messages": True, **app_overrides})
    sess.channels[channel] = member
    return sess


def rejected(sess: Session, msg: ClientEvent) -> PusherError:
    with pytest.raises(PusherError) as caught:
        authorize_client_event(sess, msg, 0.0)
    assert caught.value.close is False
    return caught.value


def test_client_event_on_private_channel() -> None:
    envelope = authorize_client_event(
        subscribed("private-chat"), ClientEvent("client-typing", "private-chat", '{"a":1}'), 0.0
    )
    assert envelope == Envelope(
        app_id="app-id",  # type: ignore[arg-type]
        channel="private-chat",
        event="client-typing",
        data='{"a":1}',
        exclude_socket_id=SOCKET,
        user_id=None,
    )


def test_client_event_on_presence_channel_carries_the_user_id() -> None:
    envelope = authorize_client_event(
        subscribed("presence-chat", "42"), ClientEvent("client-typing", "presence-chat", "{}"), 0.0
    )
    assert envelope.user_id == "42"
    assert envelope.exclude_socket_id == SOCKET


def test_client_event_needs_the_client_prefix() -> None:
    error = rejected(subscribed("private-chat"), ClientEvent("typing", "private-chat", "{}"))
    assert error.code == INVALID_MESSAGE


def test_client_event_when_disabled_for_the_app() -> None:
    sess = subscribed("private-chat", enable_client_messages=False)
    error = rejected(sess, ClientEvent("client-typing", "private-chat", "{}"))
    assert error.code == CLIENT_EVENT_REJECTED


@pytest.mark.parametrize(
    "channel", ["my-channel", "cache-x", "private-encrypted-x", "#server-to-user-1"]
)
def test_client_event_on_other_channel_kinds(channel: str) -> None:
    error = rejected(subscribed(channel), ClientEvent("client-typing", channel, "{}"))
    assert error.code is None
    assert error.message == (
        "Client event rejected - only supported on private and presence channels"
    )


def test_client_event_when_not_subscribed() -> None:
    error = rejected(subscribed("private-a"), ClientEvent("client-typing", "private-b", "{}"))
    assert error.code is None
    assert "not subscribed" in error.message


def test_client_event_name_length() -> None:
    sess = subscribed("private-chat")
    assert authorize_client_event(
        sess, ClientEvent("client-" + "e" * 193, "private-chat", "{}"), 0.0
    )
    error = rejected(sess, ClientEvent("client-" + "e" * 194, "private-chat", "{}"))
    assert error.code is None


def test_client_event_data_size() -> None:
    sess = subscribed("private-chat")
    assert authorize_client_event(sess, ClientEvent("client-x", "private-chat", "x" * 10240), 0.0)
    error = rejected(sess, ClientEvent("client-x", "private-chat", "x" * 10241))
    assert "10 KB" in error.message


# ---- liveness with a hand clock ----------------------------------------------------------

ACTIVITY, PONG = 30.0, 30.0


def test_liveness_transitions() -> None:
    sess = session(now=100.0)
    assert sess.liveness(100.0, ACTIVITY, PONG) is Liveness.ALIVE
    assert sess.liveness(129.9, ACTIVITY, PONG) is Liveness.ALIVE
    assert sess.liveness(130.0, ACTIVITY, PONG) is Liveness.SEND_PING
    sess.ping_sent_at = 130.0
    assert sess.liveness(130.0, ACTIVITY, PONG) is Liveness.ALIVE
    assert sess.liveness(159.9, ACTIVITY, PONG) is Liveness.ALIVE
    assert sess.liveness(160.0, ACTIVITY, PONG) is Liveness.DEAD


def test_any_frame_resets_liveness() -> None:
    sess = session(now=0.0)
    sess.ping_sent_at = 30.0
    sess.seen(45.0)
    assert sess.ping_sent_at is None
    assert sess.last_seen == 45.0
    assert sess.liveness(70.0, ACTIVITY, PONG) is Liveness.ALIVE
    assert sess.liveness(75.0, ACTIVITY, PONG) is Liveness.SEND_PING


def test_activity_before_the_timeout_postpones_the_ping() -> None:
    sess = session(now=0.0)
    sess.seen(20.0)
    assert sess.liveness(30.0, ACTIVITY, PONG) is Liveness.ALIVE
    assert sess.liveness(50.0, ACTIVITY, PONG) is Liveness.SEND_PING


def test_new_session_state() -> None:
    sess = session(now=5.0)
    assert sess.channels == {}
    assert sess.user_id is None
    assert sess.inbox is None
    assert sess.closed is False
    assert sess.last_seen == 5.0


# ---- max_channels_per_connection ---------------------------------------------------------


def test_channel_limit_per_connection() -> None:
    sess = session(max_channels_per_connection=2)
    sess.channels.update({"a": None, "b": None})
    error = refused(sess, Subscribe("c", None, None))
    assert (error.error_type, error.status) == ("LimitReached", 4100)
    assert "2" in error.message


def test_channel_limit_still_reports_a_repeated_subscribe_as_such() -> None:
    sess = session(max_channels_per_connection=1)
    sess.channels["a"] = None
    with pytest.raises(PusherError) as caught:
        authorize_subscribe(sess, Subscribe("a", None, None))
    assert not isinstance(caught.value, SubscriptionError)
    assert caught.value.message == "Existing subscription to channel a"


def test_channel_limit_zero_is_unlimited() -> None:
    sess = session()
    sess.channels.update({f"c{i}": None for i in range(500)})
    assert authorize_subscribe(sess, Subscribe("one-more", None, None)).channel == "one-more"


def test_channel_limit_below_it_accepts() -> None:
    sess = session(max_channels_per_connection=2)
    sess.channels["a"] = None
    assert authorize_subscribe(sess, Subscribe("b", None, None)).kind is ChannelKind.PUBLIC


def test_channel_limit_leaves_out_the_own_server_to_user_channel() -> None:
    # pusher-js subscribes to #server-to-user-<id> by itself after sign-in (reference 2.10).
    sess = session(max_channels_per_connection=2)
    sess.user_id = "42"
    sess.channels.update({"#server-to-user-42": None, "a": None})
    assert authorize_subscribe(sess, Subscribe("b", None, None)).channel == "b"
    sess.channels["b"] = None
    assert refused(sess, Subscribe("c", None, None)).error_type == "LimitReached"


# ---- client event rate limit (reference 4) ------------------------------------------------


def test_client_events_are_limited_per_connection_per_second() -> None:
    sess = subscribed("private-chat")
    msg = ClientEvent("client-typing", "private-chat", "{}")
    for _ in range(10):
        authorize_client_event(sess, msg, 100.0)
    with pytest.raises(PusherError) as caught:
        authorize_client_event(sess, msg, 100.0)
    assert caught.value.code == CLIENT_EVENT_REJECTED == 4301
    assert caught.value.close is False
    assert "rate limit of 10 per second" in caught.value.message
    assert authorize_client_event(sess, msg, 100.125).event == "client-typing"  # 1.25 tokens


def test_client_event_rate_follows_the_app() -> None:
    sess = subscribed("private-chat", max_client_events_per_second=2)
    msg = ClientEvent("client-typing", "private-chat", "{}")
    authorize_client_event(sess, msg, 0.0)
    authorize_client_event(sess, msg, 0.0)
    with pytest.raises(PusherError, match="rate limit of 2 per second"):
        authorize_client_event(sess, msg, 0.0)


def test_refused_client_events_spend_no_tokens() -> None:
    sess = subscribed("private-chat", max_client_events_per_second=1)
    for _ in range(5):
        with pytest.raises(PusherError):
            authorize_client_event(sess, ClientEvent("client-x", "private-other", "{}"), 0.0)
    assert authorize_client_event(sess, ClientEvent("client-x", "private-chat", "{}"), 0.0)


def test_the_rate_limit_is_per_connection() -> None:
    first = subscribed("private-chat", max_client_events_per_second=1)
    second = subscribed("private-chat", max_client_events_per_second=1)
    msg = ClientEvent("client-x", "private-chat", "{}")
    authorize_client_event(first, msg, 0.0)
    assert authorize_client_event(second, msg, 0.0)


# ---- authorized (reference 3.2 "authorized connections") -------------------------------


def test_a_new_socket_is_not_authorized_whatever_channels_it_names() -> None:
    # Authorization is earned by the node (a sign-in, or a subscription that passed auth), not
    # read off the channel map: a socket that left its private channel stays authorized.
    sess = session()
    sess.channels.update(dict.fromkeys(["my-channel", "cache-x"]))
    assert sess.authorized is False
    sess.authorized = True
    sess.channels.clear()
    assert sess.authorized is True


def test_traffic_does_not_move_the_open_time() -> None:
    """The auth timeout counts from the open: a socket that only pings must still be closed
    (spec: "neither signed in nor subscribed ... within the timeout")."""
    sess = session(now=0.0)
    sess.seen(20.0)
    assert sess.last_seen == 20.0
    assert sess.opened_at == 0.0


# ---- authorize_signin (reference 3.2) ----------------------------------------------------


def signin(user_data: str | None, auth: str | None = "sign") -> Signin:
    if auth == "sign" and user_data is not None:
        auth = token(f"{SOCKET}::user::{user_data}")
    return Signin(auth=auth, user_data=user_data)


def signin_refused(sess: Session, msg: Signin) -> PusherError:
    with pytest.raises(PusherError) as caught:
        authorize_signin(sess, msg)
    assert caught.value.code == UNAUTHORIZED == 4009
    assert caught.value.close is False
    assert caught.value.message
    return caught.value


def test_signin_reference_shape() -> None:
    data = '{"id": "42", "user_info": {"name": "Alice"}, "watchlist": ["7", "8"]}'
    signed = authorize_signin(session(), signin(data))
    assert signed == SignedIn(
        user_id="42",
        user_info={"name": "Alice"},
        user_data=data,
        watchlist=("7", "8"),
        watchlist_truncated=False,
    )


def test_signin_minimal_user_data() -> None:
    signed = authorize_signin(session(), signin('{"id":"1"}'))
    assert (signed.user_id, signed.user_info, signed.watchlist) == ("1", None, ())
    assert signed.watchlist_truncated is False


def test_signin_user_data_is_kept_exactly_as_received() -> None:
    data = '{ "id" : "1" ,"user_info":{"a":"\\u00e9"} }'
    assert authorize_signin(session(), signin(data)).user_data == data


def test_signin_bad_signature_names_the_string_to_sign() -> None:
    data = '{"id":"1"}'
    bad = token(f"{SOCKET}::user::{data}", secret="wrong")
    error = signin_refused(session(), signin(data, bad))
    assert error.message == (
        f"Invalid signature: Expected HMAC SHA256 hex digest of {SOCKET}::user::{data}, "
        f"but got {bad}"
    )


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param(token(f"{SOCKET}:private-x"), id="channel-token"),
        pytest.param(token('1234.5679::user::{"id":"1"}'), id="other-socket"),
        pytest.param(token(f'{SOCKET}::user::{{"id":"1"}}', key="other-key"), id="other-key"),
        pytest.param("app-key::user::" + "0" * 64, id="docs-example-format"),
    ],
)
def test_signin_signature_must_match(auth: str) -> None:
    signin_refused(session(), signin('{"id":"1"}', auth))


@pytest.mark.parametrize(
    "msg",
    [
        pytest.param(Signin(auth=None, user_data='{"id":"1"}'), id="no-auth"),
        pytest.param(Signin(auth="", user_data='{"id":"1"}'), id="empty-auth"),
        pytest.param(Signin(auth="app-key:00", user_data=None), id="no-user-data"),
    ],
)
def test_signin_needs_auth_and_user_data(msg: Signin) -> None:
    signin_refused(session(), msg)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("not json", id="not-json"),
        pytest.param('["id"]', id="array"),
        pytest.param('"42"', id="string"),
        pytest.param("{}", id="no-id"),
        pytest.param('{"id":""}', id="empty-id"),
        pytest.param('{"id":42}', id="numeric-id"),
        pytest.param('{"id":null}', id="null-id"),
        pytest.param('{"id":"1","watchlist":"2"}', id="watchlist-not-a-list"),
        pytest.param('{"id":"1","watchlist":[true]}', id="watchlist-bool"),
        pytest.param('{"id":"1","watchlist":[1.5]}', id="watchlist-float"),
        pytest.param('{"id":"1","watchlist":[""]}', id="watchlist-empty-id"),
        pytest.param('{"id":"1","watchlist":[{"id":"2"}]}', id="watchlist-object"),
    ],
)
def test_signin_bad_user_data(data: str) -> None:
    signin_refused(session(), signin(data))


def test_signin_id_length_limit() -> None:
    assert authorize_signin(session(), signin(json.dumps({"id": "u" * 128}))).user_id
    signin_refused(session(), signin(json.dumps({"id": "u" * 129})))
    assert authorize_signin(session(max_user_id_length=5), signin('{"id":"12345"}'))
    signin_refused(session(max_user_id_length=5), signin('{"id":"123456"}'))


def test_signin_user_info_size_limit() -> None:
    ok = json.dumps({"id": "1", "user_info": {"a": "x" * (1024 - 8)}})
    assert authorize_signin(session(), signin(ok)).user_info is not None
    big = json.dumps({"id": "1", "user_info": {"a": "x" * (1024 - 7)}})
    error = signin_refused(session(), signin(big))
    assert "1 KB" in error.message


def test_signin_as_another_user_is_refused() -> None:
    sess = session()
    sess.user_id = "42"
    error = signin_refused(sess, signin('{"id":"7"}'))
    assert "42" in error.message


def test_signin_again_as_the_same_user_is_accepted() -> None:
    sess = session()
    sess.user_id = "42"
    assert authorize_signin(sess, signin('{"id":"42"}')).user_id == "42"


def test_watchlist_ids_are_strings_deduplicated_in_order() -> None:
    signed = authorize_signin(session(), signin('{"id":"1","watchlist":[7,"8","7",8,"9"]}'))
    assert signed.watchlist == ("7", "8", "9")
    assert signed.watchlist_truncated is False


def test_watchlist_beyond_the_limit_keeps_the_first_ids() -> None:
    ids = [str(i) for i in range(150)]
    signed = authorize_signin(session(), signin(json.dumps({"id": "1", "watchlist": ids})))
    assert signed.watchlist == tuple(ids[:100])
    assert signed.watchlist_truncated is True


def test_watchlist_limit_follows_the_app_and_counts_distinct_ids() -> None:
    sess = session(max_watchlist_size=2)
    exact = authorize_signin(sess, signin('{"id":"1","watchlist":["a","b","a","b"]}'))
    assert (exact.watchlist, exact.watchlist_truncated) == (("a", "b"), False)
    over = authorize_signin(sess, signin('{"id":"1","watchlist":["a","b","c"]}'))
    assert (over.watchlist, over.watchlist_truncated) == (("a", "b"), True)


def test_signin_does_not_change_the_session() -> None:
    """The node applies the result; the rule itself is pure."""
    sess = session()
    authorize_signin(sess, signin('{"id":"1","watchlist":["2"]}'))
    assert (sess.user_id, sess.watchlist) == (None, ())
