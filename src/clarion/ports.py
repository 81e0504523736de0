"""The narrow interfaces between the node and the outside world. Protocols only.

Implementations are named `<Impl><Port>` (`MemoryBroker`, later `RedisBroker`); the memory ones
are the embedded default and what unit tests use.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from clarion.core.apps import App
from clarion.core.envelope import Envelope
from clarion.core.session import Session
from clarion.protocol.webhooks import WebhookEvent
from clarion.types import AppId, SocketId


class Connection(Protocol):
    """One client socket as the node sees it. Implemented by the transport."""

    def write(self, frame: bytes) -> None:
        """Queue an already-framed WebSocket message; never blocks, never raises."""

    def close(self, code: int, reason: str) -> None:
        """Send a close frame with `code` and drop the socket; idempotent."""


class FanOut(Protocol):
    """Writes one frame to every session of a channel's (or user's) index but `excluded`: the
    last step of the node's one fan-out path. Implemented by the transport, which knows its own
    connection class: the compiled build then calls its `write` directly, not by name (about
    a fifth of what a delivery costs, docs/benchmarks.md)."""

    def __call__(
        self, sessions: dict[SocketId, Session], frame: bytes, excluded: SocketId | None
    ) -> None: ...


class Broker(Protocol):
    """Carries envelopes to every node, this one included.

    Contract: every published envelope reaches the bound `deliver` of every live node exactly
    once; envelopes published by one node arrive in the order it published them. `publish`
    never blocks the caller: a networked broker queues and sends in the background.
    """

    def bind(self, deliver: Callable[[Envelope], None]) -> None: ...

    def publish(self, envelope: Envelope) -> None: ...

    async def close(self) -> None: ...


class PresenceStore(Protocol):
    """Presence members per (app, channel), exact across the cluster (reference 2.6).

    `join` answers True only for the user's first socket in the channel, `leave` only for the
    last; the two are idempotent per socket id.
    """

    async def join(
        self, app_id: AppId, channel: str, user_id: str, socket_id: str, user_info: Any
    ) -> bool: ...

    async def leave(self, app_id: AppId, channel: str, user_id: str, socket_id: str) -> bool: ...

    async def members(self, app_id: AppId, channel: str) -> dict[str, Any]: ...

    async def count(self, app_id: AppId, channel: str) -> int: ...


class ChannelStore(Protocol):
    """Subscription counts per (app, channel), exact across the cluster.

    `add` and `remove` return the count after the change and are idempotent per socket id, so a
    count goes 0 -> 1 (occupied) and 1 -> 0 (vacated) exactly once.
    """

    async def add(self, app_id: AppId, channel: str, socket_id: str) -> int: ...

    async def remove(self, app_id: AppId, channel: str, socket_id: str) -> int: ...

    async def count(self, app_id: AppId, channel: str) -> int: ...

    async def occupied(self, app_id: AppId, prefix: str) -> dict[str, int]:
        """Every channel with at least one subscriber whose name starts with `prefix`."""
        ...


class ConnectionQuota(Protocol):
    """Open connections per app, counted across the cluster for `max_connections`.

    `acquire` admits one more connection unless the app already holds `limit`; every admitted
    connection is given back with `release` when it closes.
    """

    async def acquire(self, app_id: AppId, limit: int) -> bool: ...

    async def release(self, app_id: AppId) -> None: ...


class ChangeKind(enum.Enum):
    MEMBER_ADDED = "member_added"
    MEMBER_REMOVED = "member_removed"
    CHANNEL_COUNT = "channel_count"
    USER_ONLINE = "user_online"
    USER_OFFLINE = "user_offline"


@dataclass(frozen=True, slots=True)
class ClusterChange:
    """A transition a store observed that no local socket caused: a dead node's members and
    subscriptions expired, or this node's state came back after it had been expired. The node
    announces it (events, webhooks) exactly as if a local socket had caused it."""

    kind: ChangeKind
    app_id: AppId
    channel: str = ""
    user_id: str = ""
    user_info: Any = None
    count: int = 0  # CHANNEL_COUNT: subscribers after the change
    before: int = 0  # CHANNEL_COUNT: subscribers before it


class AppStore(Protocol):
    """Apps by key and by id. Look-ups are synchronous: a store backed by I/O keeps a cache
    refreshed in the background, so a connection upgrade never waits on a database."""

    def by_key(self, key: str) -> App | None: ...

    def by_id(self, app_id: str) -> App | None: ...

    def all(self) -> Iterable[App]: ...


class UserStore(Protocol):
    """Signed-in users per app, exact across the cluster (reference 3.2, 3.3).

    `sign_in` answers True only for a user's first socket (the user comes online), `sign_out`
    only for the last (the user goes offline); both are idempotent per socket id.
    """

    async def sign_in(self, app_id: AppId, user_id: str, socket_id: str) -> bool: ...

    async def sign_out(self, app_id: AppId, user_id: str, socket_id: str) -> bool: ...

    async def online(self, app_id: AppId, user_ids: Iterable[str]) -> list[str]:
        """The ids of `user_ids` that have at least one signed-in socket, in the given order."""
        ...


@dataclass(frozen=True, slots=True)
class CachedEvent:
    event: str
    data: str
    ttl_seconds: int  # left before it expires


class CacheStore(Protocol):
    """The last HTTP API event of each cache channel (reference 2.8), shared by the cluster."""

    async def put(self, app_id: AppId, channel: str, event: str, data: str, ttl: int) -> None: ...

    async def get(self, app_id: AppId, channel: str) -> CachedEvent | None: ...


class WebhookSink(Protocol):
    """Where the node hands webhook events (reference 6). `emit` never blocks nor raises: the
    implementation filters by the app's endpoints, holds back and cancels vacated/removed
    events, batches, signs, delivers and retries in the background."""

    def emit(self, app: App, event: WebhookEvent) -> None: ...
