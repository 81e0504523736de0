"""The narrow interfaces between the node and the outside world. Protocols only.

Implementations are named `<Impl><Port>` (`MemoryBroker`, later `RedisBroker`); the memory ones
are the embedded default and what unit tests use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from clarion.core.apps import App
from clarion.core.envelope import Envelope
from clarion.types import AppId


class Connection(Protocol):
    """One client socket as the node sees it. Implemented by the transport."""

    def write(self, frame: bytes) -> None:
        """Queue an already-framed WebSocket message; never blocks, never raises."""

    def close(self, code: int, reason: str) -> None:
        """Send a close frame with `code` and drop the socket; idempotent."""


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


class AppStore(Protocol):
    """Apps by key and by id. Look-ups are synchronous: a store backed by I/O keeps a cache
    refreshed in the background, so a connection upgrade never waits on a database."""

    def by_key(self, key: str) -> App | None: ...

    def by_id(self, app_id: str) -> App | None: ...

    def all(self) -> Iterable[App]: ...
