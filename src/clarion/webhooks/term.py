"""One term as webhook leader: take entries from the Redis queue in order, deliver them through a
`WebhookDispatcher`, remove each from flight once settled, keep the lease.

Life of an entry: queue -> (taken atomically) in flight -> dispatcher -> settled: delivered by
every endpoint that wants it, given up after the retry period, or discarded by the hold-back
rules (reference 6) -> removed from flight. It leaves Redis only once settled, so whatever a term
did not settle is still there for the next one:

* stepping down (`close`), the term delivers what it holds within the grace period and hands the
  rest back to the queue's head, then releases the lease;
* losing the lease (Redis unreachable past it, or this process stalled and another took over),
  the term stops at once and forgets what it held; the next leader puts it back in the queue
  when it takes over. That is the one case where an event may be delivered twice: this term may
  have sent it, or some of its copies, before it could remove it.

The lease is renewed every third of `lease_s` and counted as lost `lease_s` after the last
renewal Redis confirmed, timed from when it was *sent*: Redis times it from when it arrived, a
little later, so this term stops before another node may start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import sys
from collections.abc import Callable

from redis.exceptions import RedisError

from clarion.backends.redis.client import stop_task
from clarion.ports import AppStore
from clarion.webhooks.dispatcher import WebhookDispatcher
from clarion.webhooks.pusher import OUTAGE_LOG_S, RETRY_MAX_S, RETRY_MIN_S
from clarion.webhooks.record import decode
from clarion.webhooks.redis_ops import QueueOps
from clarion.webhooks.settings import DispatcherSettings, QueueStats
from clarion.webhooks.throttle import LogThrottle

# Entries per take (one round trip), and per removal from flight.
TAKE_MAX = 100
ACK_MAX = 500


@dataclasses.dataclass(frozen=True, slots=True)
class TermTimes:
    """Seconds: the lease; the longest idle wait for the queue (a blocking Redis command, so
    shorter than the client's socket timeout); the longest wait for one Redis step at close."""

    lease_s: float
    block_s: float
    io_s: float


class Term:
    """Use: `await run()` in one task; `await close(grace)` or `abort()` from another."""

    def __init__(
        self,
        ops: QueueOps,
        apps: AppStore,
        settings: DispatcherSettings,
        *,
        times: TermTimes,
        valid_until: float,
        stats: QueueStats,
        logger: logging.Logger,
        wall_clock: Callable[[], float],
    ) -> None:
        self._ops = ops
        self._apps = apps
        self._times = times
        # Loop time until which the lease surely holds.
        self._valid_until = valid_until
        self.stats = stats
        self._log = logger
        # At most `queue_max` entries are taken and unsettled; the rest wait in Redis, not in
        # memory. So the dispatcher's own bound, which would drop events, is lifted.
        self._cap = settings.queue_max
        self._dispatcher = WebhookDispatcher(
            dataclasses.replace(settings, queue_max=sys.maxsize),
            logger=logger,
            wall_clock=wall_clock,
            stats=stats.delivery,
        )
        self._open = 0
        self._room = asyncio.Event()
        self._acks: list[bytes] = []
        self._ack_more = asyncio.Event()
        self._acks_idle = asyncio.Event()
        self._acks_idle.set()
        self._over = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._redis_log = LogThrottle(OUTAGE_LOG_S)
        self._unreadable_log = LogThrottle()

    async def run(self) -> None:
        """Lead until the lease is lost, `close` stepped down or `abort` was called."""
        await self._dispatcher.start()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._feed(), name="webhooks take"),
            loop.create_task(self._acknowledge(), name="webhooks ack"),
            loop.create_task(self._keep_lease(), name="webhooks lease"),
        ]
        try:
            await self._over.wait()
        finally:
            await self._stop(self._tasks)
            await self._dispatcher.close(0, hand_back=True)

    # `grace` is for the deliveries in flight; the Redis steps after it get `io_s` each.
    async def close(self, grace: float) -> None:
        """Step down: take no more, deliver what is held within `grace` seconds, remove what
        got settled from flight, hand the rest back to the queue and release the lease."""
        await self._stop(self._tasks[:1])
        await self._dispatcher.close(grace, hand_back=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._times.io_s):
                await self._acks_idle.wait()
        await self._stop(self._tasks)
        try:
            async with asyncio.timeout(self._times.io_s):
                moved = await self._ops.hand_back()
        except (RedisError, OSError, TimeoutError) as exc:
            self._log.warning(
                "webhook leader: could not step down (%s: %s); the next leader takes over "
                "when the lease runs out",
                type(exc).__name__,
                exc,
            )
        else:
            if moved:
                self._log.info(
                    "webhook leader: stepped down; %d undelivered event(s) back in the queue",
                    moved,
                )
        self._over.set()

    def abort(self) -> None:
        """End the term at once, telling Redis nothing, as a crash would: the lease runs out
        and the next leader recovers what this one had taken."""
        self._over.set()

    @staticmethod
    async def _stop(tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            await stop_task(task)

    # ---- taking ------------------------------------------------------------------------------

    async def _feed(self) -> None:
        delay = RETRY_MIN_S
        while True:
            room = self._cap - self._open
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                entries = await self._ops.take(min(room, TAKE_MAX))
                if entries == []:
                    await self._ops.wait(self._times.block_s)
                    continue
            except (RedisError, OSError) as exc:
                self._redis_failed("take from", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            delay = RETRY_MIN_S
            if entries is None:
                self._lose("another node holds the lease")
                return
            self.stats.taken += len(entries)
            self._log.debug("webhook leader: took %d event(s) from the queue", len(entries))
            for raw in entries:
                self._submit(raw)

    def _submit(self, raw: bytes) -> None:
        try:
            queued = decode(raw)
        except ValueError as exc:
            self._unreadable(raw, f"unreadable entry ({exc})")
            return
        app = self._apps.by_id(queued.app_id)
        if app is None:
            self._unreadable(raw, f"{queued.event.name} for unknown app {queued.app_id}")
            return
        self._open += 1
        self._dispatcher.submit(app, queued.event, functools.partial(self._settled, raw))

    def _settled(self, raw: bytes) -> None:
        self._open -= 1
        self._room.set()
        self._ack(raw)

    def _unreadable(self, raw: bytes, why: str) -> None:
        # Dropped rather than retried: it would never read better, and must not stall the queue.
        self.stats.unreadable += 1
        if self._unreadable_log.ready():
            self._log.warning(
                "webhook queue: dropped %s; %d dropped so far", why, self.stats.unreadable
            )
        self._ack(raw)

    # ---- removing settled entries from flight -------------------------------------------------

    def _ack(self, raw: bytes) -> None:
        self._acks.append(raw)
        self._acks_idle.clear()
        self._ack_more.set()

    async def _acknowledge(self) -> None:
        delay = RETRY_MIN_S
        while True:
            if not self._acks:
                self._acks_idle.set()
                self._ack_more.clear()
                await self._ack_more.wait()
                continue
            batch = self._acks[:ACK_MAX]
            try:
                await self._ops.ack(batch)
            except (RedisError, OSError) as exc:
                self._redis_failed("remove delivered events from", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            delay = RETRY_MIN_S
            del self._acks[: len(batch)]
            self.stats.acked += len(batch)
            self._log.debug("webhook queue: %d settled event(s) removed from flight", len(batch))

    # ---- the lease -------------------------------------------------------------------------------

    async def _keep_lease(self) -> None:
        loop = asyncio.get_running_loop()
        every = self._times.lease_s / 3
        next_try = loop.time() + every
        while True:
            await asyncio.sleep(max(0.0, min(next_try, self._valid_until) - loop.time()))
            sent = loop.time()
            if sent >= self._valid_until:
                self._lose("could not renew it in time")
                return
            try:
                async with asyncio.timeout(self._valid_until - sent):
                    ours = await self._ops.renew(self._times.lease_s)
            except (RedisError, OSError, TimeoutError) as exc:
                self._redis_failed("renew the lease in", exc)
                next_try = loop.time() + every / 3
                continue
            if not ours:
                self._lose("another node holds it")
                return
            self._valid_until = sent + self._times.lease_s
            next_try = sent + every

    def _lose(self, why: str) -> None:
        if self._over.is_set():
            return
        self._log.warning(
            "webhook leader: lease lost (%s); stopping, the next leader delivers what this one "
            "had not",
            why,
        )
        self._over.set()

    def _redis_failed(self, what: str, exc: Exception) -> None:
        level = logging.WARNING if self._redis_log.ready() else logging.DEBUG
        self._log.log(
            level,
            "webhook leader: cannot %s Redis (%s: %s); retrying",
            what,
            type(exc).__name__,
            exc,
        )
