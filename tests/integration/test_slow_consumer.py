"""Back-pressure (architecture; issue 4): a client that stops reading is closed once its
pending output passes `max_pending_kb` — 4101, then a reset if it still does not read — and the
subscribers that do read lose nothing."""

from __future__ import annotations

import asyncio
import json

from it_support import MAIN, TIMEOUT, RawWebSocket, open_ws


async def test_a_client_that_stops_reading_is_dropped_and_the_others_lose_nothing(
    start_server,
):
    server = await start_server(max_pending_kb=64, slow_consumer_grace_s=0.2 * TIMEOUT / 5)
    # The healthy client's library never stops reading (max_queue=None).
    healthy_ws = await open_ws(server.port, MAIN.key, max_queue=None)
    await asyncio.wait_for(healthy_ws.recv(), TIMEOUT)
    await healthy_ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "hose"}}))
    assert json.loads(await asyncio.wait_for(healthy_ws.recv(), TIMEOUT))["event"].endswith(
        "subscription_succeeded"
    )

    stalled = await RawWebSocket.open(server.port)
    await stalled.read_frame()  # connection_established
    stalled.send_frame(0x1, b'{"event":"pusher:subscribe","data":{"channel":"hose"}}')
    await stalled.read_frame()  # subscription_succeeded; from here on it reads nothing

    node = server.running.node
    payload = "x" * 9000
    sent = 0
    async with asyncio.timeout(4 * TIMEOUT):
        while len(node.hub.subscribers(MAIN.id, "hose")) == 2:
            await node.trigger(MAIN, ["hose"], "bulk", payload, None)
            sent += 1
            await asyncio.sleep(0)  # let the loop flush this iteration's writes
    assert sent > 8  # it took more than max_pending_kb of output to get there

    # The reader was reset: whatever it still finds, the stream ends without a full backlog.
    ended = False
    async with asyncio.timeout(TIMEOUT):
        try:
            while True:
                await stalled.read_frame()
        except (asyncio.IncompleteReadError, ConnectionResetError):
            ended = True
    assert ended

    # The reading subscriber got every event, in order, and is still subscribed.
    for _ in range(sent):
        msg = json.loads(await asyncio.wait_for(healthy_ws.recv(), TIMEOUT))
        assert msg["event"] == "bulk"
        assert len(msg["data"]) == len(payload)
    assert len(node.hub.subscribers(MAIN.id, "hose")) == 1
    await healthy_ws.close()
    await stalled.close()
