"""Reference 1.2, 7: bad input never crashes the server nor disturbs other clients. After each
case another connected client must still receive a triggered event, and the server must not
have logged an error."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlencode

import pytest
from it_support import (
    HOST,
    MAIN,
    TIMEOUT,
    RawWebSocket,
    error_code,
    http_request,
    open_ws,
    refused,
    signed_params,
)

EVENTS = f"/apps/{MAIN.id}/events"


async def _observer(server):
    observer = await server.connect()
    await server.subscribe_ok(observer, "news")
    return observer


async def _assert_unharmed(server, *clients):
    """Every given client still receives a triggered event; nothing was logged as an error."""
    await server.trigger("news", "still-alive", "yes")
    for client in clients:
        msg = await client.expect("still-alive", "news")
        assert msg["data"] == "yes"
    assert server.server_errors() == []


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("{not json", id="invalid-json"),
        pytest.param("", id="empty-text"),
        pytest.param("[1, 2, 3]", id="json-array"),
        pytest.param('"just a string"', id="json-string"),
        pytest.param("42", id="json-number"),
        pytest.param("null", id="json-null"),
        pytest.param('{"data": {}}', id="missing-event"),
        pytest.param('{"event": 7, "data": {}}', id="event-not-a-string"),
        pytest.param('{"event": "pusher:bogus", "data": {}}', id="unknown-pusher-event"),
        pytest.param(
            '{"event": "pusher_internal:subscription_succeeded", "channel": "news", "data": "{}"}',
            id="pusher-internal-from-client",
        ),
        pytest.param('{"event": "pusher:subscribe"}', id="subscribe-without-data"),
        pytest.param('{"event": "pusher:subscribe", "data": "{oops"}', id="subscribe-bad-data"),
        pytest.param('{"event": "pusher:subscribe", "data": {"channel": 5}}', id="channel-number"),
        pytest.param('{"event": "pusher:subscribe", "data": []}', id="subscribe-data-array"),
        pytest.param('{"event": "pusher:unsubscribe", "data": {}}', id="unsubscribe-no-channel"),
        pytest.param('{"event": "client-x", "data": {}}', id="client-event-no-channel"),
        pytest.param('{"event": "client-x", "channel": ["a"], "data": {}}', id="channel-list"),
        pytest.param("[" * 5000 + "]" * 5000, id="deeply-nested-json"),
        pytest.param(
            '{"event": "client-x", "channel": "news", "data": ' + "[" * 4000 + "]" * 4000 + "}",
            id="deeply-nested-data",
        ),
    ],
)
async def test_bad_text_frame_is_survived(server, payload):
    observer = await _observer(server)
    offender = await server.connect()
    await server.subscribe_ok(offender, "news")
    await offender.send_raw(payload)
    frames = await offender.until_pong()
    # Reference 7: answer with pusher:error or ignore; never close.
    assert all(f["event"] == "pusher:error" for f in frames), frames
    await _assert_unharmed(server, observer, offender)


async def test_binary_frame_is_survived(server):
    observer = await _observer(server)
    offender = await server.connect()
    await server.subscribe_ok(offender, "news")
    await offender.send_raw(b"\x00\x01binary\xff")
    frames = await offender.until_pong()
    assert all(f["event"] == "pusher:error" for f in frames), frames
    await _assert_unharmed(server, observer, offender)


async def test_invalid_utf8_text_frame_is_closed_with_1007(server):
    observer = await _observer(server)
    raw = await RawWebSocket.open(server.port)
    try:
        opcode, payload = await raw.read_frame()
        assert opcode == 0x1
        assert json.loads(payload)["event"] == "pusher:connection_established"
        raw.send_frame(0x1, b'{"event":"pusher:ping","data":"\xff\xfe"}')
        code, _ = await raw.read_until_close()
        assert code == 1007
    finally:
        await raw.close()
    await _assert_unharmed(server, observer)


async def test_raw_masked_frames_work(server):
    # The raw client itself is sound: a valid masked text frame gets its answer.
    raw = await RawWebSocket.open(server.port)
    try:
        await raw.read_frame()
        raw.send_frame(0x1, b'{"event":"pusher:ping","data":{}}')
        opcode, payload = await raw.read_frame()
        assert opcode == 0x1
        assert json.loads(payload)["event"] == "pusher:pong"
    finally:
        await raw.close()


PING = b'{"event":"pusher:ping","data":{}}'


async def test_several_frames_in_one_write_are_each_answered_in_order(server):
    # Text, a control ping with a payload, a 16-bit-length text frame: one TCP write.
    padded = b'{"event":"pusher:ping","data":{},"pad":"' + b"x" * 300 + b'"}'
    raw = await RawWebSocket.open(server.port)
    try:
        await raw.read_frame()
        frames = (
            raw.frame_bytes(0x1, PING) + raw.frame_bytes(0x9, b"hi") + raw.frame_bytes(0x1, padded)
        )
        raw.writer.write(frames)
        answers = [await raw.read_frame() for _ in range(3)]
        assert answers[0][0] == 0x1
        assert json.loads(answers[0][1])["event"] == "pusher:pong"
        assert answers[1] == (0xA, b"hi")
        assert answers[2][0] == 0x1
        assert json.loads(answers[2][1])["event"] == "pusher:pong"
    finally:
        await raw.close()


async def test_a_frame_arriving_a_byte_at_a_time_is_reassembled(server):
    long_ping = b'{"event":"pusher:ping","data":{"pad":"' + b"y" * 200 + b'"}}'
    raw = await RawWebSocket.open(server.port)
    try:
        await raw.read_frame()
        for frame in (raw.frame_bytes(0x1, PING), raw.frame_bytes(0x1, long_ping)):
            for index in range(len(frame)):
                raw.writer.write(frame[index : index + 1])
                await raw.writer.drain()
            opcode, payload = await raw.read_frame()
            assert opcode == 0x1
            assert json.loads(payload)["event"] == "pusher:pong"
    finally:
        await raw.close()


async def test_plain_frames_still_work_after_a_fragmented_message(server):
    raw = await RawWebSocket.open(server.port)
    try:
        await raw.read_frame()
        raw.send_frame(0x1, PING[:10], fin=False)
        raw.send_frame(0x0, PING[10:], fin=True)
        raw.send_frame(0x1, PING)
        for _ in range(2):
            opcode, payload = await raw.read_frame()
            assert opcode == 0x1
            assert json.loads(payload)["event"] == "pusher:pong"
    finally:
        await raw.close()


async def test_unmasked_client_frame_is_a_protocol_error(server):
    observer = await _observer(server)
    raw = await RawWebSocket.open(server.port)
    try:
        await raw.read_frame()
        payload = b'{"event":"pusher:ping","data":{}}'
        raw.writer.write(bytes([0x81, len(payload)]) + payload)  # RFC 6455 5.1: must be masked
        code, frames = await raw.read_until_close()
        assert code == 1002, (code, frames)
    finally:
        await raw.close()
    await _assert_unharmed(server, observer)


async def test_frame_over_the_size_limit_gets_pusher_error_and_socket_stays_open(server):
    observer = await _observer(server)
    offender = await server.connect()
    await server.subscribe_ok(offender, "private-chat")
    await server.subscribe_ok(observer, "private-chat")
    big = json.dumps({"event": "client-big", "channel": "private-chat", "data": "x" * 64 * 1024})
    await offender.send_raw(big)
    frames = await offender.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error"], frames
    await observer.assert_nothing_pending()  # the oversize event was not relayed
    # Still open and working, for both.
    await offender.send_event("client-small", "ok", channel="private-chat")
    assert (await observer.expect("client-small", "private-chat"))["data"] == "ok"
    await _assert_unharmed(server, observer)


async def test_fragmented_message_over_the_size_limit_is_refused(server):
    offender = await server.connect()
    await server.subscribe_ok(offender, "news")
    head = '{"event": "pusher:ping", "data": {"pad": "'
    parts = [head] + ["y" * 8192] * 8 + ['"}}']
    await offender.ws.send(iter(parts))
    frames = await offender.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error"], frames
    await _assert_unharmed(server, offender)


async def test_fragmented_message_is_reassembled(server):
    client = await server.connect()
    text = json.dumps({"event": "pusher:subscribe", "data": {"auth": "", "channel": "news"}})
    await client.ws.send(iter([text[:10], text[10:25], text[25:]]))
    await client.expect_succeeded("news")


async def test_oversize_http_body_is_413(start_server):
    server = await start_server(max_http_body_kb=16)
    observer = await _observer(server)
    body = json.dumps({"name": "e", "channels": ["news"], "data": "z" * 40 * 1024}).encode()
    params = signed_params(MAIN, "POST", EVENTS, body)
    status, _ = await asyncio.to_thread(
        http_request, server.port, "POST", EVENTS, params=params, body=body
    )
    assert status == 413
    await observer.assert_nothing_pending()
    await _assert_unharmed(server, observer)


async def test_malformed_query_string_on_websocket_upgrade(server):
    observer = await _observer(server)
    # protocol=7 is there among junk: parse the query normally (reference 1.1).
    client = await server.connect(query="%zz&&=&protocol=7&x=%E0%A4%A&;;&flash")
    await client.assert_nothing_pending()
    # Only junk: no protocol version (reference 1.7).
    ws = await open_ws(server.port, MAIN.key, query="%%%&&==&%")
    code, frames = await refused(ws)
    assert code == 4008
    assert [error_code(f) for f in frames] == [4008]
    await _assert_unharmed(server, observer)
    await client.assert_nothing_pending()


async def test_malformed_query_string_on_http_api(server):
    observer = await _observer(server)
    status, _ = await asyncio.to_thread(
        http_request,
        server.port,
        "GET",
        f"/apps/{MAIN.id}/channels",
        raw_query="%zz&&=&auth_key=%%%&auth_timestamp=%E0%A4%A&auth_signature",
    )
    assert status == 401
    await _assert_unharmed(server, observer)


async def test_garbage_instead_of_http_gets_400(server):
    observer = await _observer(server)
    reader, writer = await asyncio.open_connection(HOST, server.port)
    try:
        writer.write(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
        status_line = await asyncio.wait_for(reader.readline(), TIMEOUT)
        assert status_line.startswith(b"HTTP/1.1 400"), status_line
    finally:
        writer.close()
    await _assert_unharmed(server, observer)


async def test_plain_http_get_on_websocket_path_is_not_a_crash(server):
    observer = await _observer(server)
    status, _ = await asyncio.to_thread(
        http_request, server.port, "GET", f"/app/{MAIN.key}", raw_query="protocol=7"
    )
    assert 400 <= status < 500
    await _assert_unharmed(server, observer)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(
            '{"event": "client-x", "channel": "private-chat", "data": "\\ud800"}',
            id="string-data",
        ),
        pytest.param(
            '{"event": "client-x", "channel": "private-chat", "data": {"k": "\\udfff"}}',
            id="object-data",
        ),
        pytest.param(
            '{"event": "client-x", "channel": "private-chat", "data": {"\\ud800": 1}}',
            id="object-key",
        ),
        pytest.param(
            '{"event": "client-\\ud800", "channel": "private-chat", "data": {}}',
            id="event-name",
        ),
        pytest.param(
            '{"event": "pusher:subscribe", "data": {"auth": "", "channel": "x\\ud800"}}',
            id="channel-name",
        ),
        pytest.param(
            '{"event": "pusher:subscribe", "data": {"auth": "\\ud800", "channel": "private-y"}}',
            id="auth",
        ),
    ],
)
async def test_lone_surrogate_escapes_are_survived(server, frame):
    # Valid JSON, but `\ud800` decodes to text that cannot be encoded as UTF-8 again.
    receiver = await _observer(server)
    offender = await server.connect()
    await server.subscribe_ok(offender, "news")
    await server.subscribe_ok(offender, "private-chat")
    await server.subscribe_ok(receiver, "private-chat")
    await offender.send_raw(frame)
    frames = await offender.until_pong()
    assert all(f["event"].startswith("pusher:") for f in frames), frames
    assert not any("succeeded" in f["event"] for f in frames), frames
    # Refused, or relayed as valid text (JSON may carry the escape on); nothing else.
    relayed = await receiver.until_pong()
    assert all(f["event"] == "client-x" for f in relayed), relayed
    await _assert_unharmed(server, receiver, offender)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"name": "e", "channels": ["news"], "data": "\ud800"}, id="data"),
        pytest.param({"name": "e\udfff", "channels": ["news"], "data": "x"}, id="name"),
        pytest.param({"name": "e", "channels": ["news\ud800"], "data": "x"}, id="channel"),
        pytest.param({"name": "e", "channel": "news", "data": "x", "info": "\ud800"}, id="info"),
    ],
)
async def test_lone_surrogate_escapes_in_http_api_body(server, payload):
    observer = await _observer(server)
    body = json.dumps(payload).encode()  # ASCII JSON with `\ud800`-style escapes
    status, response = await signed_http_request(server, body)
    assert status in (200, 400), (status, response)
    if status == 200:
        # Relayed: what arrives must be valid text (websockets would reject invalid UTF-8).
        frames = await observer.until_pong()
        assert all(f["event"] == "e" for f in frames), frames
    await _assert_unharmed(server, observer)


async def signed_http_request(server, body):
    params = signed_params(MAIN, "POST", EVENTS, body)
    return await asyncio.to_thread(
        http_request, server.port, "POST", EVENTS, params=params, body=body
    )


@pytest.mark.parametrize(
    "protocol",
    [
        pytest.param("%C2%B2", id="superscript-two"),
        pytest.param("%D9%A7", id="arabic-indic-seven"),
        pytest.param("%EF%BC%97", id="fullwidth-seven"),
        pytest.param("7.0", id="decimal"),
        pytest.param("-7", id="negative"),
        pytest.param("9" * 40, id="huge"),
    ],
)
async def test_protocol_that_is_not_a_plain_integer_is_refused_with_4006_or_4007(server, protocol):
    observer = await _observer(server)
    ws = await open_ws(server.port, MAIN.key, query=f"protocol={protocol}")
    code, frames = await refused(ws)
    assert code in (4006, 4007), (code, frames)
    assert [error_code(f) for f in frames] == [code]
    await _assert_unharmed(server, observer)


async def _send_in_pieces(writer: asyncio.StreamWriter, data: bytes) -> None:
    for index in range(len(data)):
        writer.write(data[index : index + 1])
        await writer.drain()


async def test_upgrade_request_arriving_a_byte_at_a_time(server):
    # The request line split over many reads: path and query are joined before they are read.
    reader, writer = await asyncio.open_connection(HOST, server.port)
    try:
        request = (
            f"GET /app/{MAIN.key}?protocol=7&client=js#frag HTTP/1.1\r\nHost: {HOST}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        await _send_in_pieces(writer, request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 101"), head
        raw = RawWebSocket(reader, writer)
        opcode, payload = await raw.read_frame()
        assert opcode == 0x1
        assert json.loads(payload)["event"] == "pusher:connection_established"
    finally:
        writer.close()


@pytest.mark.parametrize("form", ["origin", "absolute"])
async def test_api_request_target_in_pieces_and_in_absolute_form(server, form):
    # RFC 9112 3.2: a server accepts the absolute form too (as sent to a proxy).
    path = f"/apps/{MAIN.id}/channels"
    query = urlencode(signed_params(MAIN, "GET", path), safe=",")
    target = f"{path}?{query}" if form == "origin" else f"http://{HOST}:{server.port}{path}?{query}"
    reader, writer = await asyncio.open_connection(HOST, server.port)
    try:
        request = f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
        await _send_in_pieces(writer, request.encode())
        response = await asyncio.wait_for(reader.read(), TIMEOUT)
        assert response.startswith(b"HTTP/1.1 200"), response
        assert json.loads(response.partition(b"\r\n\r\n")[2]) == {"channels": {}}
    finally:
        writer.close()
