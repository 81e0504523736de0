"""One way to open a Redis connection pool, shared by every Redis adapter."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

# How long a task that was told to stop may run on before it is told again.
_RECANCEL_S = 0.05


def connect(url: str, timeout_s: float) -> aioredis.Redis:
    """A pooled client: commands time out after `timeout_s`, so a slow or vanished Redis turns
    into an error the caller handles instead of a stalled coroutine."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
        decode_responses=False,
    )


def connect_reader(url: str, timeout_s: float, block_s: float) -> aioredis.Redis:
    """A client for blocking reads: its socket timeout outlasts the longest block."""
    # Generous slack: a node busy for seconds (closing thousands of sockets at once) must not
    # mistake its own late read for a dead Redis.
    return aioredis.Redis.from_url(
        url, socket_timeout=block_s + max(timeout_s, 30.0), socket_connect_timeout=timeout_s
    )


def key(prefix: str, *parts: str) -> str:
    """`<prefix>:<part>:<part>...`: every key a deployment writes sits under its prefix."""
    return ":".join((prefix, *parts))


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel `task`, and again until it ends. Python 3.11's `asyncio.wait_for`, which redis-py
    uses to send every command, swallows a cancellation that arrives just as the command
    completes (CPython gh-86296, fixed in 3.12), so a task looping over Redis commands may go on
    after one `cancel()`. For tasks with nothing to clean up: each cancel interrupts the last."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=_RECANCEL_S)
