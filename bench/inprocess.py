"""Clarion's own Python cost, without sockets: a do-nothing transport under the real protocol
objects and node. What the kernel and uvloop add is what bench/run.py measures on top.

Prints, for N connections (default 10,000): microseconds of Python per connection set up
(HTTP upgrade as bench/loadgen sends it, then a masked subscribe frame), milliseconds for
one liveness sweep over all of them, and microseconds per subscriber of one fan-out.

    .venv/bin/python bench/inprocess.py 10000
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any

from clarion.backends.memory import MemoryAppStore
from clarion.bootstrap import build_node, memory_backends
from clarion.config import Settings
from clarion.core.apps import App
from clarion.core.envelope import Envelope
from clarion.node import Node
from clarion.transport.http_api import HttpApi
from clarion.transport.server import (
    ClientProtocol,
    ServerLimits,
    WriteCoalescer,
)
from clarion.types import AppId, AppKey

UPGRADE = (
    b"GET /app/bench-key?protocol=7&client=bench&version=1 HTTP/1.1\r\n"
    b"Host: 127.0.0.1:6001\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def masked_text_frame(text: str) -> bytes:
    payload, mask = text.encode(), os.urandom(4)
    assert len(payload) < 126
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x81, 0x80 | len(payload))) + mask + body


SUBSCRIBE = masked_text_frame('{"event":"pusher:subscribe","data":{"channel":"bench","auth":""}}')


class NullTransport:
    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class NoWebhooks:
    def emit(self, app: App, event: Any) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self, timeout: float) -> None:  # noqa: ASYNC109 (the Webhooks port)
        pass


def make_node(app: App) -> Node:
    """Wired as `clarion serve` wires the embedded server."""
    settings = Settings(apps=(app,))
    log = logging.getLogger("bench")
    return build_node(settings, log, NoWebhooks(), memory_backends(), MemoryAppStore((app,)))


async def main(n: int) -> None:
    app = App(id=AppId("123456"), key=AppKey("bench-key"), secret="bench-secret")
    node = make_node(app)
    coalescer = WriteCoalescer(asyncio.get_running_loop())
    limits = ServerLimits(1 << 20, 1 << 20, n + 1, slow_consumer_grace_s=5.0)
    api, log, registry = HttpApi(node), logging.getLogger("bench"), set[ClientProtocol]()
    transport = NullTransport()
    start = time.perf_counter()
    for i in range(n):
        protocol = ClientProtocol(node, api, limits, log, registry, coalescer)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        protocol.data_received(UPGRADE)
        protocol.data_received(SUBSCRIBE)
        if i % 100 == 99:
            coalescer.flush()
    coalescer.flush()
    setup_us = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    node.sweep()
    sweep_ms = (time.perf_counter() - start) * 1e3
    fanout = []
    for _ in range(5):
        start = time.perf_counter()
        node.publish(Envelope(app.id, "bench", "bench-event", "x" * 64))
        coalescer.flush()
        fanout.append((time.perf_counter() - start) / n * 1e6)
    print(
        f"connections={n} setup_us_per_conn={setup_us:.1f} sweep_ms={sweep_ms:.2f} "
        f"fanout_us_per_sub={min(fanout):.2f}"
    )


if __name__ == "__main__":
    import uvloop  # the loop `clarion serve` runs on (its call_soon is C, asyncio's is not)

    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
