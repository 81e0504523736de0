"""Who delivers the cluster's webhooks: one node at a time, the leader, on a lease in Redis.

Why one: the hold-back rules (reference 6: `channel_vacated` waits up to 3 s for a
`channel_occupied` that cancels it; the same for members) need both events in one place, and the
two are often emitted by different nodes (a client of a node that shuts down reconnects to
another). One consumer of the queue, in queue order, sees both; it also keeps each endpoint's
events in order and gives one place to batch them.

Every node campaigns: it tries to take the lease every `lease_s` / 3, at most a second apart,
so when a leader dies another takes over within about `lease_s` and a second, and when one steps
down (`close`) within a second. A node that wins leads a `Term` (term.py) until it loses the
lease or closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.exceptions import RedisError

from clarion.backends.redis.client import stop_task
from clarion.ports import AppStore
from clarion.webhooks.pusher import OUTAGE_LOG_S
from clarion.webhooks.redis_ops import QueueOps
from clarion.webhooks.settings import DispatcherSettings, QueueStats
from clarion.webhooks.term import Term, TermTimes
from clarion.webhooks.throttle import LogThrottle

# The longest wait between two tries for the lease: one cheap SET NX a second per node.
CAMPAIGN_MAX_S = 1.0


class Leadership:
    """Use: `start()` once in the loop, then `await close(grace)` or `await abort()` once."""

    def __init__(
        self,
        ops: QueueOps,
        apps: AppStore,
        settings: DispatcherSettings,
        *,
        times: TermTimes,
        stats: QueueStats,
        logger: logging.Logger,
        wall_clock: Callable[[], float],
    ) -> None:
        self._ops = ops
        self._apps = apps
        self._settings = settings
        self._times = times
        self.stats = stats
        self._log = logger
        self._wall_clock = wall_clock
        self._task: asyncio.Task[None] | None = None
        self._term: Term | None = None
        self._closing = False
        self._wake = asyncio.Event()
        # True while an acquire is on its way: stopped then, it may still have won.
        self._acquiring = False
        self._redis_log = LogThrottle(OUTAGE_LOG_S)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._campaign(), name="webhooks leader"
            )

    # `grace` is for the deliveries in flight, as in `WebhookDispatcher.close`.
    async def close(self, grace: float) -> None:
        """Stop campaigning; a leader steps down after delivering what it holds within `grace`
        seconds (term.py)."""
        term = self._halt()
        if term is not None:
            await term.close(grace)
            await self._ended()
            return
        was_acquiring = self._acquiring
        await self._cancel()
        if was_acquiring:
            # It may have won: step down (fenced, so a no-op if it did not).
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(self._times.io_s):
                    await self._ops.hand_back()

    async def abort(self) -> None:
        """Stop at once, telling Redis nothing, as a crash would: a lease held runs out and the
        next leader recovers what this one had taken."""
        term = self._halt()
        if term is not None:
            term.abort()
            await self._ended()
        else:
            await self._cancel()

    def _halt(self) -> Term | None:
        """No new term from now on; the current one, if any."""
        self._closing = True
        self._wake.set()
        return self._term

    async def _ended(self) -> None:
        # Its term over, the campaign ends by itself once the term has cleaned up, which a
        # cancellation could cut short.
        if self._task is not None:
            await asyncio.wait([self._task])

    async def _cancel(self) -> None:
        # No term: the campaign is waiting, or trying to acquire; nothing to clean up.
        if self._task is not None:
            await stop_task(self._task)

    async def _campaign(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            sent = loop.time()
            recovered = await self._try_acquire()
            if self._closing:
                return
            if recovered is not None:
                await self._lead(recovered, valid_until=sent + self._times.lease_s)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(self._times.lease_s / 3, CAMPAIGN_MAX_S)):
                        await self._wake.wait()

    async def _try_acquire(self) -> int | None:
        self._acquiring = True
        try:
            return await self._ops.acquire(self._times.lease_s)
        except (RedisError, OSError) as exc:
            level = logging.WARNING if self._redis_log.ready() else logging.DEBUG
            self._log.log(
                level,
                "webhook leader: cannot reach Redis to campaign (%s: %s); retrying",
                type(exc).__name__,
                exc,
            )
            return None
        finally:
            self._acquiring = False

    async def _lead(self, recovered: int, valid_until: float) -> None:
        self.stats.leader = True
        self.stats.terms += 1
        self.stats.recovered += recovered
        self._log.info(
            "webhook leader: this node (%s) delivers the cluster's webhooks%s",
            self._ops.me,
            f"; {recovered} event(s) a previous leader left undelivered are queued again"
            if recovered
            else "",
        )
        self._term = Term(
            self._ops,
            self._apps,
            self._settings,
            times=self._times,
            valid_until=valid_until,
            stats=self.stats,
            logger=self._log,
            wall_clock=self._wall_clock,
        )
        try:
            await self._term.run()
        finally:
            self._term = None
            self.stats.leader = False
