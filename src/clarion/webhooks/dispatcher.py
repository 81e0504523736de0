"""`WebhookDispatcher`: the node's `WebhookSink` (reference 6).

emit -> hold-back rules (holdback.py) -> one copy per endpoint that wants the event -> that
endpoint's FIFO -> batched, signed POSTs with retries (endpoint.py, sender.py).

`emit` is synchronous, O(endpoints of the app) and never raises: it runs on the node's hot path.
Memory is bounded by `queue_max` events queued or in flight plus as many held back; what does
not fit is dropped, counted and logged. Before `start()` events are kept (within the same bound)
and replayed when it runs; after `close()` began they are dropped and counted.

`submit` is `emit` for a caller that keeps a durable copy of each event (the Redis queue,
redis_queue.py): it is told, once per event, when the event needs nothing more (tracker.py), and
`close(hand_back=True)` leaves what is unsettled to it instead of flushing the hold-back.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable

import aiohttp

from clarion.core.apps import App
from clarion.protocol.webhooks import WebhookEvent
from clarion.types import AppId
from clarion.webhooks.endpoint import Endpoint
from clarion.webhooks.holdback import HELD, Holdback, Release, wanted
from clarion.webhooks.settings import DispatcherSettings, DispatcherStats
from clarion.webhooks.throttle import DropLog
from clarion.webhooks.tracker import Tracker

__all__ = ["DispatcherSettings", "DispatcherStats", "WebhookDispatcher"]


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSING = "closing"


class WebhookDispatcher:
    """Implements `clarion.ports.WebhookSink`. Use: `await start()`, `emit(...)` any number of
    times, `await close(timeout)` once."""

    def __init__(
        self,
        settings: DispatcherSettings,
        *,
        logger: logging.Logger,
        wall_clock: Callable[[], float] = time.time,
        stats: DispatcherStats | None = None,
    ) -> None:
        self.settings = settings
        # Given, it is shared: the Redis queue keeps one set of counters over its dispatchers.
        self.stats = DispatcherStats() if stats is None else stats
        self._log = logger
        self._wall_clock = wall_clock
        self._state = _State.NEW
        self._tracker = Tracker()
        self._holdback = Holdback(settings.holdback_s, on_drop=self._tracker.settle)
        self._early: list[Release] = []
        self._endpoints: dict[tuple[AppId, str], Endpoint] = {}
        self._closing = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        # The hold-back timer, and the deadline it was set for: kept here, since uvloop answers
        # a `call_at` less than half a millisecond ahead with a plain Handle, which has no
        # `when()` (two held events a few microseconds apart, as in a burst from Redis).
        self._timer: asyncio.Handle | None = None
        self._timer_at = 0.0
        self._drops = DropLog(
            self._log, self.stats, f"webhook queue full ({settings.queue_max} events)"
        )

    # ---- the port -------------------------------------------------------------------------

    def emit(self, app: App, event: WebhookEvent) -> None:
        if not wanted(app, event.name):
            return
        if self._state is _State.CLOSING:
            self._drops.closed(app, event)
        elif self._loop is None:
            self._keep_early(app, event)
        else:
            self._offer(app, event)

    def submit(self, app: App, event: WebhookEvent, done: Callable[[], None]) -> None:
        """`emit`, plus `done()` once the event needs nothing more: every endpoint that wants it
        delivered it or gave up after `retry_period_s`, the hold-back rules discarded it, no
        endpoint wants it, or there was no room for it. `done` is never called for an event
        emitted after `close()` began or still unsettled when `close()` returns: the caller
        keeps those."""
        if not wanted(app, event.name):
            done()
        elif self._state is _State.CLOSING:
            self._drops.closed(app, event)
        elif self._loop is None:
            self._keep_early(app, self._tracker.track(event, done))
        else:
            self._offer(app, self._tracker.track(event, done))

    # ---- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP client and send what was emitted before."""
        if self._state is not _State.NEW:
            return
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s)
        )
        self._state = _State.RUNNING
        early, self._early = self._early, []
        self.stats.pending -= len(early)
        for app, event in early:
            self._offer(app, event)

    # `timeout` is a grace period for the deliveries still queued, not a deadline for this call.
    async def close(self, timeout: float, *, hand_back: bool = False) -> None:  # noqa: ASYNC109
        """Release the hold-back, deliver what is queued within `timeout` seconds, then give up
        on the rest (counted in `stats.abandoned` and logged) and stop. Idempotent.

        `hand_back`: the caller keeps a copy of every submitted event and gives what is not
        settled to another node (the next Redis webhook leader), so held events stay held
        rather than being sent early, and nothing is counted as abandoned."""
        if self._state is _State.CLOSING:
            return
        self._state = _State.CLOSING
        if self._loop is not None:
            self._release_all(hand_back)
            await self._drain(timeout)
        self._abandon(hand_back)
        if self._session is not None:
            await self._session.close()

    def _release_all(self, hand_back: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # Handing back, a held channel_vacated must not go out early: its channel_occupied may
        # yet come from another node (the clients of a node shutting down reconnect elsewhere).
        if not hand_back:
            for app, event in self._holdback.flush_all():
                self._fan_out(app, event)
            self.stats.held = 0
        self._closing.set()
        for endpoint in self._endpoints.values():
            endpoint.wake()

    async def _drain(self, grace_s: float) -> None:
        tasks = [e.task for e in self._endpoints.values() if e.task is not None]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=grace_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    def _abandon(self, hand_back: bool) -> None:
        self._tracker.forget()
        self._early.clear()
        if hand_back:
            if self.stats.pending or self.stats.held:
                self._log.info(
                    "webhooks handed back: %d queued and %d held event(s) left undelivered",
                    self.stats.pending,
                    self.stats.held,
                )
            self.stats.pending = self.stats.held = 0
            return
        self.stats.abandoned += self.stats.pending
        self.stats.pending = 0
        if self.stats.abandoned:
            self._log.warning(
                "webhooks closed: %d event(s) abandoned undelivered", self.stats.abandoned
            )
        elif self.stats.queued:
            self._log.info("webhooks closed: nothing left undelivered")

    # ---- hold-back --------------------------------------------------------------------------

    def _offer(self, app: App, event: WebhookEvent) -> None:
        assert self._loop is not None
        if event.name in HELD and len(self._holdback) >= self.settings.queue_max:
            self._drops.overflow(app, event)
            self._tracker.settle(event)
            return
        released = self._holdback.offer(app, event, self._loop.time())
        self._release(released)

    def _release(self, released: list[Release]) -> None:
        for app, event in released:
            self._fan_out(app, event)
        self.stats.held = len(self._holdback)
        self._arm_timer()

    def _arm_timer(self) -> None:
        assert self._loop is not None
        deadline = self._holdback.next_deadline()
        if deadline is None or (self._timer is not None and self._timer_at <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(deadline, self._on_timer)
        self._timer_at = deadline

    def _on_timer(self) -> None:
        assert self._loop is not None
        assert self._timer is not None
        # asyncio may run a timer up to one clock tick early; the deadline itself has come.
        now = max(self._loop.time(), self._timer_at)
        self._timer = None
        self._release(self._holdback.due(now))

    # ---- fan-out and queues -------------------------------------------------------------------

    def _fan_out(self, app: App, event: WebhookEvent) -> None:
        """One copy per endpoint URL that wants the event (two hooks on one URL share it)."""
        urls: set[str] = set()
        for hook in app.webhooks:
            if hook.url not in urls and hook.wants(event.name):
                urls.add(hook.url)
                self._enqueue(app, hook.url, event)
        # Let go of the dispatcher's own reference: the endpoints' copies now hold the event, or
        # none wants it (a channel_occupied offered only to cancel a vacated) and it is settled.
        self._tracker.settle(event)

    def _enqueue(self, app: App, url: str, event: WebhookEvent) -> None:
        if self.stats.pending >= self.settings.queue_max:
            self._drops.overflow(app, event)
            return
        self.stats.queued += 1
        self.stats.pending += 1
        self._tracker.add_copy(event)
        self._endpoint(app, url).push(app, event)

    def _endpoint(self, app: App, url: str) -> Endpoint:
        endpoint = self._endpoints.get((app.id, url))
        if endpoint is None:
            assert self._session is not None
            endpoint = self._endpoints[(app.id, url)] = Endpoint(
                app,
                url,
                settings=self.settings,
                session=self._session,
                stats=self.stats,
                logger=self._log,
                wall_clock=self._wall_clock,
                closing=self._closing,
                settled=self._tracker.settle_all,
            )
        return endpoint

    def _keep_early(self, app: App, event: WebhookEvent) -> None:
        if self.stats.pending >= self.settings.queue_max:
            self._drops.overflow(app, event)
            self._tracker.settle(event)
            return
        self._early.append((app, event))
        self.stats.pending += 1

    # ---- drops --------------------------------------------------------------------------------
