"""Keeps a flood of identical warnings from flooding the log, without ever hiding the first."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from clarion.core.apps import App
from clarion.protocol.webhooks import WebhookEvent


class LogThrottle:
    """Says yes once per `interval_s`; the first call always gets a yes. A line it lets through
    should carry a running total, so the lines it holds back are still accounted for."""

    def __init__(
        self, interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._last: float | None = None

    def ready(self) -> bool:
        now = self._clock()
        if self._last is not None and now - self._last < self._interval_s:
            return False
        self._last = now
        return True


class _DropCounts(Protocol):
    dropped_overflow: int
    dropped_closed: int


class DropLog:
    """Counts and logs (throttled, with running totals) the events a webhook sink refuses:
    past its bound (`overflow`, the bound described by `full`) or after it was closed."""

    def __init__(self, logger: logging.Logger, counts: _DropCounts, full: str) -> None:
        self._log = logger
        self._counts = counts
        self._full = full
        self._overflow_log = LogThrottle()
        self._closed_log = LogThrottle()

    def overflow(self, app: App, event: WebhookEvent) -> None:
        self._counts.dropped_overflow += 1
        if self._overflow_log.ready():
            self._log.warning(
                "%s: dropped %s for app %s; %d dropped so far",
                self._full,
                event.name,
                app.id,
                self._counts.dropped_overflow,
            )

    def closed(self, app: App, event: WebhookEvent) -> None:
        self._counts.dropped_closed += 1
        if self._closed_log.ready():
            self._log.warning(
                "webhooks closed: dropped %s for app %s; %d dropped so far",
                event.name,
                app.id,
                self._counts.dropped_closed,
            )
