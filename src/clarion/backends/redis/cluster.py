"""This node's membership in the cluster: its lease, clearing dead nodes, and coming back.

Every entry a node writes (subscriptions, members, signed-in users, connection places) is
indexed under its node id, and the id holds a lease in `P:nodes` that the node renews every
third of `lease_s`. When a node stops renewing (SIGKILL, a lost host, a partition), the first
node to notice claims it and clears its entries in batches; the stores report what that
changed (members gone, channels vacated, users offline) and the node announces it once.

When Redis goes away, the node keeps serving its own sockets from the stores' local state and
retries with back-off. Once Redis answers again the node registers under a new id (a new
generation) and replays its local state; the old id, if Redis still has it, is cleared. Only
when the node's lease had been taken over while Redis stayed up (others announced its members
as gone) does the replay announce them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from clarion.backends.redis.client import key, stop_task
from clarion.backends.redis.pipeline import CommandPipeline
from clarion.backends.redis.scripts import CLAIM_DEAD, HEARTBEAT, LEASE_LOST
from clarion.ports import ClusterChange

# Entries cleared per script call: small enough that Redis never blocks for long.
REAP_BATCH = 200
# Back-off between reconnection attempts while Redis is unreachable.
RETRY_INITIAL_S = 0.2


class ClusterUnavailable(Exception):
    """Redis could not be reached when the node started."""


class ClusterStore(Protocol):
    """A store whose state is indexed by node id (see scripts.py)."""

    def replay(self, node_id: str) -> list[asyncio.Future[Any]]:
        """Queue, synchronously, the commands that write this node's local state under
        `node_id`; the futures resolve to what `replayed` needs."""
        ...

    def replayed(self, results: list[Any]) -> list[ClusterChange]:
        """The transitions the replay caused (the entries that were missing cluster-wide)."""
        ...

    async def reap(self, pipeline: CommandPipeline, dead_node: str) -> list[ClusterChange]:
        """Clear a dead node's entries; the transitions that caused."""
        ...


class RedisCluster:
    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        lease_s: float,
        logger: logging.Logger,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.pipeline = CommandPipeline(client)
        self.lease_s = lease_s
        self._log = logger
        self._base_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._generation = 0
        self.node_id = self._next_id()
        self.healthy = False
        self._dirty = False
        self._run_id: str | None = None
        self._stores: list[ClusterStore] = []
        self._on_changes: Callable[[list[ClusterChange]], None] = lambda _changes: None
        self._task: asyncio.Task[None] | None = None

    @property
    def origin(self) -> str:
        """Stable for the life of the process (node ids change with each generation)."""
        return self._base_id

    def attach(self, store: ClusterStore) -> None:
        self._stores.append(store)

    def on_changes(self, callback: Callable[[list[ClusterChange]], None]) -> None:
        self._on_changes = callback

    def key(self, *parts: str) -> str:
        return key(self.prefix, *parts)

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Register this node; refuse to start if Redis does not answer."""
        self.pipeline.start()
        try:
            self._run_id = await self._server_run_id()
            await self._heartbeat(register=True)
        except (RedisError, OSError) as error:
            await self.pipeline.close()
            raise ClusterUnavailable(f"cannot reach Redis: {error}") from None
        self.healthy = True
        self._log.info("cluster: joined as node %s (lease %.1fs)", self.node_id, self.lease_s)
        self._task = asyncio.get_running_loop().create_task(self._maintain())

    async def close(self) -> None:
        """Leave the cluster: this node's entries go now, not a lease later (the node has
        already left every channel at shutdown, so this clears only what is left)."""
        if self._task is not None:
            await stop_task(self._task)
        if self.healthy:
            with contextlib.suppress(RedisError, OSError):
                await self._reap_node(self.node_id, announce=True)
        await self.pipeline.close()

    def failed(self, error: BaseException) -> None:
        """A store's command failed: serve locally until Redis answers and state is replayed."""
        if self.healthy and LEASE_LOST in str(error):
            self._log.warning("cluster: this node's lease was lost; registering again")
        elif self.healthy:
            self._log.warning(
                "cluster: Redis unreachable (%s); serving this node's clients from local state "
                "and reconnecting",
                error,
            )
        self.healthy = False
        self._dirty = True

    # ---- the lease loop -------------------------------------------------------------------

    async def _maintain(self) -> None:
        interval = self.lease_s / 3
        delay = interval
        while True:
            await asyncio.sleep(delay)
            try:
                await self._tick()
                delay = interval
            except (RedisError, OSError) as error:
                self.failed(error)
                delay = RETRY_INITIAL_S if delay >= interval else min(interval, delay * 2)
            except Exception:
                self._log.exception("cluster: maintenance step failed")
                delay = interval

    async def _tick(self) -> None:
        if self._dirty or not self.healthy:
            await self._recover(lost=False)
        elif not await self._heartbeat(register=False):
            await self._recover(lost=True)
        await self._reap_dead_nodes()

    async def _heartbeat(self, *, register: bool) -> bool:
        # Straight on the client, not through the pipeline: a node busy with a burst of store
        # commands (thousands of sockets closing) must still renew its lease on time.
        lease_ms = int(self.lease_s * 1000)
        flag = "1" if register else "0"
        renewed = await self.client.eval(
            HEARTBEAT.lua, 1, self.key("nodes"), self.node_id, lease_ms, flag
        )
        return bool(renewed)

    async def _server_run_id(self) -> str:
        info = await self.client.info("server")
        return str(info.get("run_id", ""))

    async def _recover(self, *, lost: bool) -> None:
        """Come back under a new id with this node's local state (see the module docstring)."""
        run_id = await self._server_run_id()
        restarted = run_id != self._run_id
        old_id = self.node_id
        if not lost:
            lost = not restarted and not await self._heartbeat(register=False)
        announce = lost and not restarted
        self.node_id = self._next_id()
        await self._heartbeat(register=True)
        pending = [(store, store.replay(self.node_id)) for store in self._stores]
        # Everything after this point goes to Redis under the new id, after the replay.
        self.healthy, self._dirty, self._run_id = True, False, run_id
        changes: list[ClusterChange] = []
        for store, futures in pending:
            results = list(await asyncio.gather(*futures))
            if announce:
                changes.extend(store.replayed(results))
        if not restarted and not lost:
            # The old id's entries are stale copies of what was just replayed; taken out of
            # `P:nodes` first so no other node clears (and announces) them too.
            await self.pipeline.call("ZREM", self.key("nodes"), old_id)
            await self._reap_node(old_id, announce=False)
        why = "Redis restarted" if restarted else "lease lost" if lost else "Redis reachable again"
        self._log.warning(
            "cluster: %s; state resynchronized as node %s (was %s)", why, self.node_id, old_id
        )
        self._emit(changes)

    async def _reap_dead_nodes(self) -> None:
        lease_ms = int(self.lease_s * 1000)
        keys = [self.key("nodes"), self.key("reaping")]
        while True:
            dead = await self.pipeline.script(CLAIM_DEAD, keys, [lease_ms])
            if dead is None:
                return
            node_id = dead.decode() if isinstance(dead, bytes) else str(dead)
            if node_id == self.node_id:
                continue  # our own lease lapsed while we were busy: the next tick recovers
            self._log.warning("cluster: node %s stopped renewing its lease; clearing it", node_id)
            await self._reap_node(node_id, announce=True)

    async def _reap_node(self, node_id: str, *, announce: bool) -> None:
        changes: list[ClusterChange] = []
        for store in self._stores:
            changes.extend(await store.reap(self.pipeline, node_id))
        await self.pipeline.call("ZREM", self.key("reaping"), node_id)
        await self.pipeline.call("ZREM", self.key("nodes"), node_id)
        if announce:
            self._emit(changes)

    def _emit(self, changes: Iterable[ClusterChange]) -> None:
        batch = list(changes)
        if batch:
            self._on_changes(batch)

    def _next_id(self) -> str:
        self._generation += 1
        return f"{self._base_id}:{self._generation}"
