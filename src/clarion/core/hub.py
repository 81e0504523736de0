"""This node's index of its own sockets: app -> channel -> sessions, for local fan-out.

Only local state lives here. What must be exact across a cluster (presence rosters, channel
occupancy, connection counts) lives behind the store ports.
"""

from __future__ import annotations

from clarion.core.session import Session
from clarion.types import AppId, SocketId

_NO_SUBSCRIBERS: dict[SocketId, Session] = {}


class Hub:
    __slots__ = ("_channels", "_per_app", "sessions")

    def __init__(self) -> None:
        self.sessions: dict[SocketId, Session] = {}
        self._channels: dict[AppId, dict[str, dict[SocketId, Session]]] = {}
        self._per_app: dict[AppId, int] = {}

    def add(self, session: Session) -> None:
        self.sessions[session.socket_id] = session
        app_id = session.app.id
        self._per_app[app_id] = self._per_app.get(app_id, 0) + 1

    def remove(self, session: Session) -> None:
        if self.sessions.pop(session.socket_id, None) is None:
            return
        app_id = session.app.id
        self._per_app[app_id] -= 1
        if not self._per_app[app_id]:
            del self._per_app[app_id]

    def connection_count(self, app_id: AppId) -> int:
        return self._per_app.get(app_id, 0)

    def subscribe(self, session: Session, channel: str, member_id: str | None) -> None:
        by_channel = self._channels.setdefault(session.app.id, {})
        by_channel.setdefault(channel, {})[session.socket_id] = session
        session.channels[channel] = member_id

    def unsubscribe(self, session: Session, channel: str) -> None:
        session.channels.pop(channel, None)
        by_channel = self._channels.get(session.app.id)
        if by_channel is None:
            return
        subscribers = by_channel.get(channel)
        if subscribers is None:
            return
        subscribers.pop(session.socket_id, None)
        if not subscribers:
            del by_channel[channel]
            if not by_channel:
                del self._channels[session.app.id]

    def subscribers(self, app_id: AppId, channel: str) -> dict[SocketId, Session]:
        by_channel = self._channels.get(app_id)
        if by_channel is None:
            return _NO_SUBSCRIBERS
        return by_channel.get(channel, _NO_SUBSCRIBERS)
