"""Reference 1: the handshake, ping/pong and the connection-refusing close codes."""

from __future__ import annotations

import asyncio
import json

import pytest
from it_support import (
    DISABLED,
    LIMITED,
    MAIN,
    ORIGINS,
    SOCKET_ID_RE,
    TIMEOUT,
    data_of,
    error_code,
    open_ws,
    refused,
)


async def test_connection_established_carries_socket_id_and_activity_timeout(server):
    client = await server.connect()
    msg = client.established
    assert set(msg) == {"event", "data"}
    # Reference 1.2/1.3: `data` is a JSON-encoded string, not an object.
    assert isinstance(msg["data"], str)
    info = json.loads(msg["data"])
    assert SOCKET_ID_RE.match(info["socket_id"]), info
    assert isinstance(info["activity_timeout"], int)
    assert info["activity_timeout"] > 0
    assert info["activity_timeout"] == server.running.settings.server.activity_timeout


async def test_every_connection_gets_its_own_socket_id(server):
    clients = [await server.connect() for _ in range(5)]
    ids = {c.socket_id for c in clients}
    assert len(ids) == 5
    assert all(SOCKET_ID_RE.match(i) for i in ids)


async def test_pusher_ping_is_answered_with_pusher_pong(server):
    client = await server.connect()
    await client.send_json({"event": "pusher:ping", "data": {}})
    msg = await client.recv()
    assert msg["event"] == "pusher:pong"
    assert "channel" not in msg


async def test_websocket_protocol_ping_frame_is_answered(server):
    client = await server.connect()
    pong = await client.ws.ping(b"are-you-there")
    latency = await asyncio.wait_for(pong, TIMEOUT)
    assert latency >= 0
    # The socket is still a working Pusher connection afterwards.
    await client.assert_nothing_pending()


@pytest.mark.parametrize(
    ("key", "kwargs", "code"),
    [
        pytest.param("no-such-key", {}, 4001, id="unknown-key-4001"),
        pytest.param(DISABLED.key, {}, 4003, id="disabled-app-4003"),
        pytest.param(MAIN.key, {"path": "/foo/bar"}, 4005, id="bad-path-4005"),
        pytest.param(MAIN.key, {"query": "protocol=abc"}, 4006, id="protocol-abc-4006"),
        pytest.param(MAIN.key, {"query": "protocol=3"}, 4007, id="protocol-3-4007"),
        pytest.param(MAIN.key, {"query": "client=js&version=8.6.0"}, 4008, id="no-protocol-4008"),
        pytest.param(MAIN.key, {"query": None}, 4008, id="no-query-4008"),
    ],
)
async def test_refused_connection_gets_pusher_error_then_close_code(server, key, kwargs, code):
    ws = await open_ws(server.port, key, **kwargs)
    close_code, frames = await refused(ws)
    assert [f["event"] for f in frames] == ["pusher:error"], frames
    assert error_code(frames[0]) == code
    assert close_code == code


async def test_refused_connection_does_not_disturb_others(server):
    good = await server.connect()
    await server.subscribe_ok(good, "news")
    bad = await open_ws(server.port, "no-such-key")
    assert (await refused(bad))[0] == 4001
    await server.trigger("news", "update", "still here")
    msg = await good.expect("update", "news")
    assert msg["data"] == "still here"


async def test_over_max_connections_is_refused_with_4004(server):
    first = await server.connect(LIMITED)
    second = await open_ws(server.port, LIMITED.key)
    close_code, frames = await refused(second)
    assert [f["event"] for f in frames] == ["pusher:error"]
    assert error_code(frames[0]) == 4004
    assert close_code == 4004
    # The quota is per app: other apps are unaffected ...
    await server.connect(MAIN)
    # ... and once the first socket has gone, a new one fits again.
    await first.close()
    third = await server.connect(LIMITED)
    assert SOCKET_ID_RE.match(third.socket_id)


async def test_origin_not_in_allowed_origins_is_refused_with_4009(server):
    ws = await open_ws(server.port, ORIGINS.key, origin="https://evil.example")
    close_code, frames = await refused(ws)
    assert [f["event"] for f in frames] == ["pusher:error"]
    assert error_code(frames[0]) == 4009
    assert close_code == 4009


async def test_allowed_origin_is_accepted(server):
    client = await server.connect(ORIGINS, origin="https://good.example")
    assert SOCKET_ID_RE.match(client.socket_id)
    await client.assert_nothing_pending()


async def test_query_parameter_order_is_free(server):
    # Reference 1.1: Swift sends `?client=...&version=...&protocol=7`.
    client = await server.connect(query="client=pusher-websocket-swift&version=10.1.0&protocol=7")
    assert SOCKET_ID_RE.match(client.socket_id)


async def test_path_prefix_before_app_is_accepted(server):
    # Reference 1.1: pusher-js prefixes the optional `wsPath`.
    client = await server.connect(path=f"/ws/prefix/app/{MAIN.key}")
    assert data_of(client.established)["activity_timeout"] > 0
