"""Keeps a flood of identical warnings from flooding the log, without ever hiding the first."""

from __future__ import annotations

import time
from collections.abc import Callable


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
