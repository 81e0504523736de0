"""The composition root: builds the node and its ports from settings, runs the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from clarion.backends.memory import (
    MemoryAppStore,
    MemoryBroker,
    MemoryCacheStore,
    MemoryChannelStore,
    MemoryConnectionQuota,
    MemoryPresenceStore,
    MemoryUserStore,
)
from clarion.backends.redis.cluster import ClusterUnavailable
from clarion.config import ServerSettings, Settings
from clarion.core.apps import App
from clarion.node import Node, NodeSettings
from clarion.ports import (
    AppStore,
    Broker,
    CacheStore,
    ChannelStore,
    ConnectionQuota,
    PresenceStore,
    UserStore,
)
from clarion.protocol.errors import GOING_AWAY
from clarion.protocol.webhooks import WebhookEvent
from clarion.transport.http_api import HttpApi
from clarion.transport.server import (
    ClientProtocol,
    Connections,
    ServerLimits,
    WriteCoalescer,
    encode_text_frame,
    write_each,
)
from clarion.webhooks import DispatcherSettings, WebhookDispatcher

# How often every socket's liveness is checked (reference 1.4 timers are in tens of seconds).
SWEEP_INTERVAL_S = 1.0


class Webhooks(Protocol):
    def emit(self, app: App, event: WebhookEvent) -> None: ...

    async def start(self) -> None: ...

    async def close(self, timeout: float) -> None: ...  # noqa: ASYNC109


def dispatcher_settings(server: ServerSettings) -> DispatcherSettings:
    return DispatcherSettings(
        batch_window_s=server.webhook_batch_ms / 1000,
        batch_max=server.webhook_batch_max,
        holdback_s=server.webhook_holdback_s,
        retry_initial_s=server.webhook_retry_initial_s,
        retry_max_s=server.webhook_retry_max_s,
        retry_period_s=server.webhook_retry_period_s,
        timeout_s=server.webhook_timeout_s,
        queue_max=server.webhook_queue_max,
    )


def build_webhooks(
    server: ServerSettings, logger: logging.Logger, apps: AppStore
) -> tuple[Webhooks, Callable[[], Awaitable[None]]]:
    """The webhook sink and what to call after closing it."""
    log = logger.getChild("webhooks")
    if not server.redis_url:
        return WebhookDispatcher(dispatcher_settings(server), logger=log), _nothing
    from clarion.backends.redis.client import connect
    from clarion.webhooks.redis_queue import RedisWebhookQueue

    # Its own client: the cluster's is closed at shutdown before the webhooks are flushed.
    client = connect(server.redis_url, server.redis_timeout_s)
    queue = RedisWebhookQueue(
        client,
        server.redis_prefix,
        f"{socket.gethostname()}:{os.getpid()}",
        apps,
        dispatcher_settings(server),
        logger=log,
        lease_s=server.node_lease_s,
    )
    return queue, client.aclose


async def _nothing() -> None:
    pass


@dataclass
class Backends:
    """The ports' implementations, picked by settings: memory (embedded) or Redis (cluster)."""

    broker: Broker
    presence: PresenceStore
    channels: ChannelStore
    users: UserStore
    cache: CacheStore
    quota: ConnectionQuota
    # Called once the node exists (cluster changes are announced through it), and at shutdown
    # after the node has left every channel.
    bind: Callable[[Node], None] = lambda _node: None
    close: Callable[[], Awaitable[None]] = _nothing


def memory_backends() -> Backends:
    loop = asyncio.get_running_loop()
    return Backends(
        broker=MemoryBroker(),
        presence=MemoryPresenceStore(),
        channels=MemoryChannelStore(),
        users=MemoryUserStore(),
        cache=MemoryCacheStore(loop.time),
        quota=MemoryConnectionQuota(),
    )


async def redis_backends(server: ServerSettings, logger: logging.Logger) -> Backends:
    """Join the cluster (docs/cluster.md); raises ClusterUnavailable if Redis does not answer."""
    from clarion.backends.redis.broker import READ_BLOCK_MS, RedisBroker
    from clarion.backends.redis.client import connect, connect_reader
    from clarion.backends.redis.cluster import RedisCluster
    from clarion.backends.redis.stores import (
        RedisCacheStore,
        RedisChannelStore,
        RedisConnectionQuota,
        RedisPresenceStore,
        RedisUserStore,
    )

    log = logger.getChild("cluster")
    cluster = RedisCluster(
        connect(server.redis_url, server.redis_timeout_s),
        server.redis_prefix,
        server.node_lease_s,
        log,
    )
    presence, users = RedisPresenceStore(cluster), RedisUserStore(cluster)
    channels, quota = RedisChannelStore(cluster), RedisConnectionQuota(cluster)
    # Clearing a dead node announces member_removed before channel_vacated (reference 6).
    for store in (presence, users, channels, quota):
        cluster.attach(store)
    try:
        await cluster.start()
    except ClusterUnavailable as error:
        where = _without_password(server.redis_url)
        raise ClusterUnavailable(f"{error} (redis_url {where}); is Redis running?") from None
    reader = connect_reader(server.redis_url, server.redis_timeout_s, READ_BLOCK_MS / 1000)
    broker = RedisBroker(cluster, reader, log)
    try:
        await broker.start()
    except BaseException:
        await cluster.close()
        await reader.aclose()
        raise

    async def close() -> None:
        await cluster.close()
        await broker.close()
        await cluster.client.aclose()

    return Backends(
        broker=broker,
        presence=presence,
        channels=channels,
        users=users,
        cache=RedisCacheStore(cluster, time.time),  # wall clock: every node agrees on it
        quota=quota,
        bind=lambda node: cluster.on_changes(node.apply_cluster_changes),
        close=close,
    )


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def build_node(
    settings: Settings,
    logger: logging.Logger,
    webhooks: Webhooks,
    backends: Backends,
    apps: AppStore,
) -> Node:
    loop = asyncio.get_running_loop()
    server = settings.server
    node = Node(
        apps=apps,
        broker=backends.broker,
        presence=backends.presence,
        channels=backends.channels,
        users=backends.users,
        cache=backends.cache,
        quota=backends.quota,
        webhooks=webhooks,
        frame=encode_text_frame,
        write_each=write_each,
        clock=loop.time,
        settings=NodeSettings(
            activity_timeout=server.activity_timeout, pong_timeout=server.pong_timeout
        ),
        logger=logger,
    )
    backends.bind(node)
    return node


@dataclass
class RunningServer:
    node: Node
    server: asyncio.Server
    settings: Settings
    webhooks: Webhooks
    backends: Backends
    webhooks_closed: Callable[[], Awaitable[None]] = _nothing
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
        await self.backends.close()
        # Vacated/member_removed webhooks of the sockets just closed are released now.
        await self.webhooks.close(self.settings.server.shutdown_timeout)
        await self.webhooks_closed()
        await self.server.wait_closed()


async def start(
    settings: Settings, logger: logging.Logger | None = None, sock: socket.socket | None = None
) -> RunningServer:
    """Build the node and listen: on `sock` when given (a worker of `clarion serve --workers`
    inherits its parent's listening socket), else on the configured host and port."""
    log = logger or logging.getLogger("clarion")
    tls = _ssl_context(settings.server)  # a bad certificate fails before anything starts
    if settings.server.redis_url:
        backends = await redis_backends(settings.server, log)
    else:
        backends = memory_backends()
    apps = MemoryAppStore(settings.apps)
    webhooks, webhooks_closed = build_webhooks(settings.server, log, apps)
    try:
        await webhooks.start()
        node = build_node(settings, log, webhooks, backends, apps)
        connections = Connections()
        running = RunningServer(
            node=node,
            server=await _listen(settings.server, log, node, tls, sock, connections),
            settings=settings,
            webhooks=webhooks,
            backends=backends,
            webhooks_closed=webhooks_closed,
            connections=connections,
        )
    except BaseException:
        # Nothing may keep running (Redis tasks, webhook workers) once start-up has failed.
        await webhooks.close(0.1)
        await webhooks_closed()
        await backends.close()
        raise
    _schedule_sweep(running, asyncio.get_running_loop())
    return running


async def _listen(
    server_settings: ServerSettings,
    log: logging.Logger,
    node: Node,
    tls: ssl.SSLContext | None,
    sock: socket.socket | None,
    connections: Connections,
) -> asyncio.Server:
    api = HttpApi(node)
    limits = ServerLimits(
        max_body_bytes=server_settings.max_http_body_kb * 1024,
        max_pending_bytes=server_settings.max_pending_kb * 1024,
        slow_consumer_grace_s=server_settings.slow_consumer_grace_s,
        max_sockets=server_settings.max_sockets or _sockets_allowed_by_rlimit(),
    )
    loop = asyncio.get_running_loop()
    coalescer = WriteCoalescer(loop)

    def make_protocol() -> ClientProtocol:
        return ClientProtocol(node, api, limits, log, connections, coalescer)

    if sock is not None:
        return await loop.create_server(make_protocol, sock=sock, ssl=tls, backlog=4096)
    return await loop.create_server(
        make_protocol,
        host=server_settings.host,
        port=server_settings.port,
        ssl=tls,
        reuse_address=True,
        backlog=4096,
    )


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


async def serve_forever(
    settings: Settings, logger: logging.Logger, ready: str, sock: socket.socket | None = None
) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    try:
        running = await start(settings, logger, sock)
    except ClusterUnavailable as error:
        # Starting without the shared state would split the deployment: refuse instead.
        logger.error("%s", error)
        raise SystemExit(1) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(ready.format(port=running.port), flush=True)
    await stop.wait()
    logger.info("shutting down: closing %d connections", len(running.connections))
    await running.shutdown()
