"""The emitting side of the Redis webhook queue: a bounded local buffer, appended to the shared
queue in order by one background task.

`offer` runs on the node's hot path: it only appends to a deque; encoding and I/O happen in the
task. While Redis is unreachable the buffer keeps events (up to `capacity`) and the task retries
with back-off, so an outage shorter than the buffer loses nothing. An event leaves the buffer only
once Redis confirmed it holds it, and each batch is appended once however often it is retried
(redis_ops.py), so an event is neither lost nor doubled between a node and Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from clarion.backends.redis.client import stop_task
from clarion.protocol.webhooks import WebhookEvent
from clarion.types import AppId
from clarion.webhooks.record import QueuedEvent, encode
from clarion.webhooks.redis_ops import QueueOps
from clarion.webhooks.settings import QueueStats
from clarion.webhooks.throttle import LogThrottle

# Entries per append: one round trip each, well below Lua's limit on unpacked arguments.
PUSH_MAX = 100
# Back-off between failed appends: quick to notice Redis is back, at most one try a second.
RETRY_MIN_S = 0.05
RETRY_MAX_S = 1.0
# While Redis stays unreachable, one warning per this many seconds (each with running totals).
OUTAGE_LOG_S = 10.0


@dataclass(frozen=True, slots=True)
class _Batch:
    number: int
    entries: list[bytes]


class Pusher:
    """Use: `offer(...)` any time, `start()` once in the loop, `await close(timeout)` once."""

    def __init__(
        self,
        ops: QueueOps,
        *,
        capacity: int,
        backlog_max: int,
        stats: QueueStats,
        logger: logging.Logger,
        wall_clock: Callable[[], float],
    ) -> None:
        self._ops = ops
        self._capacity = capacity
        self._backlog_max = backlog_max
        self.stats = stats
        self._log = logger
        self._wall_clock = wall_clock
        self._buffer: deque[tuple[AppId, WebhookEvent, int]] = deque()
        # The batch being appended: a retry must send the very same entries under one number.
        self._batch: _Batch | None = None
        self._numbers = itertools.count(1)
        self._ids = itertools.count(1)
        self._more = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._task: asyncio.Task[None] | None = None
        # Set from the first failed append to the next one that works: that one is logged.
        self._outage = False
        self._outage_log = LogThrottle(OUTAGE_LOG_S)
        self._backlog_log = LogThrottle()

    def offer(self, app_id: AppId, event: WebhookEvent) -> bool:
        """Buffer `event`; False if the buffer is full."""
        if len(self._buffer) >= self._capacity:
            return False
        self._buffer.append((app_id, event, int(self._wall_clock() * 1000)))
        self.stats.buffered += 1
        self._empty.clear()
        self._more.set()
        return True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="webhooks push")

    # `timeout` bounds how long an unreachable Redis may hold up a shutdown.
    async def close(self, timeout: float) -> None:  # noqa: ASYNC109
        """Append what is buffered within `timeout` seconds, then stop; what is left is lost,
        counted in `stats.abandoned` and logged."""
        self.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._empty.wait()
        await self.abort()
        left = len(self._buffer)
        if left:
            self.stats.abandoned += left
            self.stats.buffered = 0
            self._buffer.clear()
            # Unless the try cut short by the timeout got through: Redis may have those.
            self._log.warning(
                "webhooks closed: %d event(s) not taken by Redis in time are lost", left
            )

    async def abort(self) -> None:
        """Stop at once: the buffer stays as it is (a crash loses it)."""
        if self._task is not None:
            await stop_task(self._task)

    async def _run(self) -> None:
        delay = RETRY_MIN_S
        while True:
            if not self._buffer:
                self._empty.set()
                self._more.clear()
                await self._more.wait()
                continue
            batch = self._batch = self._batch or self._next_batch()
            try:
                pushed = await self._ops.push(batch.number, batch.entries, self._backlog_max)
            except (RedisError, OSError) as exc:
                self._failed(exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            self._pushed(batch, pushed)
            delay = RETRY_MIN_S

    def _next_batch(self) -> _Batch:
        count = min(len(self._buffer), PUSH_MAX)
        entries = [
            encode(QueuedEvent(f"{self._ops.me}/{next(self._ids)}", app_id, at, event))
            for app_id, event, at in itertools.islice(self._buffer, count)
        ]
        return _Batch(next(self._numbers), entries)

    def _pushed(self, batch: _Batch, pushed: int) -> None:
        for _ in batch.entries:
            self._buffer.popleft()
        self._batch = None
        refused = len(batch.entries) - pushed
        self.stats.buffered -= len(batch.entries)
        self.stats.pushed += pushed
        if self._outage:
            self._outage = False
            self._log.info(
                "webhook queue: Redis reachable again; %d buffered event(s) appended",
                len(batch.entries),
            )
        if refused:
            self._refused(refused)

    def _failed(self, exc: Exception, retry_in: float) -> None:
        self.stats.push_failures += 1
        self._outage = True
        # Every try at DEBUG, one in OUTAGE_LOG_S seconds at WARNING.
        level = logging.WARNING if self._outage_log.ready() else logging.DEBUG
        self._log.log(
            level,
            "webhook queue: cannot append to Redis (%s: %s); %d event(s) buffered, "
            "retrying in %.2fs; %d failed tries so far",
            type(exc).__name__,
            exc,
            len(self._buffer),
            retry_in,
            self.stats.push_failures,
        )

    def _refused(self, count: int) -> None:
        self.stats.dropped_backlog += count
        if self._backlog_log.ready():
            self._log.warning(
                "webhook queue full in Redis (%d events waiting for delivery): dropped %d; "
                "%d dropped so far",
                self._backlog_max,
                count,
                self.stats.dropped_backlog,
            )
