"""One webhook URL of one app: a FIFO of events and at most one delivery task.

One task per endpoint means one request in flight per endpoint, so a receiver sees events in the
order they were emitted, retries included: a failing batch holds back the ones behind it rather
than letting them overtake it. The task exists only while there is something to send.

Each batch, once delivered or given up on, is passed to `settled`: the dispatcher's
acknowledgements (tracker.py) hang off it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

import aiohttp

from clarion.core.apps import App
from clarion.protocol.webhooks import WebhookEvent
from clarion.webhooks.sender import post_batch
from clarion.webhooks.settings import DispatcherSettings, DispatcherStats


class Endpoint:
    def __init__(
        self,
        app: App,
        url: str,
        *,
        settings: DispatcherSettings,
        session: aiohttp.ClientSession,
        stats: DispatcherStats,
        logger: logging.Logger,
        wall_clock: Callable[[], float],
        closing: asyncio.Event,
        settled: Callable[[list[WebhookEvent]], None],
    ) -> None:
        self.app = app
        self.url = url
        self._settings = settings
        self._session = session
        self._stats = stats
        self._log = logger
        self._wall_clock = wall_clock
        # Set once the dispatcher is closing: stop gathering, cut the current back-off short.
        self._closing = closing
        self._settled = settled
        self._queue: deque[WebhookEvent] = deque()
        self._more = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def push(self, app: App, event: WebhookEvent) -> None:
        # The newest App wins, so a rotated secret signs what is sent from now on.
        self.app = app
        self._queue.append(event)
        self._more.set()
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(
                self._run(), name=f"webhooks {app.id} {self.url}"
            )

    def wake(self) -> None:
        """Stop waiting for company: the dispatcher is closing."""
        self._more.set()

    async def _run(self) -> None:
        try:
            while self._queue:
                await self._gather()
                count = min(len(self._queue), self._settings.batch_max)
                await self._deliver([self._queue.popleft() for _ in range(count)])
        finally:
            self.task = None

    async def _gather(self) -> None:
        """Reference 6 allows several events per body: the first waits up to `batch_window_s`
        for others, but not once a batch is full or the dispatcher is closing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.batch_window_s
        while len(self._queue) < self._settings.batch_max and not self._closing.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._more.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._more.wait()

    async def _deliver(self, batch: list[WebhookEvent]) -> None:
        """Try until a 2xx or until `retry_period_s` after the first try (Pusher: "any non-2xx
        response -> retry with exponential back-off for 5 minutes")."""
        s = self._settings
        loop = asyncio.get_running_loop()
        first = loop.time()
        delay = s.retry_initial_s
        while True:
            reason = await post_batch(self._session, self.url, self.app, batch, self._wall_clock)
            if reason is None:
                self._delivered(batch)
                return
            elapsed = loop.time() - first
            if elapsed >= s.retry_period_s:
                self._expired(batch, reason, elapsed)
                return
            wait = min(delay, s.retry_period_s - elapsed)
            self._failed(batch, reason, wait)
            await self._back_off(wait)
            delay = min(delay * 2, s.retry_max_s)

    async def _back_off(self, delay: float) -> None:
        # Closing starts one last early try, then back-off resumes so a dead endpoint is not
        # hammered for the rest of the shutdown timeout.
        if self._closing.is_set():
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._closing.wait()

    def _delivered(self, batch: list[WebhookEvent]) -> None:
        self._stats.delivered_requests += 1
        self._stats.delivered_events += len(batch)
        self._stats.pending -= len(batch)
        self._log.debug(
            "webhook to %s (app %s): %d event(s) delivered", self.url, self.app.id, len(batch)
        )
        self._settled(batch)

    def _failed(self, batch: list[WebhookEvent], reason: str, retry_in: float) -> None:
        # Back-off spaces these out: at most one line per try, the first after `retry_initial_s`.
        self._stats.failed_attempts += 1
        self._log.warning(
            "webhook to %s (app %s) failed: %s; %d event(s), retrying in %.2fs",
            self.url,
            self.app.id,
            reason,
            len(batch),
            retry_in,
        )

    def _expired(self, batch: list[WebhookEvent], reason: str, elapsed: float) -> None:
        self._stats.failed_attempts += 1
        self._stats.dropped_expired += len(batch)
        self._stats.pending -= len(batch)
        self._log.error(
            "webhook to %s (app %s) dropped: %d event(s) undelivered after %.1fs of retries; "
            "last failure: %s",
            self.url,
            self.app.id,
            len(batch),
            elapsed,
            reason,
        )
        self._settled(batch)
