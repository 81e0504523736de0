"""Helpers for the cluster suite (issue 5): several `clarion serve` processes sharing one Redis.

Each node is its own process on 127.0.0.1, port 0 ("one host each"), configured like an operator
would: `CLARION_REDIS_URL`, a `CLARION_REDIS_PREFIX` unique to the test, the apps in a TOML file
(`CLARION_CONFIG`). `Cluster.running()` starts the nodes concurrently and, at the end, closes the
clients, SIGTERMs the nodes and deletes the test's own keys (SCAN MATCH prefix* + UNLINK: the
shared Redis is never flushed, other suites use it at the same time).

`PrivateRedis` is a throwaway `redis-server` on a unix socket, for the tests that kill Redis.
`Recorder` reads a socket in the background, for the fault tests where several things happen at
once. Nothing sleeps to synchronise: waits are on frames, with timeouts from `TIMEOUT`; the only
polling is `eventually()`, for state that announces itself with no event (an HTTP API answer, a
connection count) and is documented as such where it is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import re
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pusher
import redis.asyncio as aioredis
from it_support import (
    COUNTED,
    HOST,
    MAIN,
    TIMEOUT,
    WebhookReceiver,
    WsClient,
    _app,
    channel_auth,
    clarion_command,
    data_of,
    open_ws,
    sdk,
    subscribe_signed,
)
from websockets.exceptions import ConnectionClosed

from clarion.core.apps import App, Webhook
from clarion.types import AppId, AppKey

__all__ = [
    "APP_POOL",
    "CAPPED",
    "CAPPED_TOO",
    "COUNTED",
    "MAIN",
    "REDIS_URL",
    "Cluster",
    "Node",
    "PrivateRedis",
    "Recorder",
    "WebhookReceiver",
    "eventually",
    "frames_until",
    "hook_names",
    "hooked_app",
    "hooks_until",
    "until_markers",
    "webhook_markers",
]

REDIS_URL = os.environ.get("CLARION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# Three sockets for the whole app, wherever they are (one app per test that fills it).
CAPPED = _app("667788", "capped", max_connections=3)
CAPPED_TOO = _app("667789", "cappedtoo", max_connections=3)
# A module shares one cluster; each test gets an app of its own from this pool (channels,
# members, users and caches are per app: the tests cannot see each other).
APP_POOL = tuple(_app(str(700100 + i), f"pool{i}", enable_client_messages=True) for i in range(24))
DEFAULT_APPS = (MAIN, COUNTED, CAPPED, CAPPED_TOO, *APP_POOL)

# Webhook timings small enough for tests (the README's settings).
HOLDBACK_S = 0.3
FAST_WEBHOOKS = {
    "CLARION_WEBHOOK_BATCH_MS": "20",
    "CLARION_WEBHOOK_HOLDBACK_S": str(HOLDBACK_S),
    "CLARION_WEBHOOK_RETRY_INITIAL_S": "0.05",
    "CLARION_WEBHOOK_RETRY_MAX_S": "0.2",
}


HOOK_TYPES = frozenset(
    {"channel_occupied", "channel_vacated", "member_added", "member_removed", "client_event"}
)


def hooked_app(
    receiver: WebhookReceiver, path: str = "hook", types: frozenset[str] = HOOK_TYPES
) -> App:
    """An app whose one webhook endpoint is the receiver, for the given event types."""
    return App(
        id=AppId(receiver.app.id),
        key=AppKey(receiver.app.key),
        secret=receiver.app.secret,
        name=receiver.app.name or "hooked",
        enable_client_messages=True,
        webhooks=(Webhook(receiver.url(path), types),),
    )


# ---- the apps as a TOML file -----------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, tuple | list | frozenset | set):
        items = sorted(value) if isinstance(value, frozenset | set) else list(value)
        return "[" + ", ".join(_toml_value(v) for v in items) + "]"
    raise TypeError(f"no TOML for {value!r}")


def apps_toml(apps: tuple[App, ...]) -> str:
    lines: list[str] = []
    for app in apps:
        lines.append("[[apps]]")
        for f in dataclasses.fields(App):
            if f.name == "webhooks":
                continue
            lines.append(f"{f.name} = {_toml_value(getattr(app, f.name))}")
        for hook in app.webhooks:
            lines.append("[[apps.webhooks]]")
            lines.append(f"url = {_toml_value(hook.url)}")
            lines.append(f"event_types = {_toml_value(hook.event_types)}")
        lines.append("")
    return "\n".join(lines)


# ---- one node: a `clarion serve` process ----------------------------------------------------

_LISTENING = re.compile(r"clarion: listening on ws://127\.0\.0\.1:(\d+)")


class Node:
    """One `clarion serve` process; its port, its output, per-app SDK clients and sockets."""

    def __init__(self, cluster: Cluster, index: int) -> None:
        self.cluster = cluster
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.output: list[str] = []
        self._drains: list[asyncio.Task[None]] = []
        self._sdks: dict[str, pusher.Pusher] = {}

    def __repr__(self) -> str:
        return f"<node {self.index} port {self.port}>"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> Node:
        self.output = []
        self.proc = await asyncio.create_subprocess_exec(
            *clarion_command(),
            "serve",
            "--host",
            HOST,
            "--port",
            "0",
            env=self.cluster.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._drains = [asyncio.create_task(self._drain(self.proc.stderr, "err"))]
        try:
            async with asyncio.timeout(3 * TIMEOUT):
                while True:
                    line = (await self.proc.stdout.readline()).decode()
                    if not line:
                        await self._reap()
                        raise AssertionError(f"node {self.index} exited: {self.log()}")
                    self.output.append(f"out: {line.rstrip()}")
                    match = _LISTENING.search(line)
                    if match:
                        self.port = int(match.group(1))
                        break
        except BaseException:
            await self.kill()
            raise
        # Keep reading its output: a full pipe would stall the node.
        self._drains.append(asyncio.create_task(self._drain(self.proc.stdout, "out")))
        self._sdks = {}
        return self

    async def _drain(self, stream: asyncio.StreamReader, tag: str) -> None:
        while line := await stream.readline():
            self.output.append(f"{tag}: {line.decode(errors='replace').rstrip()}")

    def log(self) -> str:
        return f"\n--- node {self.index} (port {self.port}) ---\n" + "\n".join(self.output[-80:])

    def error_lines(self) -> list[str]:
        return [
            line
            for line in self.output
            if " ERROR " in line or " CRITICAL " in line or "Traceback" in line
        ]

    # SDK: the HTTP API of this node
    def sdk(self, app: App | None = None) -> pusher.Pusher:
        app = app or self.cluster.app
        client = self._sdks.get(app.id)
        if client is None:
            client = self._sdks[app.id] = sdk(self.port, app)
        return client

    async def trigger(
        self, channels: str | list[str], event: str, data: Any, app: App | None = None, **kw: Any
    ) -> Any:
        return await asyncio.to_thread(self.sdk(app).trigger, channels, event, data, **kw)

    async def api(self, method: str, *args: Any, app: App | None = None, **kw: Any) -> Any:
        """`await node.api("channels_info", ...)`: any SDK method, in a thread."""
        return await asyncio.to_thread(getattr(self.sdk(app), method), *args, **kw)

    # WebSockets
    async def open(self, app: App | None = None, **kwargs: Any) -> Any:
        """A raw `websockets` connection to this node (closed at teardown); nothing read."""
        ws = await open_ws(self.port, (app or self.cluster.app).key, **kwargs)
        self.cluster._sockets.append(ws)
        return ws

    async def connect(self, app: App | None = None, **kwargs: Any) -> WsClient:
        """Open a socket to this node and read its `pusher:connection_established`."""
        ws = await self.open(app, **kwargs)
        text = await asyncio.wait_for(ws.recv(), TIMEOUT)
        msg = json.loads(text)
        assert msg.get("event") == "pusher:connection_established", (msg, self)
        client = WsClient(ws, msg)
        client.node = self  # type: ignore[attr-defined]
        return client

    # ending
    def _close_sdks(self) -> None:
        for api in self._sdks.values():
            api._pusher_client.http.session.close()
            api._authentication_client.http.session.close()
        self._sdks = {}

    async def kill(self) -> None:
        """SIGKILL: no goodbye to clients, nothing cleaned up in Redis."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
        await self._reap()

    async def stop(self) -> int | None:
        """SIGTERM and wait (a graceful shutdown); SIGKILL if it takes too long."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 3 * TIMEOUT)
            except TimeoutError:
                self.output.append("harness: no exit after SIGTERM, killed")
                self.proc.kill()
        await self._reap()
        return self.proc.returncode if self.proc is not None else None

    async def _reap(self) -> None:
        self._close_sdks()
        if self.proc is not None:
            await self.proc.wait()
        for task in self._drains:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, TIMEOUT)
        self._drains = []


# ---- the cluster --------------------------------------------------------------------------


class Cluster:
    """N nodes sharing one Redis under a key prefix of their own."""

    def __init__(
        self,
        workdir: Path,
        *,
        apps: tuple[App, ...] = DEFAULT_APPS,
        redis_url: str = REDIS_URL,
        lease_s: float = 10.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.apps = apps
        self.redis_url = redis_url
        self.prefix = f"clarion-test:{uuid.uuid4().hex}"
        self.lease_s = lease_s
        config = workdir / "clarion.toml"
        config.write_text(apps_toml(apps))
        base = {k: v for k, v in os.environ.items() if not k.startswith(("CLARION_", "PUSHER_"))}
        self.env = {
            **base,
            "CLARION_CONFIG": str(config),
            "CLARION_REDIS_URL": redis_url,
            "CLARION_REDIS_PREFIX": self.prefix,
            "CLARION_NODE_LEASE_S": str(lease_s),
            "CLARION_SHUTDOWN_TIMEOUT": str(TIMEOUT),
            "CLARION_LOG_LEVEL": "info",
            **FAST_WEBHOOKS,
            **(env or {}),
        }
        self.nodes: list[Node] = []
        self._sockets: list[Any] = []
        # The app `join`, `trigger`, `connect` ... use when none is given.
        self.app: App = MAIN
        self._pool = iter(app for app in apps if app in APP_POOL)
        # Tests that break things on purpose (a killed node, a dead Redis) expect errors logged.
        self.errors_expected = False

    def __getitem__(self, index: int) -> Node:
        return self.nodes[index]

    @property
    def alive(self) -> list[Node]:
        return [node for node in self.nodes if node.alive]

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls, n: int = 3, workdir: Path | None = None, **kwargs: Any
    ) -> AsyncIterator[Cluster]:
        with contextlib.ExitStack() as stack:
            if workdir is None:
                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="clarion-")))
            cluster = cls(workdir, **kwargs)
            try:
                await cluster.start(n)
                yield cluster
            except BaseException as error:
                error.add_note(cluster.logs())
                await cluster.aclose()
                raise
            await cluster.aclose()
            # pytest shows a test's captured output only when it fails: the nodes' logs.
            print(cluster.logs())
            # A node that logged an error (or a traceback) in a test that broke nothing fails it.
            if not cluster.errors_expected:
                bad = {n.index: n.error_lines() for n in cluster.nodes if n.error_lines()}
                assert not bad, f"nodes logged errors: {bad}{cluster.logs()}"

    @contextlib.asynccontextmanager
    async def test_scope(self) -> AsyncIterator[Cluster]:
        """One test on a shared cluster: an unused app from the pool as the default app; at
        the end its sockets are closed, and an error a node logged meanwhile fails it."""
        app = next(self._pool, None)
        assert app is not None, "APP_POOL is too small for the tests sharing this cluster"
        self.app = app
        first_socket = len(self._sockets)
        errors_before = {node.index: len(node.error_lines()) for node in self.nodes}
        output_before = {node.index: len(node.output) for node in self.nodes}
        try:
            yield self
        finally:
            sockets, self._sockets = self._sockets[first_socket:], self._sockets[:first_socket]
            for ws in sockets:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), TIMEOUT)
            self.app = MAIN
            # What the nodes logged during this test (shown by pytest if it failed).
            print(
                "".join(
                    f"\n--- node {n.index} (port {n.port}) ---\n"
                    + "\n".join(n.output[output_before.get(n.index, 0) :])
                    for n in self.nodes
                )
            )
        if not self.errors_expected:
            bad = {
                n.index: n.error_lines()[errors_before.get(n.index, 0) :]
                for n in self.nodes
                if len(n.error_lines()) > errors_before.get(n.index, 0)
            }
            assert not bad, f"nodes logged errors during the test: {bad}"

    async def start(self, n: int) -> list[Node]:
        """Start n more nodes at once."""
        nodes = [Node(self, len(self.nodes) + i) for i in range(n)]
        self.nodes.extend(nodes)
        await asyncio.gather(*(node.start() for node in nodes))
        return nodes

    async def add_node(self) -> Node:
        return (await self.start(1))[0]

    def logs(self) -> str:
        return "".join(node.log() for node in self.nodes)

    # channel auth and sign-in are signatures with the app secret: any node's SDK makes them
    def auth(
        self,
        client: WsClient,
        channel: str,
        custom_data: dict[str, Any] | None = None,
        app: App | None = None,
    ) -> dict[str, Any]:
        return channel_auth(client, channel, app or self.app, custom_data)

    async def subscribe(
        self,
        client: WsClient,
        channel: str,
        custom_data: dict[str, Any] | None = None,
        app: App | None = None,
    ) -> None:
        await subscribe_signed(client, channel, app or self.app, custom_data)

    async def subscribe_ok(
        self,
        client: WsClient,
        channel: str,
        custom_data: dict[str, Any] | None = None,
        app: App | None = None,
    ) -> Any:
        await self.subscribe(client, channel, custom_data, app)
        return await client.expect_succeeded(channel)

    async def join(
        self,
        node: Node,
        channel: str,
        user: str | None = None,
        app: App | None = None,
        info: dict[str, Any] | None = None,
    ) -> WsClient:
        """A new socket on `node`, subscribed to `channel` (as `user` on presence channels)."""
        client = await node.connect(app)
        custom = None
        if user is not None:
            custom = {"user_id": user}
            if info is not None:
                custom["user_info"] = info
        await self.subscribe_ok(client, channel, custom, app)
        return client

    async def signin_ok(
        self, client: WsClient, user_data: dict[str, Any], app: App | None = None
    ) -> dict[str, Any]:
        app = app or self.app
        signed = pusher.Pusher(app.id, app.key, app.secret).authenticate_user(
            client.socket_id, user_data
        )
        await client.send_event(
            "pusher:signin", {"auth": signed["auth"], "user_data": signed["user_data"]}
        )
        msg = await client.expect("pusher:signin_success")
        assert data_of(msg) == {"user_data": signed["user_data"]}, msg
        return msg

    # teardown
    async def aclose(self) -> None:
        for ws in self._sockets:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), TIMEOUT)
        await asyncio.gather(*(node.stop() for node in self.nodes), return_exceptions=True)
        if self.redis_url == REDIS_URL:
            await delete_prefix(self.redis_url, self.prefix)


async def delete_prefix(url: str, prefix: str, attempts: int = 5) -> int:
    """UNLINK every key under `prefix` (never a flush: the Redis is shared). Retried: a busy
    machine can run out of ephemeral ports for a moment, and a leak would outlive the test."""
    for attempt in range(attempts):
        try:
            return await _delete_prefix_once(url, prefix)
        except aioredis.ConnectionError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))  # back-off between retries, not a sync
    return 0


async def _delete_prefix_once(url: str, prefix: str) -> int:
    client = aioredis.Redis.from_url(url, socket_timeout=TIMEOUT)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await client.unlink(*batch)
                batch = []
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return deleted


async def prefix_keys(url: str, prefix: str) -> list[bytes]:
    client = aioredis.Redis.from_url(url, socket_timeout=TIMEOUT)
    try:
        return [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
    finally:
        await client.aclose()


# ---- webhooks ----------------------------------------------------------------------------

_marker_ids = itertools.count()


async def webhook_markers(cluster: Cluster, receiver: WebhookReceiver, app: App) -> None:
    """Each live node makes a `marker-N` channel occupied and vacated (vacated is held back like
    channel_vacated and member_removed); return once every marker's channel_vacated has
    arrived. Anything a node emitted before would have arrived by then."""
    expected = []
    for node in cluster.alive:
        channel = f"marker-{next(_marker_ids)}"
        client = await cluster.join(node, channel, app=app)
        await client.close()
        expected.append(f"channel_vacated:{channel}")
    await hooks_until(receiver, lambda: all(name in receiver.names() for name in expected))


async def hooks_until(
    receiver: WebhookReceiver, predicate: Callable[[], bool], within: float = TIMEOUT
) -> None:
    """`receiver.until`, failing with what did arrive."""
    try:
        await receiver.until(predicate, within)
    except TimeoutError:
        raise AssertionError(
            f"webhooks: condition not met in {within:.1f}s; got {receiver.names()}"
        ) from None


def hook_names(receiver: WebhookReceiver) -> list[str]:
    """`name:channel[:user_id]` of every accepted webhook event, markers left out."""
    return [n for n in receiver.names() if not n.split(":")[1].startswith("marker-")]


# ---- a private redis-server (for the tests that kill Redis) --------------------------------


class PrivateRedis:
    """`redis-server` on a unix socket only (`--port 0`), no persistence: a restart is empty."""

    def __init__(self) -> None:
        # Short path: unix socket paths are limited to ~107 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="clr-redis-", dir="/tmp"))
        self.socket = self.dir / "redis.sock"
        self.proc: asyncio.subprocess.Process | None = None
        self.output: list[str] = []
        self._drain: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    async def start(self) -> PrivateRedis:
        self.proc = await asyncio.create_subprocess_exec(
            "redis-server",
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(3 * TIMEOUT):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                assert line, f"redis-server exited: {self.output}"
                self.output.append(line.rstrip())
                if "ready to accept connections" in line.lower():
                    break
        self._drain = asyncio.create_task(self._read(self.proc.stdout))
        return self

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.output.append(line.decode(errors="replace").rstrip())

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._drain is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._drain, TIMEOUT)
            self._drain = None

    async def restart(self) -> PrivateRedis:
        await self.kill()
        return await self.start()

    async def aclose(self) -> None:
        await self.kill()
        with contextlib.suppress(OSError):
            self.socket.unlink()
        with contextlib.suppress(OSError):
            self.dir.rmdir()


# ---- waiting on frames -------------------------------------------------------------------


async def frames_until(
    client: WsClient,
    event: str,
    channel: str | None = None,
    within: float = TIMEOUT,
    data: Any = None,
) -> list[dict[str, Any]]:
    """Read until a frame with this event (and channel, and decoded data if given) arrives;
    return the frames that came before it. The marker's own frame is not returned."""
    before: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        while True:
            msg = await client.recv(within)
            if (
                msg.get("event") == event
                and (channel is None or msg.get("channel") == channel)
                and (data is None or data_of(msg) == data)
            ):
                return before
            before.append(msg)


async def until_markers(
    client: WsClient, channels: set[str], event: str = "marker", within: float = TIMEOUT
) -> list[dict[str, Any]]:
    """Read until a `marker` frame has arrived on each of `channels` (in any order); return the
    other frames, in order."""
    waiting = set(channels)
    before: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        while waiting:
            msg = await client.recv(within)
            if msg.get("event") == event and msg.get("channel") in waiting:
                waiting.discard(msg["channel"])
            else:
                before.append(msg)
    return before


class Recorder:
    """Reads one socket in the background: every frame in order, and how it ended."""

    def __init__(self, client: WsClient, name: str = "") -> None:
        self.client = client
        self.name = name
        self.frames: list[dict[str, Any]] = []
        self.by_event: dict[str, list[dict[str, Any]]] = {}
        self.close_code: int | None = None
        self.ended = False
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                text = await self.client.ws.recv()
                msg = json.loads(text)
                if msg.get("event") == "pusher:ping":
                    await self.client.send_event("pusher:pong")
                self.frames.append(msg)
                self.by_event.setdefault(msg.get("event", ""), []).append(msg)
                self._changed.set()
        except ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd is not None else None
        finally:
            self.ended = True
            self._changed.set()

    async def until(self, predicate: Callable[[], bool], within: float = TIMEOUT) -> None:
        try:
            async with asyncio.timeout(within):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"{self.name}: condition not met in {within:.1f}s; "
                f"{len(self.frames)} frames, the last: {self.frames[-20:]}"
            ) from None

    def events(self, event: str | None = None, channel: str | None = None) -> list[dict[str, Any]]:
        frames = self.frames if event is None else self.by_event.get(event, [])
        return [f for f in frames if channel is None or f.get("channel") == channel]

    def data(self, event: str, channel: str | None = None) -> list[Any]:
        """The decoded data of every frame of this event (and channel), in order."""
        return [data_of(f) for f in self.events(event, channel)]

    def has(self, event: str, channel: str | None = None, data: Any = None) -> bool:
        return any(data is None or data_of(f) == data for f in self.events(event, channel))

    async def wait_for(
        self, event: str, channel: str | None = None, data: Any = None, within: float = TIMEOUT
    ) -> None:
        await self.until(lambda: self.has(event, channel, data), within)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


async def eventually(
    check: Callable[[], Awaitable[Any]], within: float = TIMEOUT, every: float = 0.05
) -> Any:
    """Poll `check` (an async callable that raises AssertionError until the state is right)
    until it passes; for state with no event to wait on (HTTP API answers after a change,
    connection counts). Re-raises the last AssertionError at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            return await check()
        except AssertionError:
            if loop.time() >= deadline:
                raise
        await asyncio.sleep(every)
