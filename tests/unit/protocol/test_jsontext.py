"""`jsontext` gives what the `json` module gives, value for value and error for error, and the
written-out frames are the text `json.dumps` makes of the same dicts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clarion.protocol import codec
from clarion.protocol.jsontext import compact, loads, loads_bytes, quote

TEXTS = [
    '{"event":"pusher:subscribe","data":{"channel":"c","auth":""}}',
    ' {"a":1}',
    '{"a":1} ',
    '\n{"a":1}\r\n',
    '{"a":1}{"b":2}',
    '{"a":1} x',
    '{"a":12345678901234567890123,"b":1.5e300,"c":-0.0}',
    '{"a":NaN,"b":Infinity,"c":-Infinity}',
    '{"a":1,"a":2}',
    '"\\ud800"',
    '"Zo\\u00eb \\u2713"',
    '"Zoë ✓"',
    "[]",
    "null",
    "0",
    "",
    " ",
    "{",
    '{"a":}',
    "{'a':1}",
    '"tab\there"',
    "\ufeff{}",
]
BODIES = [text.encode() for text in TEXTS] + [
    b"\xef\xbb\xbf{}",  # UTF-8 BOM: json.loads of bytes accepts it
    '{"a":"Zoë"}'.encode("utf-16"),
    '{"a":"Zoë"}'.encode("utf-16-le"),
    '{"a":1}'.encode("utf-32"),
    b'"\xed\xa0\x80"',  # a surrogate as UTF-8 bytes: json decodes it with surrogatepass
    b'{"a":"\xff"}',
]


def _outcome(fn: Any, arg: Any) -> tuple[str, Any]:
    try:
        return "value", fn(arg)
    except Exception as error:
        return type(error).__name__, str(error)


def _same(left: tuple[str, Any], right: tuple[str, Any]) -> bool:
    # NaN != NaN: compare values through their repr, which json.dumps keeps apart.
    return left[0] == right[0] and repr(left[1]) == repr(right[1])


@pytest.mark.parametrize("text", TEXTS)
def test_loads_matches_json_loads(text: str) -> None:
    assert _same(_outcome(loads, text), _outcome(json.loads, text))


@pytest.mark.parametrize("body", BODIES)
def test_loads_bytes_matches_json_loads(body: bytes) -> None:
    assert _same(_outcome(loads_bytes, body), _outcome(json.loads, body))


def test_deep_nesting_fails_as_json_loads_does() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RecursionError):
        json.loads(deep)
    with pytest.raises(RecursionError):
        loads(deep)
    with pytest.raises(RecursionError):
        loads_bytes(deep.encode())


STRINGS = ["plain", 'quo"te', "back\\slash", "new\nline\t\x00\x1f", "Zoë ✓", "\ud800", "", "/"]


@pytest.mark.parametrize("text", STRINGS)
def test_quote_matches_json_dumps(text: str) -> None:
    assert quote(text) == json.dumps(text)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("text", STRINGS)
def test_channel_event_is_what_json_dumps_makes_of_the_dict(text: str) -> None:
    frame = {"event": f"e{text}", "channel": f"c{text}", "data": text}
    assert codec.channel_event(frame["event"], frame["channel"], text) == _compact(frame)
    with_user = {**frame, "user_id": f"u{text}"}
    assert codec.channel_event(frame["event"], frame["channel"], text, f"u{text}") == _compact(
        with_user
    )


@pytest.mark.parametrize("channel", ["my-channel", "private-encrypted-x", "c\u00eb", 'c"\\'])
def test_subscription_succeeded_is_what_json_dumps_makes_of_the_dict(channel: str) -> None:
    frame = {"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"}
    assert codec.subscription_succeeded(channel) == _compact(frame)


@pytest.mark.parametrize("socket_id", ["123456.7891011", "1.2", 'odd"id\\'])
def test_connection_established_is_what_json_dumps_makes_of_the_dicts(socket_id: str) -> None:
    data = _compact({"socket_id": socket_id, "activity_timeout": 120})
    expected = _compact({"event": "pusher:connection_established", "data": data})
    assert codec.connection_established(socket_id, 120) == expected


VALUES: list[Any] = [
    {"S": "S0000000001T00000000000000000001xxxx", "n": 12345678901234567890123},
    {"f": 1.5, "big": 1e300, "neg0": -0.0, "nan": float("nan"), "inf": float("-inf")},
    {"nested": [1, None, True, False, {"a": []}], "": {}},
    {7: "int key", 2.5: "float key", None: "null key", True: "bool key"},
    "Zoë ✓ \ud800",
    ["tab\t", 'quote"', "back\\slash", "\x00"],
    12345678901234567890123,
    None,
]


@pytest.mark.parametrize("value", VALUES)
def test_compact_matches_json_dumps(value: Any) -> None:
    assert compact(value) == json.dumps(value, separators=(",", ":"))


def test_compact_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError) as ours:
        compact({"a": object})
    with pytest.raises(TypeError) as theirs:
        json.dumps({"a": object}, separators=(",", ":"))
    assert str(ours.value) == str(theirs.value)
