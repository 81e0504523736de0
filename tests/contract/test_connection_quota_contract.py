"""ConnectionQuota contract (ports.ConnectionQuota): `acquire` admits while the app holds fewer
than `limit` connections, `release` gives a place back; apps are counted apart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from clarion.backends.memory import MemoryConnectionQuota
from clarion.backends.redis.stores import RedisConnectionQuota
from clarion.ports import ConnectionQuota
from clarion.types import AppId

from .conftest import Env, Factory, redis_cluster

A, B = AppId("app-a"), AppId("app-b")


@asynccontextmanager
async def memory_quota(env: Env) -> AsyncIterator[ConnectionQuota]:
    yield MemoryConnectionQuota()


@asynccontextmanager
async def redis_quota(env: Env) -> AsyncIterator[ConnectionQuota]:
    async with redis_cluster(env) as cluster:
        yield RedisConnectionQuota(cluster)


QUOTAS: dict[str, Factory[ConnectionQuota]] = {"memory": memory_quota, "redis": redis_quota}


@pytest.fixture(params=sorted(QUOTAS))
async def quota(request: pytest.FixtureRequest, env: Env) -> AsyncIterator[ConnectionQuota]:
    async with QUOTAS[request.param](env) as implementation:
        yield implementation


async def test_admits_up_to_the_limit_then_refuses(quota: ConnectionQuota) -> None:
    assert [await quota.acquire(A, 3) for _ in range(4)] == [True, True, True, False]


async def test_a_released_place_can_be_taken_again(quota: ConnectionQuota) -> None:
    assert await quota.acquire(A, 1)
    assert not await quota.acquire(A, 1)
    await quota.release(A)
    assert await quota.acquire(A, 1)


async def test_apps_are_counted_apart(quota: ConnectionQuota) -> None:
    assert await quota.acquire(A, 1)
    assert await quota.acquire(B, 1)
    assert not await quota.acquire(A, 1)


async def test_a_refusal_takes_no_place(quota: ConnectionQuota) -> None:
    assert await quota.acquire(A, 2)
    assert await quota.acquire(A, 2)
    for _ in range(5):
        assert not await quota.acquire(A, 2)
    await quota.release(A)
    assert await quota.acquire(A, 2)
    assert not await quota.acquire(A, 2)
