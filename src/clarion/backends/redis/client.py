"""One way to open a Redis connection pool, shared by every Redis adapter."""

from __future__ import annotations

import redis.asyncio as aioredis


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
    return aioredis.Redis.from_url(
        url, socket_timeout=block_s + timeout_s, socket_connect_timeout=timeout_s
    )


def key(prefix: str, *parts: str) -> str:
    """`<prefix>:<part>:<part>...`: every key a deployment writes sits under its prefix."""
    return ":".join((prefix, *parts))
