"""`RedisWebhookQueue`: the `WebhookSink` of a node in a cluster (reference 6, docs/cluster.md).

Webhooks go through a durable queue in Redis, so a node that restarts loses none:

    emit (any node) -> local buffer -> Redis list `<prefix>:webhooks:queue` (pusher.py)
      -> the leader, one node at a time (leader.py): takes entries in order, holds back, cancels,
         batches, signs, delivers and retries them with a `WebhookDispatcher` (term.py)
      -> each entry is removed from Redis once settled.

Each occupied/vacated/member event is emitted once, by the node that saw the transition; this
queue carries it without losing or doubling it: an event is appended once (redis_ops.py), taken
by one leader, and removed only once settled. The one exception is a leader that dies (or stalls
past its lease): what it had taken and not yet removed is delivered again by the next leader, so
an endpoint may see those events twice. Events still in a node's local buffer when its process
dies are lost (a clean `close` appends them first).

Because one leader consumes the queue in order, the hold-back rules work across nodes: a
`channel_vacated` from node A and the `channel_occupied` from node B a second later both reach the
leader's hold-back and cancel. The hold-back times from when the leader takes an event, so a
backlog (no leader for a while) taken at once is judged as if emitted together. A leader that
steps down sends no held event early: it goes back to the queue, for its cancelling event may
yet come from the node its clients reconnect to.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis

from clarion.core.apps import App
from clarion.ports import AppStore
from clarion.protocol.webhooks import WebhookEvent
from clarion.webhooks.holdback import wanted
from clarion.webhooks.leader import Leadership
from clarion.webhooks.pusher import Pusher
from clarion.webhooks.redis_ops import QueueOps
from clarion.webhooks.settings import DispatcherSettings, QueueStats
from clarion.webhooks.term import TermTimes
from clarion.webhooks.throttle import DropLog

# Without a socket timeout on the client, the longest idle wait for the queue and for one Redis
# step at close.
_DEFAULT_IO_S = 2.0
# Events waiting in Redis for a leader, by default, per event a node may buffer: room for a
# cluster's worth of buffers, bounded so Redis memory is too when no leader can deliver.
_BACKLOG_PER_BUFFER = 10


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSING = "closing"


class RedisWebhookQueue:
    """Implements `clarion.ports.WebhookSink`. Use: `await start()`, `emit(...)` any number of
    times, `await close(timeout)` once (`abort()` stands for a crash in tests).

    `node_id` names this node in entry ids and logs; each instance adds its own random suffix,
    so a restarted node with the same id is a different pusher and candidate. `settings` are the
    dispatcher's, used by the leader; `queue_max` also bounds this node's buffer (while Redis is
    unreachable) and the entries its leader holds at once. `backlog_max`: events waiting in Redis
    past which new ones are dropped, counted and logged (default 10 x `queue_max`). `lease_s`:
    how long a dead leader keeps the others from taking over."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        node_id: str,
        apps: AppStore,
        settings: DispatcherSettings,
        *,
        logger: logging.Logger,
        lease_s: float = 5.0,
        backlog_max: int | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.stats = QueueStats()
        self._log = logger
        self._state = _State.NEW
        self._ops = QueueOps(client, prefix, f"{node_id}/{uuid.uuid4().hex[:12]}")
        self._pusher = Pusher(
            self._ops,
            capacity=settings.queue_max,
            backlog_max=backlog_max or settings.queue_max * _BACKLOG_PER_BUFFER,
            stats=self.stats,
            logger=logger,
            wall_clock=wall_clock,
        )
        self._leadership = Leadership(
            self._ops,
            apps,
            settings,
            times=_times(client, lease_s),
            stats=self.stats,
            logger=logger,
            wall_clock=wall_clock,
        )
        self._drops = DropLog(
            self._log,
            self.stats,
            f"webhook buffer full ({settings.queue_max} events, Redis unreachable)",
        )

    # ---- the port -----------------------------------------------------------------------------

    def emit(self, app: App, event: WebhookEvent) -> None:
        # Filtered here too, so events no endpoint wants never cost a Redis round trip; the
        # leader filters again with the app as it is then.
        if not wanted(app, event.name):
            return
        if self._state is _State.CLOSING:
            self._drops.closed(app, event)
        elif not self._pusher.offer(app.id, event):
            self._drops.overflow(app, event)

    # ---- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Append what was emitted before, and campaign for leadership. Redis need not be
        reachable: events wait in the buffer meanwhile."""
        if self._state is not _State.NEW:
            return
        self._state = _State.RUNNING
        self._pusher.start()
        self._leadership.start()

    # `timeout` bounds the shutdown: see each step.
    async def close(self, timeout: float) -> None:  # noqa: ASYNC109
        """Append this node's buffer to Redis (within `timeout` seconds; what cannot be is lost,
        counted and logged); then, if leader, deliver what it holds within what is left of
        `timeout`, hand the rest back to the queue and release the lease. What is not delivered
        stays in Redis for the next leader. Idempotent."""
        if self._state is _State.CLOSING:
            return
        self._state = _State.CLOSING
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self._pusher.close(timeout)
        await self._leadership.close(max(0.0, deadline - loop.time()))

    async def abort(self) -> None:
        """Stop at once, as if the process died: the buffer is lost, Redis is told nothing, a
        lease held runs out. For tests of what the cluster does then."""
        self._state = _State.CLOSING
        await self._pusher.abort()
        await self._leadership.abort()

    # ---- drops ----------------------------------------------------------------------------------


def _times(client: aioredis.Redis, lease_s: float) -> TermTimes:
    """The leader waits for the queue with a blocking command, which must return before the
    client's socket timeout would take it for a dead connection."""
    socket_timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
    io_s = float(socket_timeout) if socket_timeout else _DEFAULT_IO_S
    return TermTimes(lease_s=lease_s, block_s=io_s / 2, io_s=io_s)
