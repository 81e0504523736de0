"""Text frame <-> message (reference 1.2-1.5, 2.3-2.6, 3.2, 4)."""

from __future__ import annotations

import json

import pytest

from clarion.protocol import codec
from clarion.protocol.errors import INVALID_MESSAGE, PusherError
from clarion.protocol.messages import ClientEvent, Ping, Pong, Signin, Subscribe, Unsubscribe

PRESENCE_SDK_DATA = '{"user_id": "42", "user_info": {"name": "Alice"}}'

# ---- client to server: every shape -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('{"event":"pusher:ping","data":{}}', Ping(), id="ping"),
        pytest.param('{"event":"pusher:ping"}', Ping(), id="ping-without-data"),
        pytest.param('{"event":"pusher:pong","data":{}}', Pong(), id="pong"),
        pytest.param('{"event":"pusher:pong","data":"{}"}', Pong(), id="pong-string-data"),
        pytest.param(
            '{"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}}',
            Subscribe(channel="my-channel", auth="", channel_data=None),
            id="subscribe-public",
        ),
        pytest.param(
            '{"event":"pusher:subscribe","data":{"channel":"my-channel"}}',
            Subscribe(channel="my-channel", auth=None, channel_data=None),
            id="subscribe-without-auth",
        ),
        pytest.param(
            '{"event":"pusher:subscribe","data":{"auth":"app-key:abc","channel":"private-x"}}',
            Subscribe(channel="private-x", auth="app-key:abc", channel_data=None),
            id="subscribe-private",
        ),
        pytest.param(
            json.dumps(
                {
                    "event": "pusher:subscribe",
                    "data": {
                        "auth": "app-key:abc",
                        "channel_data": PRESENCE_SDK_DATA,
                        "channel": "presence-x",
                    },
                }
            ),
            Subscribe(channel="presence-x", auth="app-key:abc", channel_data=PRESENCE_SDK_DATA),
            id="subscribe-presence-channel-data-kept-verbatim",
        ),
        pytest.param(
            '{"event":"pusher:subscribe","data":{"channel":"presence-x",'
            '"channel_data":{"user_id": 7}}}',
            Subscribe(channel="presence-x", auth=None, channel_data='{"user_id":7}'),
            id="subscribe-presence-object-channel-data",
        ),
        pytest.param(
            '{"event":"pusher:unsubscribe","data":{"channel":"my-channel"}}',
            Unsubscribe(channel="my-channel"),
            id="unsubscribe",
        ),
        pytest.param(
            '{"event":"pusher:signin","data":{"auth":"app-key:abc","user_data":"{\\"id\\":\\"42\\"}"}}',
            Signin(auth="app-key:abc", user_data='{"id":"42"}'),
            id="signin",
        ),
        pytest.param(
            '{"event":"pusher:signin","data":{}}',
            Signin(auth=None, user_data=None),
            id="signin-empty",
        ),
        pytest.param(
            '{"event":"client-typing","data":{"who":"me"},"channel":"private-chat"}',
            ClientEvent(event="client-typing", channel="private-chat", data='{"who":"me"}'),
            id="client-event-object-data",
        ),
        pytest.param(
            '{"event":"client-typing","data":"raw text","channel":"private-chat"}',
            ClientEvent(event="client-typing", channel="private-chat", data="raw text"),
            id="client-event-string-data-passed-through",
        ),
        pytest.param(
            '{"event":"client-typing","channel":"private-chat"}',
            ClientEvent(event="client-typing", channel="private-chat", data="{}"),
            id="client-event-without-data",
        ),
        pytest.param(
            '{"event":"client-x","data":[1,"é"],"channel":"presence-chat"}',
            ClientEvent(event="client-x", channel="presence-chat", data='[1,"\\u00e9"]'),
            id="client-event-array-data-unicode-escaped",
        ),
        pytest.param(
            '{"event":"other-event","data":{},"channel":"private-chat"}',
            ClientEvent(event="other-event", channel="private-chat", data="{}"),
            id="non-client-prefix-left-to-the-session-rules",
        ),
    ],
)
def test_decode_shapes(text: str, expected: object) -> None:
    assert codec.decode(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            '{"event":"pusher:subscribe","data":"{\\"auth\\":\\"\\",\\"channel\\":\\"my-channel\\"}"}',
            Subscribe(channel="my-channel", auth="", channel_data=None),
            id="subscribe",
        ),
        pytest.param(
            '{"event":"pusher:unsubscribe","data":"{\\"channel\\":\\"my-channel\\"}"}',
            Unsubscribe(channel="my-channel"),
            id="unsubscribe",
        ),
        pytest.param(
            json.dumps(
                {
                    "event": "pusher:subscribe",
                    "data": json.dumps(
                        {"channel": "presence-x", "auth": "k:s", "channel_data": PRESENCE_SDK_DATA}
                    ),
                }
            ),
            Subscribe(channel="presence-x", auth="k:s", channel_data=PRESENCE_SDK_DATA),
            id="presence-channel-data-still-verbatim",
        ),
        pytest.param(
            '{"event":"pusher:signin","data":"{\\"auth\\":\\"k:s\\",\\"user_data\\":\\"{}\\"}"}',
            Signin(auth="k:s", user_data="{}"),
            id="signin",
        ),
    ],
)
def test_decode_is_lenient_about_string_data(text: str, expected: object) -> None:
    """Reference 1.2: a `data` string holding JSON is decoded (Reverb does the same)."""
    assert codec.decode(text) == expected


BAD_INPUTS = [
    pytest.param("not json", id="invalid-json"),
    pytest.param("", id="empty-text"),
    pytest.param('{"event":"pusher:ping"', id="truncated-json"),
    pytest.param("[]", id="array"),
    pytest.param('"pusher:ping"', id="string"),
    pytest.param("42", id="number"),
    pytest.param("null", id="null"),
    pytest.param("{}", id="missing-event"),
    pytest.param('{"data":{}}', id="missing-event-with-data"),
    pytest.param('{"event":""}', id="empty-event"),
    pytest.param('{"event":42}', id="event-not-text"),
    pytest.param('{"event":null}', id="event-null"),
    pytest.param('{"event":"pusher:bogus","data":{}}', id="unknown-pusher-event"),
    pytest.param('{"event":"pusher:connection_established","data":{}}', id="server-only-event"),
    pytest.param('{"event":"pusher_internal:member_added","data":{}}', id="pusher-internal-event"),
    pytest.param('{"event":"client-typing","data":{}}', id="client-event-without-channel"),
    pytest.param(
        '{"event":"client-typing","channel":"","data":{}}', id="client-event-empty-channel"
    ),
    pytest.param(
        '{"event":"client-typing","channel":7,"data":{}}', id="client-event-channel-not-text"
    ),
    pytest.param('{"event":"pusher:subscribe"}', id="subscribe-without-data"),
    pytest.param('{"event":"pusher:subscribe","data":[]}', id="subscribe-data-array"),
    pytest.param('{"event":"pusher:subscribe","data":"nope"}', id="subscribe-data-bad-string"),
    pytest.param('{"event":"pusher:subscribe","data":{}}', id="subscribe-without-channel"),
    pytest.param(
        '{"event":"pusher:subscribe","data":{"channel":""}}', id="subscribe-empty-channel"
    ),
    pytest.param(
        '{"event":"pusher:subscribe","data":{"channel":5}}', id="subscribe-channel-number"
    ),
    pytest.param(
        '{"event":"pusher:subscribe","data":{"channel":"private-x","auth":5}}',
        id="subscribe-auth-not-text",
    ),
    pytest.param('{"event":"pusher:unsubscribe","data":{}}', id="unsubscribe-without-channel"),
    pytest.param('{"event":"pusher:unsubscribe"}', id="unsubscribe-without-data"),
    pytest.param('{"event":"pusher:signin"}', id="signin-without-data"),
    pytest.param(
        '{"event":"pusher:signin","data":{"user_data":{"id":"1"}}}', id="signin-user-data-object"
    ),
]


@pytest.mark.parametrize("text", BAD_INPUTS)
def test_decode_bad_input_raises_a_non_closing_pusher_error(text: str) -> None:
    with pytest.raises(PusherError) as caught:
        codec.decode(text)
    error = caught.value
    assert error.code == INVALID_MESSAGE
    assert isinstance(error.message, str)
    assert error.message
    assert error.close is False


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        ("{}", "missing event"),
        ('{"event":"pusher:bogus"}', "pusher:bogus"),
        ('{"event":"client-typing","data":{}}', "client-typing has no channel"),
        ('{"event":"pusher:subscribe","data":{}}', "needs channel"),
    ],
)
def test_decode_error_messages_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(PusherError, match=fragment):
        codec.decode(text)


# ---- server to client --------------------------------------------------------------------


def test_connection_established_is_double_encoded() -> None:
    text = codec.connection_established("123456.7891011", 120)
    # Reference 1.3, byte for byte.
    assert text == (
        '{"event":"pusher:connection_established",'
        '"data":"{\\"socket_id\\":\\"123456.7891011\\",\\"activity_timeout\\":120}"}'
    )
    frame = json.loads(text)
    assert isinstance(frame["data"], str)
    assert json.loads(frame["data"]) == {"socket_id": "123456.7891011", "activity_timeout": 120}


def test_error_data_is_an_object_with_code_and_message() -> None:
    frame = json.loads(codec.error(4001, "App key nope does not exist"))
    assert frame == {
        "event": "pusher:error",
        "data": {"code": 4001, "message": "App key nope does not exist"},
    }


def test_error_without_code_sends_null() -> None:
    frame = json.loads(codec.error(None, "Existing subscription to channel presence-x"))
    assert frame["data"] == {"code": None, "message": "Existing subscription to channel presence-x"}
    assert "channel" not in frame


def test_ping_and_pong_frames() -> None:
    assert codec.PONG == '{"event":"pusher:pong","data":"{}"}'
    assert codec.PING == '{"event":"pusher:ping","data":"{}"}'


def test_subscription_succeeded_defaults_to_empty_object_text() -> None:
    frame = json.loads(codec.subscription_succeeded("my-channel"))
    assert frame == {
        "event": "pusher_internal:subscription_succeeded",
        "channel": "my-channel",
        "data": "{}",
    }


def test_presence_roster_has_ids_hash_and_count() -> None:
    roster = codec.presence_roster({"42": {"name": "Alice"}, "7": {"name": "Bob"}})
    assert json.loads(roster) == {
        "presence": {
            "ids": ["42", "7"],
            "hash": {"42": {"name": "Alice"}, "7": {"name": "Bob"}},
            "count": 2,
        }
    }
    frame = json.loads(codec.subscription_succeeded("presence-x", roster))
    assert isinstance(frame["data"], str)
    assert json.loads(frame["data"])["presence"]["count"] == 2


def test_presence_roster_keeps_null_user_info() -> None:
    assert json.loads(codec.presence_roster({"1": None})) == {
        "presence": {"ids": ["1"], "hash": {"1": None}, "count": 1}
    }


def test_member_event_data() -> None:
    assert json.loads(codec.member_added_data("42", {"name": "Alice"})) == {
        "user_id": "42",
        "user_info": {"name": "Alice"},
    }
    assert json.loads(codec.member_removed_data("42")) == {"user_id": "42"}


def test_subscription_error_shape() -> None:
    frame = json.loads(codec.subscription_error("private-x", "AuthError", "Invalid signature", 401))
    assert frame == {
        "event": "pusher:subscription_error",
        "channel": "private-x",
        "data": {"type": "AuthError", "error": "Invalid signature", "status": 401},
    }


def test_channel_event_relays_data_unchanged() -> None:
    # Reference 9.3: the expected delivery of the SDK trigger.
    text = codec.channel_event("my-event", "my-channel", '{"message": "hello"}')
    assert (
        text == '{"event":"my-event","channel":"my-channel","data":"{\\"message\\": \\"hello\\"}"}'
    )
    assert "user_id" not in json.loads(text)


def test_channel_event_with_user_id() -> None:
    frame = json.loads(codec.channel_event("client-typing", "presence-chat", '{"a":1}', "42"))
    assert frame == {
        "event": "client-typing",
        "channel": "presence-chat",
        "data": '{"a":1}',
        "user_id": "42",
    }


def test_encoding_escapes_non_ascii_and_round_trips() -> None:
    """Output is ASCII, so no input (not even a lone surrogate) can make an unencodable frame."""
    text = codec.channel_event("ev", "c", "Zoë ✓ \ud800")
    assert text.isascii()
    assert json.loads(text)["data"] == "Zoë ✓ \ud800"


# ---- hostile input: the contract is still "PusherError for bad input" --------------------

# 10,000 levels fit in one 10 KB frame, which the transport lets through to `decode`.
DEEP = 10_000


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[" * DEEP, id="bare-nesting"),
        pytest.param(
            '{"event":"client-x","channel":"private-c","data":' + "[" * DEEP + "]" * DEEP + "}",
            id="nested-client-data",
        ),
    ],
)
def test_decode_deeply_nested_json_is_a_pusher_error(text: str) -> None:
    with pytest.raises(PusherError) as caught:
        codec.decode(text)
    assert caught.value.code == INVALID_MESSAGE
    assert caught.value.close is False


# ---- users, cache channels and counts (reference 2.7, 2.8, 3.2, 3.3) ---------------------


def test_signin_success_echoes_user_data_as_a_string() -> None:
    # Reference 3.2: data is a JSON string whose user_data is the string as received.
    assert codec.signin_success('{"id":"42"}') == (
        r'{"event":"pusher:signin_success","data":"{\"user_data\":\"{\\\"id\\\":\\\"42\\\"}\"}"}'
    )
    user_data = '{"id": "42", "user_info": {"name": "Alice"}}'
    frame = json.loads(codec.signin_success(user_data))
    assert "channel" not in frame
    # pusher-js: JSON.parse(data).user_data, then JSON.parse of that.
    assert json.loads(frame["data"]) == {"user_data": user_data}


def test_watchlist_events_shape() -> None:
    text = codec.watchlist_events("online", ["7", "8"])
    assert text == (
        '{"event":"pusher_internal:watchlist_events",'
        '"data":"{\\"events\\":[{\\"name\\":\\"online\\",\\"user_ids\\":[\\"7\\",\\"8\\"]}]}"}'
    )
    assert "channel" not in json.loads(text)


def test_watchlist_events_with_no_ids() -> None:
    frame = json.loads(codec.watchlist_events("online", []))
    assert json.loads(frame["data"]) == {"events": [{"name": "online", "user_ids": []}]}


def test_cache_miss_shape() -> None:
    assert codec.cache_miss("cache-x") == '{"event":"pusher:cache_miss","channel":"cache-x"}'


def test_subscription_count_data() -> None:
    assert codec.subscription_count_data(3) == '{"subscription_count":3}'
    frame = json.loads(
        codec.channel_event(
            "pusher_internal:subscription_count", "my-channel", codec.subscription_count_data(3)
        )
    )
    # Reference 2.7, byte for byte as pusher-js parses it.
    assert frame == {
        "event": "pusher_internal:subscription_count",
        "channel": "my-channel",
        "data": '{"subscription_count":3}',
    }


# ---- encoder-free fast paths give the encoder's exact text ---------------------------------


@pytest.mark.parametrize("socket_id", ["1.2", "123456789.987654321"])
@pytest.mark.parametrize("timeout", [1, 30, 120])
def test_connection_established_fast_path_is_the_encoders_text(
    socket_id: str, timeout: int
) -> None:
    data = json.dumps({"socket_id": socket_id, "activity_timeout": timeout}, separators=(",", ":"))
    expected = json.dumps(
        {"event": "pusher:connection_established", "data": data}, separators=(",", ":")
    )
    assert codec.connection_established(socket_id, timeout) == expected


@pytest.mark.parametrize(
    "channel", ["my-channel", "private-a_b=c@d,e.f;g", "#server-to-user-42", "presence-x"]
)
def test_subscription_succeeded_fast_path_is_the_encoders_text(channel: str) -> None:
    expected = codec.channel_event("pusher_internal:subscription_succeeded", channel, "{}")
    assert codec.subscription_succeeded(channel) == expected
    assert json.loads(codec.subscription_succeeded(channel))["channel"] == channel
