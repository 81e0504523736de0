"""The composition root: builds the node and its ports from settings, runs the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import socket
import ssl
from dataclasses import dataclass, field

from clarion.backends.memory import (
    MemoryAppStore,
    MemoryBroker,
    MemoryCacheStore,
    MemoryChannelStore,
    MemoryPresenceStore,
    MemoryUserStore,
)
from clarion.config import ServerSettings, Settings
from clarion.node import Node, NodeSettings
from clarion.protocol.errors import GOING_AWAY
from clarion.transport.http_api import HttpApi
from clarion.transport.server import (
    ClientProtocol,
    ServerLimits,
    WriteCoalescer,
    encode_text_frame,
)
from clarion.webhooks import DispatcherSettings, WebhookDispatcher

# How often every socket's liveness is checked (reference 1.4 timers are in tens of seconds).
SWEEP_INTERVAL_S = 1.0


def build_webhooks(server: ServerSettings, logger: logging.Logger) -> WebhookDispatcher:
    return WebhookDispatcher(
        DispatcherSettings(
            batch_window_s=server.webhook_batch_ms / 1000,
            batch_max=server.webhook_batch_max,
            holdback_s=server.webhook_holdback_s,
            retry_initial_s=server.webhook_retry_initial_s,
            retry_max_s=server.webhook_retry_max_s,
            retry_period_s=server.webhook_retry_period_s,
            timeout_s=server.webhook_timeout_s,
            queue_max=server.webhook_queue_max,
        ),
        logger=logger.getChild("webhooks"),
    )


def build_node(settings: Settings, logger: logging.Logger, webhooks: WebhookDispatcher) -> Node:
    loop = asyncio.get_running_loop()
    server = settings.server
    return Node(
        apps=MemoryAppStore(settings.apps),
        broker=MemoryBroker(),
        presence=MemoryPresenceStore(),
        channels=MemoryChannelStore(),
        users=MemoryUserStore(),
        cache=MemoryCacheStore(loop.time),
        webhooks=webhooks,
        frame=encode_text_frame,
        clock=loop.time,
        settings=NodeSettings(
            activity_timeout=server.activity_timeout, pong_timeout=server.pong_timeout
        ),
        logger=logger,
    )


class Connections:
    """The open sockets, with a way to wait until the last one is gone (shutdown)."""

    def __init__(self) -> None:
        self._open: set[ClientProtocol] = set()
        self._empty = asyncio.Event()
        self._empty.set()

    def add(self, protocol: ClientProtocol) -> None:
        self._open.add(protocol)
        self._empty.clear()

    def discard(self, protocol: ClientProtocol) -> None:
        self._open.discard(protocol)
        if not self._open:
            self._empty.set()

    def __len__(self) -> int:
        return len(self._open)

    def snapshot(self) -> list[ClientProtocol]:
        return list(self._open)

    async def wait_empty(self) -> None:
        await self._empty.wait()


@dataclass
class RunningServer:
    node: Node
    server: asyncio.Server
    settings: Settings
    webhooks: WebhookDispatcher
    sweeper: asyncio.TimerHandle | None = None
    connections: Connections = field(default_factory=Connections)

    @property
    def port(self) -> int:
        sock: socket.socket = self.server.sockets[0]
        return int(sock.getsockname()[1])

    async def shutdown(self) -> None:
        """Stop accepting, send every client 4200 (reconnect elsewhere), wait, then exit."""
        self.server.close()
        if self.sweeper is not None:
            self.sweeper.cancel()
        self.node.close_all(GOING_AWAY, "Server shutting down")
        for protocol in self.connections.snapshot():
            protocol.close_idle_http()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.server.shutdown_timeout):
                await self.connections.wait_empty()
                await self.node.drain()
        for protocol in self.connections.snapshot():
            protocol.abort()
        await self.node.drain()
        # Vacated/member_removed webhooks of the sockets just closed are released now.
        await self.webhooks.close(self.settings.server.shutdown_timeout)
        await self.server.wait_closed()


async def start(settings: Settings, logger: logging.Logger | None = None) -> RunningServer:
    log = logger or logging.getLogger("clarion")
    webhooks = build_webhooks(settings.server, log)
    await webhooks.start()
    node = build_node(settings, log, webhooks)
    api = HttpApi(node)
    server_settings = settings.server
    limits = ServerLimits(
        max_body_bytes=server_settings.max_http_body_kb * 1024,
        max_pending_bytes=server_settings.max_pending_kb * 1024,
        max_sockets=server_settings.max_sockets or _sockets_allowed_by_rlimit(),
    )
    loop = asyncio.get_running_loop()
    coalescer = WriteCoalescer(loop)
    running: RunningServer | None = None

    def make_protocol() -> ClientProtocol:
        assert running is not None
        return ClientProtocol(node, api, limits, log, running.connections, coalescer)

    server = await loop.create_server(
        make_protocol,
        host=server_settings.host,
        port=server_settings.port,
        ssl=_ssl_context(server_settings),
        reuse_address=True,
        backlog=4096,
    )
    running = RunningServer(node=node, server=server, settings=settings, webhooks=webhooks)
    _schedule_sweep(running, loop)
    return running


# Descriptors kept free for what is not a client socket: the listener, epoll, log files, the
# webhook client's connections (aiohttp pools at most 100).
_RESERVED_FDS = 128


def _sockets_allowed_by_rlimit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1_000_000
    return max(1, soft - _RESERVED_FDS)


def _schedule_sweep(running: RunningServer, loop: asyncio.AbstractEventLoop) -> None:
    def tick() -> None:
        running.node.sweep()
        running.sweeper = loop.call_later(SWEEP_INTERVAL_S, tick)

    running.sweeper = loop.call_later(SWEEP_INTERVAL_S, tick)


def _ssl_context(server: ServerSettings) -> ssl.SSLContext | None:
    if not server.ssl_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server.ssl_cert, server.ssl_key, server.ssl_passphrase)
    return context


async def serve_forever(settings: Settings, logger: logging.Logger, ready: str) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    running = await start(settings, logger)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(ready.format(port=running.port), flush=True)
    await stop.wait()
    logger.info("shutting down: closing %d connections", len(running.connections))
    await running.shutdown()
