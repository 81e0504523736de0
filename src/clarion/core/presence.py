"""Presence rosters: members per channel, a user counted once however many sockets it has.

Rules (reference 2.6):
* a user is a member while at least one of its sockets is subscribed;
* `join` answers True only for the user's first socket (then `member_added` is sent);
* `leave` answers True only when the user's last socket leaves (then `member_removed`);
* the roster shows each user's `user_info` from its most recent join.
"""

from __future__ import annotations

from typing import Any


class Roster:
    __slots__ = ("_info", "_sockets")

    def __init__(self) -> None:
        self._sockets: dict[str, set[str]] = {}
        self._info: dict[str, Any] = {}

    def join(self, user_id: str, socket_id: str, user_info: Any) -> bool:
        sockets = self._sockets.setdefault(user_id, set())
        first = not sockets
        sockets.add(socket_id)
        self._info[user_id] = user_info
        return first

    def leave(self, user_id: str, socket_id: str) -> bool:
        sockets = self._sockets.get(user_id)
        if sockets is None or socket_id not in sockets:
            return False
        sockets.discard(socket_id)
        if sockets:
            return False
        del self._sockets[user_id]
        del self._info[user_id]
        return True

    def has(self, user_id: str) -> bool:
        return user_id in self._sockets

    def members(self) -> dict[str, Any]:
        return dict(self._info)

    def __len__(self) -> int:
        return len(self._sockets)
