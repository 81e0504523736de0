"""The cluster's one fan-out path: envelopes through a Redis stream every node reads.

`publish` delivers to this node's sockets at once (no round trip for local subscribers, and
local clients keep being served while Redis is away), and queues the envelope for the other
nodes. A sender appends whatever queued up meanwhile as one stream entry; each node reads
the stream from the last entry it saw and delivers the other nodes' envelopes.

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

from clarion.backends.redis.cluster import RETRY_INITIAL_S, RedisCluster
from clarion.core.envelope import Envelope, Target
from clarion.types import AppId, SocketId

# Stream entries kept (each holds every envelope one node sent in one round trip).
STREAM_MAX_ENTRIES = 100_000
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
        self._deliver(envelope)
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
        self._wake.set()

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
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
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
                await self._cluster.pipeline.call(*self._xadd(batch))
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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
