"""HTTP API bodies and query rules (reference 2.9, 5.3, 5.4)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clarion.protocol import api
from clarion.protocol.errors import ApiError

from ..fakes import make_app

APP = make_app()


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def trigger_body(**overrides: Any) -> bytes:
    fields: dict[str, Any] = {"name": "my-event", "channels": ["my-channel"], "data": "{}"}
    fields.update(overrides)
    return json.dumps({k: v for k, v in fields.items() if v is not ...}).encode()


def status_of(call: Any, *args: Any) -> int:
    with pytest.raises(ApiError) as caught:
        call(*args)
    assert caught.value.message
    return caught.value.status


# ---- parse_trigger -----------------------------------------------------------------------


def test_reference_9_3_trigger_body() -> None:
    raw = (
        b'{"name": "my-event", "channels": ["my-channel"], "data": "{\\"message\\": \\"hello\\"}",'
        b' "socket_id": "1234.5678"}'
    )
    assert api.parse_trigger(raw, APP) == api.Trigger(
        event="my-event",
        channels=("my-channel",),
        data='{"message": "hello"}',
        socket_id="1234.5678",  # type: ignore[arg-type]
        info=frozenset(),
    )


def test_channels_list() -> None:
    trigger = api.parse_trigger(trigger_body(channels=["a", "presence-room"]), APP)
    assert trigger.channels == ("a", "presence-room")
    assert trigger.socket_id is None


def test_php_single_channel() -> None:
    raw = b'{"name":"my-event","data":"{\\"message\\":\\"hello\\"}","channel":"my-channel"}'
    trigger = api.parse_trigger(raw, APP)
    assert trigger.channels == ("my-channel",)
    assert trigger.data == '{"message":"hello"}'


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(trigger_body(channels=...), id="no-channels-nor-channel"),
        pytest.param(trigger_body(channels=[]), id="empty-channels"),
        pytest.param(trigger_body(channels="my-channel"), id="channels-not-a-list"),
        pytest.param(trigger_body(channels=[None]), id="channel-null"),
        pytest.param(trigger_body(channels=["bad name"]), id="invalid-channel-name"),
        pytest.param(trigger_body(channels=["x" * 201]), id="channel-name-201"),
        pytest.param(trigger_body(channels=..., channel="bad name"), id="php-invalid-channel"),
        pytest.param(trigger_body(name=...), id="missing-name"),
        pytest.param(trigger_body(name="pusher:x"), id="reserved-name"),
        pytest.param(trigger_body(name="pusher_internal:x"), id="reserved-internal-name"),
        pytest.param(trigger_body(name="e" * 201), id="name-201"),
        pytest.param(trigger_body(data=...), id="missing-data"),
        pytest.param(trigger_body(data={"message": "hello"}), id="data-object"),
        pytest.param(trigger_body(data=42), id="data-number"),
        pytest.param(trigger_body(data=None), id="data-null"),
        pytest.param(b"not json", id="invalid-json"),
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(b"", id="empty-body"),
        pytest.param(b'{"name":' + b"[" * 100_000 + b"]" * 100_000 + b"}", id="nested-too-deep"),
    ],
)
def test_bad_trigger_is_400(raw: bytes) -> None:
    assert status_of(api.parse_trigger, raw, APP) == 400


def test_at_most_100_channels() -> None:
    hundred = [f"c{i}" for i in range(100)]
    assert len(api.parse_trigger(trigger_body(channels=hundred), APP).channels) == 100
    assert status_of(api.parse_trigger, trigger_body(channels=[*hundred, "c100"]), APP) == 400


def test_channel_limit_follows_the_app() -> None:
    app = make_app(max_channels_per_trigger=2)
    assert status_of(api.parse_trigger, trigger_body(channels=["a", "b", "c"]), app) == 400


def test_encrypted_channel_alone_is_fine() -> None:
    for raw in (
        trigger_body(channels=["private-encrypted-x"]),
        trigger_body(channels=..., channel="private-encrypted-x"),
    ):
        assert api.parse_trigger(raw, APP).channels == ("private-encrypted-x",)


@pytest.mark.parametrize(
    "channels",
    [
        ["private-encrypted-x", "my-channel"],
        ["my-channel", "private-encrypted-x"],
        ["private-encrypted-a", "private-encrypted-b"],
    ],
)
def test_encrypted_channel_with_another_is_400(channels: list[str]) -> None:
    assert status_of(api.parse_trigger, trigger_body(channels=channels), APP) == 400


def test_data_of_exactly_10_kb_passes_and_one_byte_more_is_413() -> None:
    assert api.parse_trigger(trigger_body(data="x" * 10240), APP).data == "x" * 10240
    assert status_of(api.parse_trigger, trigger_body(data="x" * 10241), APP) == 413


def test_data_size_is_counted_in_utf8_bytes() -> None:
    assert status_of(api.parse_trigger, trigger_body(data="é" * 5121), APP) == 413
    assert api.parse_trigger(trigger_body(data="é" * 5120), APP)


def test_data_limit_follows_the_app() -> None:
    app = make_app(max_message_size_kb=20)
    assert api.parse_trigger(trigger_body(data="x" * 20480), app)
    assert status_of(api.parse_trigger, trigger_body(data="x" * 20481), app) == 413


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"name":"e","channels":["c"],"data":"\\ud800"}', id="data"),
        pytest.param(b'{"name":"e\\ud800","channels":["c"],"data":"x"}', id="event-name"),
    ],
)
def test_lone_surrogate_is_a_400(raw: bytes) -> None:
    """JSON allows `\\ud800` escapes, but such text cannot be sent on as UTF-8 frames."""
    assert status_of(api.parse_trigger, raw, APP) == 400


def test_laravel_event_name_is_accepted() -> None:
    raw = trigger_body(name="App\\Events\\OrderShipped")
    assert api.parse_trigger(raw, APP).event == "App\\Events\\OrderShipped"


@pytest.mark.parametrize("socket_id", ["1234.5678", "1.1", "123456789.987654321"])
def test_valid_socket_id(socket_id: str) -> None:
    assert api.parse_trigger(trigger_body(socket_id=socket_id), APP).socket_id == socket_id


@pytest.mark.parametrize("socket_id", [None, ""])
def test_absent_socket_id(socket_id: str | None) -> None:
    assert api.parse_trigger(trigger_body(socket_id=socket_id), APP).socket_id is None


@pytest.mark.parametrize(
    "socket_id",
    [
        "abc",
        "1234",
        "1234.",
        ".5678",
        "1234.5678.9",
        "1234:5678",
        "-1.5",
        " 1.2",
        "1.2\n",
        1234,
        12.5,
    ],
)
def test_invalid_socket_id_is_400(socket_id: object) -> None:
    assert status_of(api.parse_trigger, trigger_body(socket_id=socket_id), APP) == 400


def test_info_parsing() -> None:
    trigger = api.parse_trigger(trigger_body(info="user_count,subscription_count"), APP)
    assert trigger.info == frozenset({"user_count", "subscription_count"})
    assert api.parse_trigger(trigger_body(info="subscription_count"), APP).info == {
        "subscription_count"
    }
    assert api.parse_trigger(trigger_body(info=""), APP).info == frozenset()


@pytest.mark.parametrize("info", ["cache", "user_count,bogus", ["user_count"], 1])
def test_bad_trigger_info_is_400(info: object) -> None:
    assert status_of(api.parse_trigger, trigger_body(info=info), APP) == 400


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, frozenset()),
        ("", frozenset()),
        ("user_count", {"user_count"}),
        (" user_count , subscription_count ", {"user_count", "subscription_count"}),
        ("user_count,,", {"user_count"}),
        ("cache,user_count", {"cache", "user_count"}),
    ],
)
def test_parse_info(value: object, expected: set[str]) -> None:
    assert api.parse_info(value, api.CHANNEL_INFO) == expected


def test_parse_info_rejects_unknown_attributes_by_name() -> None:
    with pytest.raises(ApiError, match="bogus") as caught:
        api.parse_info("user_count,bogus", api.CHANNEL_INFO)
    assert caught.value.status == 400


# ---- parse_batch -------------------------------------------------------------------------


def test_reference_9_3_batch_body() -> None:
    raw = (
        b'{"batch": [{"channel": "my-channel", "name": "ev1", "data": "{\\"n\\": 1}"},'
        b' {"channel": "presence-room", "name": "ev2", "data": "plain text",'
        b' "socket_id": "1234.5678"}]}'
    )
    first, second = api.parse_batch(raw, APP)
    assert (first.event, first.channels, first.data, first.socket_id) == (
        "ev1",
        ("my-channel",),
        '{"n": 1}',
        None,
    )
    assert (second.event, second.channels, second.data, second.socket_id) == (
        "ev2",
        ("presence-room",),
        "plain text",
        "1234.5678",
    )


def _item(i: int, **extra: Any) -> dict[str, Any]:
    return {"channel": f"c{i}", "name": "ev", "data": "{}", **extra}


def test_batch_of_10_passes_and_11_is_400() -> None:
    assert len(api.parse_batch(body(batch=[_item(i) for i in range(10)]), APP)) == 10
    assert status_of(api.parse_batch, body(batch=[_item(i) for i in range(11)]), APP) == 400


def test_batch_item_info() -> None:
    triggers = api.parse_batch(body(batch=[_item(0, info="subscription_count"), _item(1)]), APP)
    assert [t.info for t in triggers] == [frozenset({"subscription_count"}), frozenset()]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(body(batch=[{"name": "ev", "data": "{}"}]), id="item-without-channel"),
        pytest.param(
            body(batch=[{"channels": ["a"], "name": "ev", "data": "{}"}]),
            id="item-with-channels-list",
        ),
        pytest.param(body(batch=[_item(0), "nope"]), id="item-not-object"),
        pytest.param(body(batch=[_item(0, channel="bad name")]), id="item-invalid-channel"),
        pytest.param(body(batch=[_item(0, name="pusher:x")]), id="item-reserved-name"),
        pytest.param(body(batch=[_item(0, data={"a": 1})]), id="item-data-object"),
        pytest.param(body(batch=[_item(0, socket_id="nope")]), id="item-bad-socket-id"),
        pytest.param(body(batch=[]), id="empty-batch"),
        pytest.param(body(batch={}), id="batch-not-a-list"),
        pytest.param(body(events=[_item(0)]), id="missing-batch"),
        pytest.param(b"{", id="invalid-json"),
    ],
)
def test_bad_batch_is_400(raw: bytes) -> None:
    assert status_of(api.parse_batch, raw, APP) == 400


def test_batch_item_data_over_10_kb_is_413() -> None:
    raw = body(batch=[_item(0), _item(1, data="x" * 10241)])
    assert status_of(api.parse_batch, raw, APP) == 413


# ---- info checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "attrs"),
    [
        ("presence-room", {"user_count"}),
        ("presence-room", {"user_count", "subscription_count"}),
        ("my-channel", {"subscription_count"}),
        ("private-x", frozenset()),
        ("cache-x", {"cache"}),
        ("private-cache-x", {"cache", "subscription_count"}),
        ("presence-cache-x", {"cache", "user_count"}),
    ],
)
def test_channel_info_allowed(channel: str, attrs: set[str]) -> None:
    api.check_channel_info(channel, frozenset(attrs))


@pytest.mark.parametrize(
    ("channel", "attrs"),
    [
        ("my-channel", {"user_count"}),
        ("private-x", {"user_count"}),
        ("private-encrypted-x", {"user_count"}),
        ("my-channel", {"cache"}),
        ("presence-room", {"cache"}),
    ],
)
def test_channel_info_not_applicable_is_400(channel: str, attrs: set[str]) -> None:
    assert status_of(api.check_channel_info, channel, frozenset(attrs)) == 400


@pytest.mark.parametrize(
    ("prefix", "attrs"),
    [
        ("presence-", {"user_count"}),
        ("presence-room", {"user_count"}),
        ("", set()),
        ("private-", set()),
    ],
)
def test_channels_list_allowed(prefix: str, attrs: set[str]) -> None:
    api.check_channels_list(prefix, frozenset(attrs))


@pytest.mark.parametrize(
    ("prefix", "attrs"),
    [
        ("", {"user_count"}),
        ("private-", {"user_count"}),
        ("presence", {"user_count"}),
        ("presence-", {"subscription_count"}),
        ("", {"cache"}),
    ],
)
def test_channels_list_refused_is_400(prefix: str, attrs: set[str]) -> None:
    assert status_of(api.check_channels_list, prefix, frozenset(attrs)) == 400


def test_users_only_for_presence_channels() -> None:
    api.check_presence_channel("presence-room")
    assert status_of(api.check_presence_channel, "private-room") == 400
    assert status_of(api.check_presence_channel, "my-channel") == 400
