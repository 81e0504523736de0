"""Which webhook events are sent, and when: the hold-back and de-duplication rules (reference 6).

Rules, applied per app before events are fanned out to the app's endpoints:

1. `channel_vacated` for (app, channel) is held for `holdback_s`. If `channel_occupied` for the same
   (app, channel) is offered before it is released, both are dropped: Pusher delays vacated "up to
   3 s; if the client comes back in that window nothing is sent" (reference 6).
2. `member_removed` / `member_added` follow rule 1, keyed by (app, channel, user_id).
3. `cache_miss` for (app, channel) is dropped if one for the same channel was accepted less than
   `holdback_s` ago: simultaneous subscribers to an empty cache channel make one webhook.
4. Every other event passes straight through.

Held events are released in the order they were offered (one `holdback_s` for all, and time only
moves forward, so release order is emission order). An event offered after a held one is due
is returned behind it, so a late timer never reorders them.

Every event the rules discard (both of a cancelled pair, a second held event for a key already
held, a duplicate cache_miss) is passed to `on_drop`, if given: a caller that must account for
each event it offered (the Redis queue acknowledges each one) learns its fate there.

Pure: no clock, no I/O. Times are floats from one monotonic clock, passed in by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clarion.core.apps import App
from clarion.protocol.webhooks import (
    CACHE_MISS,
    CHANNEL_OCCUPIED,
    CHANNEL_VACATED,
    MEMBER_ADDED,
    MEMBER_REMOVED,
    WebhookEvent,
)

Release = tuple[App, WebhookEvent]

# The held event -> the event that cancels it, and back.
HELD = {CHANNEL_VACATED: CHANNEL_OCCUPIED, MEMBER_REMOVED: MEMBER_ADDED}
CANCELS = {cancel: held for held, cancel in HELD.items()}

_Key = tuple[str, ...]


def wanted(app: App, name: str) -> bool:
    """Whether an event concerns the app at all: an endpoint wants it, or wants the held event
    it cancels (an app that only listens to `channel_vacated` still needs `channel_occupied` to
    reach the hold-back, or a quick rejoin would be reported as vacated)."""
    if not app.webhooks:
        return False
    if app.wants_webhook(name):
        return True
    held = CANCELS.get(name)
    return held is not None and app.wants_webhook(held)


@dataclass(frozen=True, slots=True)
class _Held:
    deadline: float
    app: App
    event: WebhookEvent


def _key(app: App, event: WebhookEvent) -> _Key:
    """One key for a held event and the event that cancels it."""
    if event.name in (MEMBER_REMOVED, MEMBER_ADDED):
        return ("member", app.id, event.channel, event.user_id or "")
    return ("channel", app.id, event.channel)


class Holdback:
    """Holds, cancels and de-duplicates webhook events by the rules at the top of this module."""

    def __init__(
        self, holdback_s: float, on_drop: Callable[[WebhookEvent], None] | None = None
    ) -> None:
        self._holdback_s = holdback_s
        self._on_drop = on_drop
        # Insertion order is deadline order: every deadline is `now + holdback_s`.
        self._held: dict[_Key, _Held] = {}
        # (app id, channel) -> when its last cache_miss was accepted; oldest first.
        self._misses: dict[tuple[str, str], float] = {}

    def __len__(self) -> int:
        """How many events are held."""
        return len(self._held)

    def offer(self, app: App, event: WebhookEvent, now: float) -> list[Release]:
        """The events to send now, in order: any held ones that were due, then `event` unless
        it is held, cancelled or a duplicate."""
        released = self.due(now)
        if self._admit(app, event, now):
            released.append((app, event))
        return released

    def due(self, now: float) -> list[Release]:
        """Release (remove and return) every held event whose deadline has come."""
        released: list[Release] = []
        while self._held:
            key, first = next(iter(self._held.items()))
            if first.deadline > now:
                break
            del self._held[key]
            released.append((first.app, first.event))
        self._forget_misses(now)
        return released

    def next_deadline(self) -> float | None:
        """When the earliest held event is due, or None if nothing is held."""
        for held in self._held.values():
            return held.deadline
        return None

    def flush_all(self) -> list[Release]:
        """Release everything held, in order (shutdown: better early than never)."""
        released = [(held.app, held.event) for held in self._held.values()]
        self._held.clear()
        return released

    def _admit(self, app: App, event: WebhookEvent, now: float) -> bool:
        if event.name in HELD:
            # A second vacated for a channel already held says nothing new: keep the first.
            held = self._held.setdefault(
                _key(app, event), _Held(now + self._holdback_s, app, event)
            )
            if held.event is not event:
                self._drop(event)
            return False
        if event.name in CANCELS:
            # Rule 1: the pair is dropped together; with nothing held the event goes out.
            cancelled = self._held.pop(_key(app, event), None)
            if cancelled is None:
                return True
            self._drop(cancelled.event)
            self._drop(event)
            return False
        if event.name == CACHE_MISS:
            if self._first_miss(app, event, now):
                return True
            self._drop(event)
            return False
        return True

    def _drop(self, event: WebhookEvent) -> None:
        if self._on_drop is not None:
            self._on_drop(event)

    def _first_miss(self, app: App, event: WebhookEvent, now: float) -> bool:
        key = (app.id, event.channel)
        last = self._misses.get(key)
        if last is not None and now - last < self._holdback_s:
            return False
        # Re-insert so the dict stays ordered by acceptance time.
        self._misses.pop(key, None)
        self._misses[key] = now
        return True

    def _forget_misses(self, now: float) -> None:
        """Entries older than the window can no longer suppress anything; keeps memory bounded."""
        while self._misses:
            key, accepted = next(iter(self._misses.items()))
            if now - accepted < self._holdback_s:
                break
            del self._misses[key]
