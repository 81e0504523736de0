"""In-process implementations of the ports: the embedded default, exact for one process."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from clarion.core.apps import App
from clarion.core.envelope import Envelope
from clarion.core.presence import Roster
from clarion.ports import CachedEvent
from clarion.types import AppId, AppKey


class MemoryBroker:
    """Delivers synchronously to the one bound node: publish order is delivery order."""

    def __init__(self) -> None:
        self._deliver: Callable[[Envelope], None] | None = None

    def bind(self, deliver: Callable[[Envelope], None]) -> None:
        self._deliver = deliver

    def publish(self, envelope: Envelope) -> None:
        if self._deliver is not None:
            self._deliver(envelope)

    async def close(self) -> None:
        self._deliver = None


class MemoryPresenceStore:
    def __init__(self) -> None:
        self._rosters: dict[tuple[AppId, str], Roster] = {}

    async def join(
        self, app_id: AppId, channel: str, user_id: str, socket_id: str, user_info: Any
    ) -> bool:
        roster = self._rosters.setdefault((app_id, channel), Roster())
        return roster.join(user_id, socket_id, user_info)

    async def leave(self, app_id: AppId, channel: str, user_id: str, socket_id: str) -> bool:
        roster = self._rosters.get((app_id, channel))
        if roster is None:
            return False
        last = roster.leave(user_id, socket_id)
        if not len(roster):
            del self._rosters[(app_id, channel)]
        return last

    async def members(self, app_id: AppId, channel: str) -> dict[str, Any]:
        roster = self._rosters.get((app_id, channel))
        return roster.members() if roster is not None else {}

    async def count(self, app_id: AppId, channel: str) -> int:
        roster = self._rosters.get((app_id, channel))
        return len(roster) if roster is not None else 0


class MemoryChannelStore:
    def __init__(self) -> None:
        self._sockets: dict[AppId, dict[str, set[str]]] = {}

    async def add(self, app_id: AppId, channel: str, socket_id: str) -> int:
        sockets = self._sockets.setdefault(app_id, {}).setdefault(channel, set())
        sockets.add(socket_id)
        return len(sockets)

    async def remove(self, app_id: AppId, channel: str, socket_id: str) -> int:
        channels = self._sockets.get(app_id, {})
        sockets = channels.get(channel)
        if sockets is None:
            return 0
        sockets.discard(socket_id)
        if not sockets:
            del channels[channel]
        return len(sockets)

    async def count(self, app_id: AppId, channel: str) -> int:
        return len(self._sockets.get(app_id, {}).get(channel, ()))

    async def occupied(self, app_id: AppId, prefix: str) -> dict[str, int]:
        channels = self._sockets.get(app_id, {})
        return {name: len(s) for name, s in channels.items() if name.startswith(prefix)}


class MemoryUserStore:
    """Signed-in sockets per (app, user): online while at least one remains (reference 3.3)."""

    def __init__(self) -> None:
        self._sockets: dict[tuple[AppId, str], set[str]] = {}

    async def sign_in(self, app_id: AppId, user_id: str, socket_id: str) -> bool:
        sockets = self._sockets.setdefault((app_id, user_id), set())
        first = not sockets
        sockets.add(socket_id)
        return first

    async def sign_out(self, app_id: AppId, user_id: str, socket_id: str) -> bool:
        key = (app_id, user_id)
        sockets = self._sockets.get(key)
        if sockets is None or socket_id not in sockets:
            return False
        sockets.discard(socket_id)
        if sockets:
            return False
        del self._sockets[key]
        return True

    async def online(self, app_id: AppId, user_ids: Iterable[str]) -> list[str]:
        return [uid for uid in user_ids if (app_id, uid) in self._sockets]


class MemoryCacheStore:
    """Last event per cache channel with its expiry (reference 2.8). `clock` is monotonic."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._events: dict[tuple[AppId, str], tuple[str, str, float]] = {}
        self._puts = 0

    async def put(self, app_id: AppId, channel: str, event: str, data: str, ttl: int) -> None:
        self._drop_expired()
        self._events[(app_id, channel)] = (event, data, self._clock() + ttl)

    async def get(self, app_id: AppId, channel: str) -> CachedEvent | None:
        entry = self._events.get((app_id, channel))
        if entry is None:
            return None
        event, data, expires = entry
        left = expires - self._clock()
        if left <= 0:
            del self._events[(app_id, channel)]
            return None
        return CachedEvent(event, data, max(1, round(left)))

    def _drop_expired(self) -> None:
        """Amortized clean-up so channels that are never read again do not pile up."""
        self._puts += 1
        if self._puts % 1024:
            return
        now = self._clock()
        for key in [k for k, (_, _, expires) in self._events.items() if expires <= now]:
            del self._events[key]


class MemoryConnectionQuota:
    """Connections per app in this process: exact when the process is the whole deployment."""

    def __init__(self) -> None:
        self._open: dict[AppId, int] = {}

    async def acquire(self, app_id: AppId, limit: int) -> bool:
        held = self._open.get(app_id, 0)
        if held >= limit:
            return False
        self._open[app_id] = held + 1
        return True

    async def release(self, app_id: AppId) -> None:
        held = self._open.get(app_id, 0) - 1
        if held > 0:
            self._open[app_id] = held
        else:
            self._open.pop(app_id, None)


class MemoryAppStore:
    """Apps from configuration (file, environment, flags), indexed by key and id."""

    def __init__(self, apps: Iterable[App]) -> None:
        self._by_key = {app.key: app for app in apps}
        self._by_id = {app.id: app for app in self._by_key.values()}

    def by_key(self, key: str) -> App | None:
        return self._by_key.get(AppKey(key))

    def by_id(self, app_id: str) -> App | None:
        return self._by_id.get(AppId(app_id))

    def all(self) -> Iterable[App]:
        return self._by_id.values()
