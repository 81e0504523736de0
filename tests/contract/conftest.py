"""Contract suites: one per port, run against every implementation of that port.

Each suite in this folder states what `clarion.ports` documents about a port and nothing more
(implementation details stay in `tests/unit/`). A suite receives its implementation through a
fixture (`broker`, `presence_store`, `channel_store`, `user_store`, `cache_store`,
`app_store_factory`) parametrized over the names registered in the registries below, so every
test runs once per implementation: `test_x[memory]`, `test_x[redis]`, ...

Adding an implementation (Redis, SQL, ...)
------------------------------------------
1. Write a factory: an async context manager taking the per-test `Env` (for the app store also
   the apps to seed) that yields a *fresh, empty* instance and cleans up on exit::

       @asynccontextmanager
       async def redis_channel_store(env: Env) -> AsyncIterator[ChannelStore]:
           client = await connect_or_skip()          # see 4.
           try:
               yield RedisChannelStore(client, key_prefix=env.namespace)
           finally:
               await delete_keys(client, env.namespace + "*")
               await client.aclose()

2. Register it: `CHANNEL_STORES["redis"] = redis_channel_store`. Nothing else changes: every
   test of the suite now also runs as `[redis]`.

3. Isolation: `env.namespace` is unique per test (`clarion-contract:<hex>:`). A networked
   implementation puts every key, channel or table row it writes under it (a key prefix, a
   pub/sub channel prefix, a schema or a tenant column), so tests never see each other's data,
   can run in parallel against one server, and clean-up is "delete everything under the
   namespace". The tests themselves use plain app ids (`app-a`, `app-b`).

4. Never skip when the server is unreachable: Redis, PostgreSQL and MariaDB run on this machine
   and in CI, so an unreachable server is a failure to report (the root `tests/conftest.py`
   also fails any skip when CI=true).

5. Time: the suites never sleep. `env.clock` is a `ManualClock` (monotonic seconds) that only
   moves when a test calls `advance()`. A time-dependent implementation (the cache store) must
   take its time from it: the memory store is built with `MemoryCacheStore(env.clock)`; a Redis
   store would store the absolute deadline (from the injected clock) next to the value and use
   the server's own expiry only as a garbage collector with generous slack.

6. Asynchronous delivery (broker): a networked broker delivers from a background task, so its
   factory yields a `BrokerUnderTest` whose `settle()` returns once every envelope published
   before the call has either reached `deliver` or never will (e.g. publish a private marker
   and wait, with a timeout, until the subscriber has seen it). The memory broker delivers
   synchronously, so its `settle()` does nothing. Tests call `settle()` before they assert.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import pytest

from clarion.backends.memory import (
    MemoryAppStore,
    MemoryBroker,
    MemoryCacheStore,
    MemoryChannelStore,
    MemoryPresenceStore,
    MemoryUserStore,
)
from clarion.backends.redis.broker import RedisBroker
from clarion.backends.redis.client import connect, connect_reader
from clarion.backends.redis.cluster import RedisCluster
from clarion.backends.redis.stores import (
    RedisCacheStore,
    RedisChannelStore,
    RedisPresenceStore,
    RedisUserStore,
)
from clarion.core.apps import App
from clarion.ports import AppStore, Broker, CacheStore, ChannelStore, PresenceStore, UserStore

# ---- per-test environment -------------------------------------------------------------------


class ManualClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "a monotonic clock never goes back"
        self.now += seconds


@dataclass(frozen=True)
class Env:
    """What a factory gets to build one fresh instance for one test."""

    clock: ManualClock = field(default_factory=ManualClock)
    # Unique per test: networked implementations put everything they write under it.
    namespace: str = field(default_factory=lambda: f"clarion-contract:{uuid.uuid4().hex}:")


async def _already_settled() -> None:
    """The memory broker delivers inside `publish`: there is never anything in flight."""


@dataclass(frozen=True)
class BrokerUnderTest:
    broker: Broker
    # Returns once everything published so far was delivered or will never be (see 6. above).
    settle: Callable[[], Awaitable[None]] = _already_settled


# ---- factories: name -> async context manager yielding a fresh instance -------------------

T = TypeVar("T")
Factory = Callable[[Env], AbstractAsyncContextManager[T]]
AppStoreFactory = Callable[[Env, Sequence[App]], AbstractAsyncContextManager[AppStore]]


@asynccontextmanager
async def memory_broker(env: Env) -> AsyncIterator[BrokerUnderTest]:
    broker = MemoryBroker()
    try:
        yield BrokerUnderTest(broker)
    finally:
        await broker.close()


@asynccontextmanager
async def memory_presence_store(env: Env) -> AsyncIterator[PresenceStore]:
    yield MemoryPresenceStore()


@asynccontextmanager
async def memory_channel_store(env: Env) -> AsyncIterator[ChannelStore]:
    yield MemoryChannelStore()


@asynccontextmanager
async def memory_user_store(env: Env) -> AsyncIterator[UserStore]:
    yield MemoryUserStore()


@asynccontextmanager
async def memory_cache_store(env: Env) -> AsyncIterator[CacheStore]:
    yield MemoryCacheStore(env.clock)


@asynccontextmanager
async def memory_app_store(env: Env, apps: Sequence[App]) -> AsyncIterator[AppStore]:
    yield MemoryAppStore(apps)


# ---- Redis (the cluster backends) -----------------------------------------------------------

REDIS_URL = "redis://127.0.0.1:6379/0"


async def delete_namespace(namespace: str) -> None:
    client = connect(REDIS_URL, 5.0)
    try:
        keys = [k async for k in client.scan_iter(match=namespace + "*", count=1000)]
        if keys:
            await client.unlink(*keys)
    finally:
        await client.aclose()


@asynccontextmanager
async def redis_cluster(env: Env) -> AsyncIterator[RedisCluster]:
    """A started cluster membership under the test's namespace; fails if Redis is away."""
    cluster = RedisCluster(
        connect(REDIS_URL, 5.0), env.namespace.rstrip(":"), 30.0, logging.getLogger("test")
    )
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.close()
        await cluster.client.aclose()
        await delete_namespace(env.namespace)


@asynccontextmanager
async def redis_broker(env: Env) -> AsyncIterator[BrokerUnderTest]:
    async with redis_cluster(env) as cluster:
        broker = RedisBroker(cluster, connect_reader(REDIS_URL, 5.0, 5.0), logging.getLogger("t"))
        await broker.start()
        try:
            # One node: only its own local delivery is ever in flight.
            yield BrokerUnderTest(broker, broker.settled_locally)
        finally:
            await broker.close()


@asynccontextmanager
async def redis_presence_store(env: Env) -> AsyncIterator[PresenceStore]:
    async with redis_cluster(env) as cluster:
        yield RedisPresenceStore(cluster)


@asynccontextmanager
async def redis_channel_store(env: Env) -> AsyncIterator[ChannelStore]:
    async with redis_cluster(env) as cluster:
        yield RedisChannelStore(cluster)


@asynccontextmanager
async def redis_user_store(env: Env) -> AsyncIterator[UserStore]:
    async with redis_cluster(env) as cluster:
        yield RedisUserStore(cluster)


@asynccontextmanager
async def redis_cache_store(env: Env) -> AsyncIterator[CacheStore]:
    async with redis_cluster(env) as cluster:
        yield RedisCacheStore(cluster, env.clock)


BROKERS: dict[str, Factory[BrokerUnderTest]] = {"memory": memory_broker, "redis": redis_broker}
PRESENCE_STORES: dict[str, Factory[PresenceStore]] = {
    "memory": memory_presence_store,
    "redis": redis_presence_store,
}
CHANNEL_STORES: dict[str, Factory[ChannelStore]] = {
    "memory": memory_channel_store,
    "redis": redis_channel_store,
}
USER_STORES: dict[str, Factory[UserStore]] = {
    "memory": memory_user_store,
    "redis": redis_user_store,
}
CACHE_STORES: dict[str, Factory[CacheStore]] = {
    "memory": memory_cache_store,
    "redis": redis_cache_store,
}
APP_STORES: dict[str, AppStoreFactory] = {"memory": memory_app_store}


# ---- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def env() -> Env:
    return Env()


@pytest.fixture
def clock(env: Env) -> ManualClock:
    return env.clock


@pytest.fixture(params=sorted(BROKERS))
async def broker(request: pytest.FixtureRequest, env: Env) -> AsyncIterator[BrokerUnderTest]:
    async with BROKERS[request.param](env) as under_test:
        yield under_test


@pytest.fixture(params=sorted(PRESENCE_STORES))
async def presence_store(request: pytest.FixtureRequest, env: Env) -> AsyncIterator[PresenceStore]:
    async with PRESENCE_STORES[request.param](env) as store:
        yield store


@pytest.fixture(params=sorted(CHANNEL_STORES))
async def channel_store(request: pytest.FixtureRequest, env: Env) -> AsyncIterator[ChannelStore]:
    async with CHANNEL_STORES[request.param](env) as store:
        yield store


@pytest.fixture(params=sorted(USER_STORES))
async def user_store(request: pytest.FixtureRequest, env: Env) -> AsyncIterator[UserStore]:
    async with USER_STORES[request.param](env) as store:
        yield store


@pytest.fixture(params=sorted(CACHE_STORES))
async def cache_store(request: pytest.FixtureRequest, env: Env) -> AsyncIterator[CacheStore]:
    async with CACHE_STORES[request.param](env) as store:
        yield store


@pytest.fixture(params=sorted(APP_STORES))
def app_store_factory(
    request: pytest.FixtureRequest, env: Env
) -> Callable[[Sequence[App]], AbstractAsyncContextManager[AppStore]]:
    """The app store is seeded at construction, so tests get a factory: `async with
    app_store_factory([app, ...]) as store:`."""
    factory = APP_STORES[request.param]
    return lambda apps: factory(env, apps)
