"""Issue 4: when a process holds as many sockets as it may, new ones are refused cleanly —
WebSockets with 4100 (reference 1.6: pusher-js retries after a back-off), HTTP API requests
with 503 — and the server keeps serving the sockets it has."""

from __future__ import annotations

import asyncio
import json
import resource

from it_support import MAIN, TIMEOUT, WsClient, data_of, open_ws, signed_http, spawn_clarion
from websockets.exceptions import ConnectionClosed


async def _established(port: int) -> WsClient:
    ws = await open_ws(port, MAIN.key)
    return WsClient(ws, json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))


async def test_past_max_sockets_a_websocket_gets_4100_and_http_gets_503(start_server):
    server = await start_server(max_sockets=2)
    first = server.track(await _established(server.port))
    second = server.track(await _established(server.port))

    refused = await open_ws(server.port, MAIN.key)
    frames = []
    code = None
    try:
        async with asyncio.timeout(TIMEOUT):
            while True:
                frames.append(json.loads(await refused.recv()))
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd is not None else None
    assert code == 4100
    assert [f["event"] for f in frames] == ["pusher:error"]
    assert data_of(frames[0])["code"] == 4100

    status, body = await signed_http(server.port, "GET", f"/apps/{MAIN.id}/channels")
    assert status == 503, body
    assert b"capacity" in body

    # The sockets it holds are served as before.
    await server.subscribe_ok(first, "news")
    await second.assert_nothing_pending()

    # A freed slot is usable again.
    await second.close()
    again = None
    async with asyncio.timeout(TIMEOUT):
        while again is None:
            candidate = await open_ws(server.port, MAIN.key)
            msg = json.loads(await candidate.recv())
            if msg["event"] == "pusher:connection_established":
                again = server.track(WsClient(candidate, msg))
            else:
                await candidate.close()
    await server.subscribe_ok(again, "news")


def _low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))


async def test_at_the_open_files_limit_the_server_refuses_with_4100_instead_of_failing_accept():
    # 200 descriptors: max_sockets defaults to the limit less a reserve, so accept() never
    # hits EMFILE; the surplus is told "over capacity" and the server keeps working.
    proc, port = await spawn_clarion(preexec_fn=_low_nofile)
    clients = []
    try:
        outcomes: dict[str, int] = {}
        for _ in range(120):  # more than 200 - reserve
            ws = await open_ws(port, MAIN.key, max_queue=None)
            msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            if msg["event"] == "pusher:connection_established":
                clients.append(ws)
                outcomes["established"] = outcomes.get("established", 0) + 1
            else:
                assert data_of(msg)["code"] == 4100, msg
                await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
                assert ws.close_code == 4100
                outcomes["refused"] = outcomes.get("refused", 0) + 1
        assert outcomes.get("established", 0) >= 60, outcomes
        assert outcomes.get("refused", 0) >= 40, outcomes
        # Still alive and answering the sockets it holds.
        await clients[0].send(json.dumps({"event": "pusher:ping", "data": {}}))
        pong = json.loads(await asyncio.wait_for(clients[0].recv(), TIMEOUT))
        assert pong["event"] == "pusher:pong"
    finally:
        for ws in clients:
            await ws.close()
        if proc.returncode is None:
            proc.terminate()
            _, stderr = await asyncio.wait_for(proc.communicate(), 3 * TIMEOUT)
            assert b"Traceback" not in stderr, stderr.decode()
