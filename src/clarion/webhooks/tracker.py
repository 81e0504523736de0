"""Which submitted webhook events are settled: a reference count per event, by identity.

The dispatcher fans one event out to every endpoint that wants it, and the hold-back rules may
hold, cancel or de-duplicate it (reference 6). A caller that keeps a durable copy (the Redis
queue) must learn when the event needs nothing more: delivered by every endpoint, given up after
the retry period, or discarded by the rules. Then, and only then, `done` is called, once.

Events are tracked by identity, not by value: two identical `channel_vacated` for one channel are
two events to acknowledge. An event the tracker does not know (the in-memory dispatcher's) is
ignored at the cost of one dict test, so the embedded server pays nothing for this.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from clarion.protocol.webhooks import WebhookEvent


@dataclasses.dataclass(slots=True)
class _Open:
    # Kept so the object stays alive while tracked: its id() cannot be reused meanwhile.
    event: WebhookEvent
    done: Callable[[], None]
    copies: int


class Tracker:
    def __init__(self) -> None:
        self._open: dict[int, _Open] = {}

    def __len__(self) -> int:
        """How many events are tracked and not yet settled."""
        return len(self._open)

    def track(self, event: WebhookEvent, done: Callable[[], None]) -> WebhookEvent:
        """Track `event` with one copy outstanding: the caller's, until it lets go with `settle`.
        Returns the object to pass on: a fresh copy if this very object is already tracked."""
        if id(event) in self._open:
            event = dataclasses.replace(event)
        self._open[id(event)] = _Open(event, done, 1)
        return event

    def add_copy(self, event: WebhookEvent) -> None:
        """One more copy of a tracked event is out (queued for one more endpoint)."""
        if self._open:
            entry = self._open.get(id(event))
            if entry is not None:
                entry.copies += 1

    def settle(self, event: WebhookEvent) -> None:
        """One copy needs nothing more; the last one calls `done`."""
        if not self._open:
            return
        entry = self._open.get(id(event))
        if entry is None:
            return
        entry.copies -= 1
        if entry.copies == 0:
            del self._open[id(event)]
            entry.done()

    def settle_all(self, events: Iterable[WebhookEvent]) -> None:
        if self._open:
            for event in events:
                self.settle(event)

    def forget(self) -> int:
        """Stop tracking everything without calling `done` (the caller keeps those events);
        returns how many there were."""
        count = len(self._open)
        self._open.clear()
        return count
