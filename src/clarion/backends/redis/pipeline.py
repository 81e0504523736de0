"""Auto-pipelining: every command a node issues goes through one connection, in order, and the
commands issued while the previous batch was in flight travel together in the next one.

One batch in flight at a time gives a per-node FIFO (a replay queued before a later leave is
applied before it) and turns a burst of subscribes (thousands of sockets joining at once) into
a few round trips instead of thousands of connections.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from clarion.backends.redis.client import stop_task
from clarion.backends.redis.scripts import ALL_SCRIPTS, Script

# Commands per round trip: large enough for bursts, small enough that one reply is not huge.
MAX_BATCH = 1024

Command = tuple[Any, ...]


class CommandPipeline:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._queue: deque[tuple[Command, asyncio.Future[Any]]] = deque()
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sender = asyncio.get_running_loop().create_task(self._send_forever())

    async def close(self) -> None:
        if self._sender is not None:
            await stop_task(self._sender)
        for _, future in self._queue:
            if not future.done():
                future.set_exception(RedisError("Redis pipeline closed"))
        self._queue.clear()

    def call(self, *command: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((command, future))
        self._wake.set()
        return future

    def script(self, script: Script, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        return self.call("EVALSHA", script.sha, len(keys), *keys, *args)

    async def _send_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
                await self._send(batch)

    async def _send(self, batch: list[tuple[Command, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._execute([command for command, _ in batch])
            if any(isinstance(r, NoScriptError) for r in results):
                # A restarted Redis forgot the scripts: load them and run the batch again
                # (only the script calls failed, and they failed before doing anything).
                await self._load_scripts()
                retry = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
                again = await self._execute([batch[i][0] for i in retry])
                for i, result in zip(retry, again, strict=True):
                    results[i] = result
        except (RedisError, OSError) as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(self, commands: list[Command]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))

    async def _load_scripts(self) -> None:
        for script in ALL_SCRIPTS:
            await self._client.script_load(script.lua)
