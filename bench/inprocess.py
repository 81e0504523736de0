"""Clarion's own Python cost, without sockets: a do-nothing transport under the real protocol
objects and node. What the kernel and uvloop add is what bench/run.py measures on top.

Prints, for N connections (default 10,000): microseconds of Python per connection set up
(HTTP upgrade as bench/loadgen sends it, then a masked subscribe frame), milliseconds for
one liveness sweep over all of them, and microseconds per subscriber of one fan-out; then
microseconds per signed HTTP API trigger to 10 subscribers (as bench/loadgen sends them, 8
keep-alive connections).

    .venv/bin/python bench/inprocess.py 10000
    .venv/bin/python bench/inprocess.py --only http 5000   # one workload, no timing printed

`--only setup|http` runs just that workload N times and prints nothing else: what
bench/instructions.py counts under callgrind (instructions do not depend on the host's load).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import hmac
import logging
import os
import time
from typing import Any

from clarion.backends.memory import MemoryAppStore
from clarion.bootstrap import build_node, memory_backends
from clarion.config import Settings
from clarion.core.apps import App
from clarion.core.envelope import Envelope
from clarion.node import Node
from clarion.transport.http_api import HttpApi
from clarion.transport.server import ClientProtocol, ServerLimits, WriteCoalescer
from clarion.types import AppId, AppKey

try:
    from clarion.transport.server import Connections
except ImportError:  # commits before 79960f9 kept it in bootstrap: A/B against them still runs
    from clarion.bootstrap import Connections  # type: ignore[attr-defined]

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
    """What the server calls on every flush are C callables, as uvloop's transport methods are,
    so that a Python frame per call does not count against the server: `write` drops the
    bytes, `is_closing()` is `bool()`, False, and `get_write_buffer_size()` is `int()`, 0."""

    write = staticmethod(collections.deque(maxlen=0).append)
    is_closing = staticmethod(bool)
    get_write_buffer_size = staticmethod(int)

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


class Bench:
    """One app, one node, the server's protocol objects, nothing under them."""

    def __init__(self, max_sockets: int) -> None:
        self.app = App(id=AppId("123456"), key=AppKey("bench-key"), secret="bench-secret")
        self.node = make_node(self.app)
        self.coalescer = WriteCoalescer(asyncio.get_running_loop())
        self.limits = ServerLimits(1 << 20, 1 << 20, max_sockets + 1, slow_consumer_grace_s=5.0)
        self.api, self.log = HttpApi(self.node), logging.getLogger("bench")
        self.registry = Connections()
        self.transport = NullTransport()

    def protocol(self) -> ClientProtocol:
        protocol = ClientProtocol(
            self.node, self.api, self.limits, self.log, self.registry, self.coalescer
        )
        protocol.connection_made(self.transport)  # type: ignore[arg-type]
        return protocol

    def set_up(self, n: int) -> None:
        for i in range(n):
            protocol = self.protocol()
            protocol.data_received(UPGRADE)
            protocol.data_received(SUBSCRIBE)
            if i % 100 == 99:
                self.coalescer.flush()
        self.coalescer.flush()

    def trigger(self, n: int, subscribers: int = 10, connections: int = 8) -> None:
        """n triggers to `subscribers`, round robin over `connections` publishers, flushed
        after each round as the server's loop would after reading each of them."""
        self.set_up(subscribers)
        publishers = [self.protocol() for _ in range(connections)]
        request = signed_trigger(self.app)
        for i in range(n):
            publishers[i % connections].data_received(request)
            if i % connections == connections - 1:
                self.coalescer.flush()
        self.coalescer.flush()

    def broadcast(self, n: int) -> None:
        """n events published to the `bench` channel, each flushed as its loop iteration
        would be: what the broker's delivery and the sockets' writes cost, no HTTP."""
        node, coalescer = self.node, self.coalescer
        for _ in range(n):
            node.publish(Envelope(self.app.id, "bench", "bench-event", "x" * 64))
            coalescer.flush()


FANOUT_SUBSCRIBERS = 1000


def signed_trigger(app: App) -> bytes:
    """One `POST /apps/{id}/events` as bench/loadgen signs it (reference 5.2); the server keeps
    no record of triggers, so the same request can be sent again and again."""
    body = b'{"name":"e","channels":["bench"],"data":"S0000000001T00000000000000000001xxxx"}'
    query = (
        f"auth_key={app.key}&auth_timestamp={int(time.time())}&auth_version=1.0"
        f"&body_md5={hashlib.md5(body).hexdigest()}"
    )
    to_sign = f"POST\n/apps/{app.id}/events\n{query}".encode()
    signature = hmac.new(app.secret.encode(), to_sign, hashlib.sha256).hexdigest()
    head = (
        f"POST /apps/{app.id}/events?{query}&auth_signature={signature} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def main(n: int) -> None:
    bench = Bench(n)
    start = time.perf_counter()
    bench.set_up(n)
    setup_us = (time.perf_counter() - start) / n * 1e6
    node, coalescer = bench.node, bench.coalescer
    start = time.perf_counter()
    node.sweep()
    sweep_ms = (time.perf_counter() - start) * 1e3
    fanout = []
    for _ in range(5):
        start = time.perf_counter()
        node.publish(Envelope(bench.app.id, "bench", "bench-event", "x" * 64))
        coalescer.flush()
        fanout.append((time.perf_counter() - start) / n * 1e6)
    http = Bench(100)
    start = time.perf_counter()
    http.trigger(n)
    http_us = (time.perf_counter() - start) / n * 1e6
    print(
        f"connections={n} setup_us_per_conn={setup_us:.1f} sweep_ms={sweep_ms:.2f} "
        f"fanout_us_per_sub={min(fanout):.2f} http_us_per_trigger={http_us:.1f}"
    )


async def only(workload: str, n: int) -> None:
    if workload == "setup":
        Bench(n).set_up(n)
    elif workload == "http":
        Bench(100).trigger(n)
    else:
        bench = Bench(FANOUT_SUBSCRIBERS)
        bench.set_up(FANOUT_SUBSCRIBERS)
        bench.broadcast(n)


if __name__ == "__main__":
    import uvloop  # the loop `clarion serve` runs on (its call_soon is C, asyncio's is not)

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=10_000)
    parser.add_argument("--only", choices=("setup", "http", "fanout"))
    args = parser.parse_args()
    uvloop.run(only(args.only, args.n) if args.only else main(args.n))
