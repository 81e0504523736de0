"""Recording fakes for the unit suite: no sockets, no sleeps, time moved by hand."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from clarion.backends.memory import (
    MemoryAppStore,
    MemoryBroker,
    MemoryCacheStore,
    MemoryChannelStore,
    MemoryConnectionQuota,
    MemoryPresenceStore,
    MemoryUserStore,
)
from clarion.core.apps import App
from clarion.core.session import Session
from clarion.node import Node, NodeSettings
from clarion.ports import CacheStore, PresenceStore
from clarion.protocol.webhooks import WebhookEvent
from clarion.transport.server import write_each
from clarion.types import AppId, AppKey


def make_app(**overrides: Any) -> App:
    """The reference's section 9 app (`app-id` / `app-key` / `app-secret`) unless overridden."""
    values: dict[str, Any] = {
        "id": AppId("app-id"),
        "key": AppKey("app-key"),
        "secret": "app-secret",
    }
    values.update(overrides)
    return App(**values)


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeConnection:
    """Records what the node writes and whether it closed the socket.

    The node under test is built with `frame=lambda text: text.encode()`, so every written
    frame is the UTF-8 of one JSON text.
    """

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closes: list[tuple[int, str]] = []

    def write(self, frame: bytes) -> None:
        self.written.append(frame)

    def close(self, code: int, reason: str) -> None:
        self.closes.append((code, reason))

    # ---- reading what was recorded --------------------------------------------------------

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(raw.decode()) for raw in self.written]

    @property
    def texts(self) -> list[str]:
        return [raw.decode() for raw in self.written]

    def events(self) -> list[str]:
        return [frame["event"] for frame in self.frames]

    def of(self, event: str) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame["event"] == event]

    def only(self, event: str) -> dict[str, Any]:
        matches = self.of(event)
        assert len(matches) == 1, f"expected one {event}, got {self.events()}"
        return matches[0]

    def clear(self) -> None:
        self.written.clear()

    @property
    def closed(self) -> bool:
        return bool(self.closes)


class CountingFrame:
    """The node's `frame` callable: UTF-8 encodes, and counts how often it was called."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, text: str) -> bytes:
        self.calls += 1
        return text.encode()


class RecordingWebhooks:
    """The WebhookSink port, recording what the node emits (delivery is tested on its own)."""

    def __init__(self) -> None:
        self.emitted: list[tuple[str, WebhookEvent]] = []

    def emit(self, app: App, event: WebhookEvent) -> None:
        self.emitted.append((app.id, event))

    def names(self) -> list[str]:
        return [event.name for _, event in self.emitted]


class NodeHarness:
    """A Node wired to the memory backends, a fake clock and a counting frame function."""

    def __init__(
        self,
        *apps: App,
        settings: NodeSettings | None = None,
        presence: PresenceStore | None = None,
        cache: CacheStore | None = None,
    ) -> None:
        self.apps = apps or (make_app(),)
        self.clock = FakeClock()
        self.frame = CountingFrame()
        self.broker = MemoryBroker()
        self.presence = presence or MemoryPresenceStore()
        self.channels = MemoryChannelStore()
        self.users = MemoryUserStore()
        self.cache = cache or MemoryCacheStore(self.clock)
        self.webhooks = RecordingWebhooks()
        self.node = Node(
            apps=MemoryAppStore(self.apps),
            broker=self.broker,
            presence=self.presence,
            channels=self.channels,
            users=self.users,
            cache=self.cache,
            quota=MemoryConnectionQuota(),
            webhooks=self.webhooks,
            frame=self.frame,
            write_each=write_each,
            clock=self.clock,
            settings=settings,
        )


# ---- driving a NodeHarness like a client ------------------------------------------------


def sign(to_sign: str, secret: str = "app-secret") -> str:
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def channel_token(socket_id: str, channel: str, channel_data: str | None = None) -> str:
    """Reference 3.1: `app-key:<hex>` over `socket_id:channel[:channel_data]`."""
    to_sign = f"{socket_id}:{channel}" + (f":{channel_data}" if channel_data is not None else "")
    return f"app-key:{sign(to_sign)}"


def user_token(socket_id: str, user_data: str) -> str:
    """Reference 3.2: `app-key:<hex>` over `<socket_id>::user::<user_data>`."""
    return f"app-key:{sign(f'{socket_id}::user::{user_data}')}"


def connect(h: NodeHarness, key: str = "app-key") -> tuple[Session, FakeConnection]:
    """Open a socket and forget its connection_established frame."""
    conn = FakeConnection()
    session = h.node.on_open(conn, key, "7", None)
    assert session is not None
    conn.clear()
    return session, conn


def send(h: NodeHarness, session: Session, event: str, data: Any = None, **extra: Any) -> None:
    frame: dict[str, Any] = {"event": event, **extra}
    if data is not None:
        frame["data"] = data
    h.node.on_message(session, json.dumps(frame))


def send_subscribe(
    h: NodeHarness,
    session: Session,
    channel: str,
    user: str | None = None,
    info: Any = None,
    auth: str | None = None,
) -> None:
    """Send a subscribe as pusher-js would (a valid token for private/presence channels)."""
    data: dict[str, Any] = {"channel": channel}
    channel_data = None
    if user is not None:
        channel_data = json.dumps({"user_id": user, "user_info": info})
        data["channel_data"] = channel_data
    if auth is None:
        needs_auth = channel.startswith(("private-", "presence-"))
        auth = channel_token(session.socket_id, channel, channel_data) if needs_auth else ""
    data["auth"] = auth
    send(h, session, "pusher:subscribe", data)


async def subscribe(
    h: NodeHarness,
    session: Session,
    channel: str,
    *,
    user: str | None = None,
    info: Any = None,
    auth: str | None = None,
) -> None:
    """Subscribe and let every step settle."""
    send_subscribe(h, session, channel, user, info, auth)
    await h.node.drain()


async def unsubscribe(h: NodeHarness, session: Session, channel: str) -> None:
    send(h, session, "pusher:unsubscribe", {"channel": channel})
    await h.node.drain()


def user_data(user_id: str, **extra: Any) -> str:
    """A `user_data` string as an app's user-auth endpoint would return it."""
    return json.dumps({"id": user_id, **extra})


async def sign_in(h: NodeHarness, session: Session, data: str, *, auth: str | None = None) -> None:
    """Send `pusher:signin` with `data` as user_data (validly signed unless `auth` given)."""
    token = user_token(session.socket_id, data) if auth is None else auth
    send(h, session, "pusher:signin", {"auth": token, "user_data": data})
    await h.node.drain()


async def close(h: NodeHarness, session: Session) -> None:
    """The transport saw the socket go."""
    h.node.on_close(session)
    await h.node.drain()


def decoded_data(frame: dict[str, Any]) -> Any:
    assert isinstance(frame["data"], str), "server-to-client data must be a JSON string"
    return json.loads(frame["data"])
