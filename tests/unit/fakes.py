"""Recording fakes for the unit suite: no sockets, no sleeps, time moved by hand."""

from __future__ import annotations

import json
from typing import Any

from clarion.backends.memory import (
    MemoryAppStore,
    MemoryBroker,
    MemoryCacheStore,
    MemoryChannelStore,
    MemoryPresenceStore,
    MemoryUserStore,
)
from clarion.core.apps import App
from clarion.node import Node, NodeSettings
from clarion.protocol.webhooks import WebhookEvent
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

    def __init__(self, *apps: App, settings: NodeSettings | None = None) -> None:
        self.apps = apps or (make_app(),)
        self.clock = FakeClock()
        self.frame = CountingFrame()
        self.broker = MemoryBroker()
        self.presence = MemoryPresenceStore()
        self.channels = MemoryChannelStore()
        self.users = MemoryUserStore()
        self.cache = MemoryCacheStore(self.clock)
        self.webhooks = RecordingWebhooks()
        self.node = Node(
            apps=MemoryAppStore(self.apps),
            broker=self.broker,
            presence=self.presence,
            channels=self.channels,
            users=self.users,
            cache=self.cache,
            webhooks=self.webhooks,
            frame=self.frame,
            clock=self.clock,
            settings=settings,
        )
