"""When each socket next needs the liveness sweep's attention (reference 1.4, 3.2), so a sweep
looks only at the sockets that may be due instead of every socket every second.

A sweep over 10,000 sockets costs ~11 ms of one uninterrupted callback, once a second: every
delivery queued behind it waits, which shows up in the fan-out's tail latency. Here sockets sit
in one-second slots by the time their check falls due. A message from a socket does not move
it (that would cost on the hot path): the socket is simply found not yet due when its slot comes
round and is put back under its new time. So each socket is looked at about once per
`activity_timeout`, not once per sweep. Pure: no clock and no I/O of its own.
"""

from __future__ import annotations

import math
from typing import Generic, Protocol, TypeVar

from clarion.types import SocketId


class _Keyed(Protocol):
    @property
    def socket_id(self) -> SocketId: ...


T = TypeVar("T", bound=_Keyed)


class DeadlineWheel(Generic[T]):
    """Items filed under the whole second in which they fall due; `due(now)` takes out every
    item filed under a second that has begun by `now` (possibly a little early: the caller
    checks the real rule and files the item again)."""

    __slots__ = ("_slot_of", "_slots")

    def __init__(self) -> None:
        self._slots: dict[int, dict[SocketId, T]] = {}
        self._slot_of: dict[SocketId, int] = {}

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, socket_id: object) -> bool:
        return socket_id in self._slot_of

    def file(self, item: T, due_at: float) -> None:
        """File `item` (again) to be taken out once `due_at` is reached."""
        self.discard(item.socket_id)
        slot = math.floor(due_at)
        self._slots.setdefault(slot, {})[item.socket_id] = item
        self._slot_of[item.socket_id] = slot

    def discard(self, socket_id: SocketId) -> None:
        slot = self._slot_of.pop(socket_id, None)
        if slot is None:
            return
        items = self._slots[slot]
        del items[socket_id]
        if not items:
            del self._slots[slot]

    def due(self, now: float) -> list[T]:
        """Take out the items whose slot has begun, earliest slot first."""
        current = math.floor(now)
        ready = sorted(slot for slot in self._slots if slot <= current)
        taken: list[T] = []
        for slot in ready:
            items = self._slots.pop(slot)
            for socket_id in items:
                del self._slot_of[socket_id]
            taken.extend(items.values())
        return taken
