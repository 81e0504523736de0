"""The cluster's one fan-out path: envelopes through a Redis stream every node reads.

`publish` queues the envelope for the other nodes and for this node's own sockets. The sender
appends whatever queued up meanwhile as one stream entry, and runs before the local fan-out:
the other nodes' copy is on the wire before this node spends time writing to thousands of
local sockets. Local delivery needs no round trip, and goes on while Redis is away. Each node
reads the stream from the last entry it saw and delivers the other nodes' envelopes.

Why a stream and not PUBLISH/SUBSCRIBE: pub/sub drops whatever is published while a
subscriber reconnects. A node that lost Redis for a moment, or a Redis that restarted, resumes
reading from its last entry id (ids are Redis-clock milliseconds, so the entries of a restarted
Redis still sort after the old ones) and receives everything the other nodes sent meanwhile.
The stream is capped (`STREAM_MAX_ENTRIES`, approximately), so it holds only recent history.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from clarion.backends.redis.client import stop_task
from clarion.backends.redis.cluster import RETRY_INITIAL_S, RedisCluster
from clarion.core.envelope import Envelope, Target
from clarion.types import AppId, SocketId

# Stream entries kept (each holds every envelope one node sent in one round trip): enough for a
# node to catch up after a reconnect, small enough to bound Redis memory (entries are batches).
STREAM_MAX_ENTRIES = 10_000
# A deployment whose nodes are all gone leaves no stream behind for long.
STREAM_IDLE_EXPIRY_MS = 24 * 3600 * 1000
# Envelopes waiting for Redis; past it the oldest are dropped (counted and logged), so an
# outage never grows memory without bound. Local subscribers got them already.
OUTBOX_MAX = 100_000
# Envelopes per stream entry.
ENTRY_MAX = 1_000
# How long one blocking read waits before it asks again.
READ_BLOCK_MS = 5_000
RETRY_MAX_S = 5.0

_TARGETS = {target.value: target for target in Target}


def encode(envelopes: list[Envelope]) -> str:
    return json.dumps(
        [
            [e.app_id, e.channel, e.event, e.data, e.exclude_socket_id, e.user_id, e.target.value]
            for e in envelopes
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decode(text: bytes | str) -> list[Envelope]:
    return [
        Envelope(
            AppId(app_id),
            channel,
            event,
            data,
            SocketId(exclude) if exclude is not None else None,
            user_id,
            _TARGETS[target],
        )
        for app_id, channel, event, data, exclude, user_id, target in json.loads(text)
    ]


class RedisBroker:
    def __init__(
        self, cluster: RedisCluster, reader: aioredis.Redis, logger: logging.Logger
    ) -> None:
        self._cluster = cluster
        self._reader = reader
        self._log = logger
        self._stream = cluster.key("bus")
        self._deliver: Callable[[Envelope], None] | None = None
        self._outbox: deque[Envelope] = deque()
        self._local: deque[Envelope] = deque()
        self._local_due = False
        self._local_done = asyncio.Event()
        self._local_done.set()
        self._sender_client = cluster.client
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()  # nothing queued and nothing in flight
        self._drained.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_id = "$"
        self.dropped = 0

    def bind(self, deliver: Callable[[Envelope], None]) -> None:
        self._deliver = deliver

    def publish(self, envelope: Envelope) -> None:
        if self._deliver is None:
            return
        self._local.append(envelope)
        if len(self._outbox) >= OUTBOX_MAX:
            self._outbox.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                self._log.error(
                    "broker: Redis unreachable and %d envelopes waiting; dropped %d so far "
                    "(they reached this node's clients, not the other nodes')",
                    OUTBOX_MAX,
                    self.dropped,
                )
        self._outbox.append(envelope)
        self._drained.clear()
        # The sender's wake-up is scheduled before the local fan-out (both are FIFO callbacks).
        self._wake.set()
        if not self._local_due:
            self._local_due = True
            self._local_done.clear()
            asyncio.get_running_loop().call_soon(self._deliver_local)

    def _deliver_local(self) -> None:
        """This node's copies, in publish order; envelopes published while delivering (a node
        reacting to one) join the same queue, behind those already in it."""
        local = self._local
        try:
            while local and self._deliver is not None:
                envelope = local.popleft()
                try:
                    self._deliver(envelope)
                except Exception:
                    self._log.exception("broker: delivering an envelope failed")
        finally:
            local.clear()
            self._local_due = False
            self._local_done.set()

    async def settled_locally(self) -> None:
        """Returns once every envelope published so far reached this node's `deliver`."""
        await self._local_done.wait()

    async def start(self) -> None:
        """Begin after the stream's current end: earlier entries predate this node."""
        newest: Any = await self._reader.xrevrange(self._stream, count=1)
        self._last_id = _text(newest[0][0]) if newest else "0-0"
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._send_forever()), loop.create_task(self._read())]

    async def close(self) -> None:
        """Send what is queued (briefly), then stop reading and sending."""
        self._deliver = None
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._cluster.lease_s):
                    await self._drained.wait()
        for task in self._tasks:
            await stop_task(task)
        await self._reader.aclose()

    # ---- sending ------------------------------------------------------------------------

    async def _send_forever(self) -> None:
        delay = RETRY_INITIAL_S
        while True:
            if not self._outbox:
                self._wake.clear()
                await self._wake.wait()
            outbox = self._outbox
            batch = [outbox.popleft() for _ in range(min(ENTRY_MAX, len(outbox)))]
            try:
                # On a connection of its own (not the store pipeline): the command is written
                # within this step, ahead of the local fan-out scheduled after it.
                client = self._sender_client
                async with client.pipeline(transaction=False) as pipe:
                    pipe.execute_command(*self._xadd(batch))
                    pipe.pexpire(self._stream, STREAM_IDLE_EXPIRY_MS)
                    await pipe.execute()
            except (RedisError, OSError) as error:
                self._cluster.failed(error)
                outbox.extendleft(reversed(batch))  # first in line again, in order
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
                continue
            delay = RETRY_INITIAL_S
            if not outbox:
                self._drained.set()

    def _xadd(self, batch: list[Envelope]) -> tuple[Any, ...]:
        return (
            "XADD",
            self._stream,
            "MAXLEN",
            "~",
            STREAM_MAX_ENTRIES,
            "*",
            "o",
            self._cluster.origin,
            "e",
            encode(batch),
        )

    # ---- receiving ----------------------------------------------------------------------

    async def _read(self) -> None:
        delay = RETRY_INITIAL_S
        failing = False
        while True:
            try:
                reply: Any = await self._reader.xread(
                    {self._stream: self._last_id}, count=256, block=READ_BLOCK_MS
                )
            except (RedisError, OSError) as error:
                if _cancelling():
                    raise asyncio.CancelledError from error
                if not failing:
                    self._log.warning("broker: reading the Redis stream failed (%s)", error)
                failing = True
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
                continue
            if failing:
                self._log.warning("broker: reading the Redis stream again from %s", self._last_id)
                failing, delay = False, RETRY_INITIAL_S
            for _stream, entries in reply or ():
                self._handle(entries)

    def _handle(self, entries: list[tuple[Any, dict[bytes, bytes]]]) -> None:
        origin = self._cluster.origin.encode()
        for entry_id, fields in entries:
            self._last_id = _text(entry_id)
            if fields.get(b"o") == origin or self._deliver is None:
                continue
            try:
                envelopes = decode(fields[b"e"])
            except (KeyError, ValueError, TypeError):
                self._log.error("broker: unreadable stream entry %s skipped", self._last_id)
                continue
            for envelope in envelopes:
                try:
                    self._deliver(envelope)
                except Exception:
                    self._log.exception("broker: delivering an envelope failed")


def _cancelling() -> bool:
    """A cancelled blocking read can surface as a connection error: it must still stop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
