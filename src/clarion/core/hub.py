"""This node's index of its own sockets, for local fan-out:

* app -> channel -> sessions (channel events);
* app -> user id -> sessions (server-to-user events, terminate, reference 2.10 / 3.4);
* app -> watched user id -> sessions watching it (watchlist events, reference 3.3).

Only local state lives here. What must be exact across a cluster (presence rosters, channel
occupancy, connection counts, who is online) lives behind the store ports.
"""

from __future__ import annotations

from clarion.core.session import Session
from clarion.types import AppId, SocketId

_NO_SUBSCRIBERS: dict[SocketId, Session] = {}

# app -> key -> socket id -> session
_Index = dict[AppId, dict[str, dict[SocketId, Session]]]


def _index_add(index: _Index, session: Session, key: str) -> None:
    index.setdefault(session.app.id, {}).setdefault(key, {})[session.socket_id] = session


def _index_remove(index: _Index, session: Session, key: str) -> None:
    by_key = index.get(session.app.id)
    if by_key is None:
        return
    sessions = by_key.get(key)
    if sessions is None:
        return
    sessions.pop(session.socket_id, None)
    if not sessions:
        del by_key[key]
        if not by_key:
            del index[session.app.id]


def _index_get(index: _Index, app_id: AppId, key: str) -> dict[SocketId, Session]:
    by_key = index.get(app_id)
    if by_key is None:
        return _NO_SUBSCRIBERS
    return by_key.get(key, _NO_SUBSCRIBERS)


class Hub:
    __slots__ = ("_channels", "_per_app", "_users", "_watchers", "sessions")

    def __init__(self) -> None:
        self.sessions: dict[SocketId, Session] = {}
        self._channels: _Index = {}
        self._users: _Index = {}
        self._watchers: _Index = {}
        self._per_app: dict[AppId, int] = {}

    def add(self, session: Session) -> None:
        self.sessions[session.socket_id] = session
        app_id = session.app.id
        self._per_app[app_id] = self._per_app.get(app_id, 0) + 1

    def remove(self, session: Session) -> None:
        """Forget the socket. Its channels stay until the node has left them (stores first);
        its user and watchlist entries go now: a closed socket receives nothing more."""
        if self.sessions.pop(session.socket_id, None) is None:
            return
        app_id = session.app.id
        self._per_app[app_id] -= 1
        if not self._per_app[app_id]:
            del self._per_app[app_id]
        if session.user_id is not None:
            _index_remove(self._users, session, session.user_id)
        for watched in session.watchlist:
            _index_remove(self._watchers, session, watched)

    def connection_count(self, app_id: AppId) -> int:
        return self._per_app.get(app_id, 0)

    # ---- channels ------------------------------------------------------------------

    def subscribe(self, session: Session, channel: str, member_id: str | None) -> None:
        _index_add(self._channels, session, channel)
        session.channels[channel] = member_id

    def unsubscribe(self, session: Session, channel: str) -> None:
        session.channels.pop(channel, None)
        _index_remove(self._channels, session, channel)

    def subscribers(self, app_id: AppId, channel: str) -> dict[SocketId, Session]:
        return _index_get(self._channels, app_id, channel)

    # ---- users and watchlists ------------------------------------------------------

    def sign_in(self, session: Session, user_id: str, watchlist: tuple[str, ...]) -> None:
        """Index the socket under its user and its watchlist (replacing an earlier one)."""
        for watched in session.watchlist:
            _index_remove(self._watchers, session, watched)
        session.user_id = user_id
        session.watchlist = watchlist
        _index_add(self._users, session, user_id)
        for watched in watchlist:
            _index_add(self._watchers, session, watched)

    def user_sessions(self, app_id: AppId, user_id: str) -> dict[SocketId, Session]:
        return _index_get(self._users, app_id, user_id)

    def watchers(self, app_id: AppId, user_id: str) -> dict[SocketId, Session]:
        return _index_get(self._watchers, app_id, user_id)
