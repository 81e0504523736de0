"""The Redis webhook queue (reference 6 over a cluster): real Redis, real HTTP receiver.

Each test's "nodes" are `RedisWebhookQueue`s in this process sharing one key prefix, unique per
test (`clarion-test:<hex>`), whose keys are deleted afterwards; the shared Redis on 127.0.0.1:6379
is never flushed. Tests of an unreachable Redis start and stop a private `redis-server` on a unix
socket. Nothing sleeps: tests wait, within multiples of `TIMEOUT`, for the receiver or a node's
log (every step of the queue logs at least at DEBUG) to reach a state.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pusher
import pytest
import redis.asyncio as aioredis
import uvloop
from cluster_support import PrivateRedis
from it_support import TIMEOUT, UNIT
from test_webhook_delivery import (
    APP_ID,
    KEY,
    SECRET,
    LogWatch,
    Receiver,
    Signal,
    client_event,
    make_app,
)

from clarion.backends.memory import MemoryAppStore
from clarion.backends.redis.client import connect
from clarion.core.apps import App, Webhook
from clarion.ports import WebhookSink
from clarion.protocol.webhooks import CHANNEL_OCCUPIED, CHANNEL_VACATED, WebhookEvent
from clarion.webhooks import DispatcherSettings, WebhookDispatcher
from clarion.webhooks.redis_queue import RedisWebhookQueue

REDIS_URL = "redis://127.0.0.1:6379"
FAST: dict[str, Any] = {
    "batch_window_s": 0.02,
    "holdback_s": 0.1,
    "retry_initial_s": 0.05,
    "retry_max_s": 0.2,
    "timeout_s": 2 * TIMEOUT,
}
# Short enough that a takeover fits in a test, long enough that a busy machine keeps it renewed.
LEASE_S = 1.0 * UNIT
REDIS_TIMEOUT_S = 1.0 * UNIT


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def signal() -> Signal:
    return Signal()


@pytest.fixture
def log(
    request: pytest.FixtureRequest, signal: Signal
) -> Iterator[tuple[logging.Logger, LogWatch]]:
    # Not under "clarion": a test may make the queue log an ERROR on purpose.
    logger = logging.getLogger(f"webhook-redis-it.{request.node.name}")
    logger.setLevel(logging.DEBUG)
    watch = LogWatch(signal)
    logger.addHandler(watch)
    yield logger, watch
    logger.removeHandler(watch)


@pytest.fixture
async def receiver(signal: Signal) -> AsyncIterator[Receiver]:
    started = await Receiver(signal).start()
    yield started
    await started.close()


@pytest.fixture
def prefix() -> str:
    return f"clarion-test:{uuid.uuid4().hex}"


@pytest.fixture
async def redis_client(prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(REDIS_URL, REDIS_TIMEOUT_S)
    yield client
    await delete_under(client, prefix)
    await client.aclose()


async def delete_under(client: aioredis.Redis, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)


Start = Callable[..., Awaitable[RedisWebhookQueue]]


@pytest.fixture
async def start_node(
    log: tuple[logging.Logger, LogWatch],
    receiver: Receiver,
    redis_client: aioredis.Redis,
    prefix: str,
) -> AsyncIterator[Start]:
    """Start nodes with FAST settings overridden by keyword; each is closed afterwards (before
    the receiver and the Redis client go)."""
    started: list[RedisWebhookQueue] = []

    async def start_one(
        name: str,
        app: App,
        client: aioredis.Redis | None = None,
        lease_s: float = LEASE_S,
        backlog_max: int | None = None,
        **overrides: Any,
    ) -> RedisWebhookQueue:
        node = RedisWebhookQueue(
            client or redis_client,
            prefix,
            name,
            MemoryAppStore([app]),
            DispatcherSettings(**{**FAST, **overrides}),
            logger=log[0].getChild(name),
            lease_s=lease_s,
            backlog_max=backlog_max,
        )
        await node.start()
        started.append(node)
        return node

    yield start_one
    for node in started:
        await node.close(0.2 * UNIT)


async def leader_of(signal: Signal, *nodes: RedisWebhookQueue) -> RedisWebhookQueue:
    await signal.until(lambda: any(n.stats.leader for n in nodes))
    [leader] = [n for n in nodes if n.stats.leader]
    return leader


def acked(*nodes: RedisWebhookQueue) -> int:
    return sum(n.stats.acked for n in nodes)


async def lengths(client: aioredis.Redis, prefix: str) -> tuple[int, int]:
    """(waiting, in flight) entries in Redis."""
    queue = await client.llen(f"{prefix}:webhooks:queue")
    inflight = await client.llen(f"{prefix}:webhooks:inflight")
    return queue, inflight


# ---- across nodes -----------------------------------------------------------------------------


async def test_events_from_two_nodes_are_each_delivered_once_in_each_nodes_order(
    start_node: Start,
    receiver: Receiver,
    signal: Signal,
    redis_client: aioredis.Redis,
    prefix: str,
) -> None:
    app = make_app(Webhook(receiver.url()))
    a = await start_node("a", app)
    assert await leader_of(signal, a) is a
    b = await start_node("b", app)
    for i in range(20):
        (a if i % 2 else b).emit(app, client_event(i))
    await signal.until(lambda: acked(a, b) == 20)
    ids = receiver.ids()
    assert sorted(ids, key=int) == [str(i) for i in range(20)]
    assert [i for i in ids if int(i) % 2] == [str(i) for i in range(1, 20, 2)]
    assert [i for i in ids if not int(i) % 2] == [str(i) for i in range(0, 20, 2)]
    assert await lengths(redis_client, prefix) == (0, 0)
    assert (a.stats.pushed, b.stats.pushed) == (10, 10)
    assert a.stats.delivery.delivered_events == 20
    assert not b.stats.leader
    assert b.stats.delivery.queued == 0
    # Signed with the app the leader looked up, as the pusher SDK checks it.
    first = receiver.accepted()[0]
    assert pusher.Pusher(APP_ID, KEY, SECRET).validate_webhook(
        KEY, first.headers["X-Pusher-Signature"], first.raw.decode()
    )


async def test_vacated_on_one_node_is_cancelled_by_occupied_on_another(
    start_node: Start,
    receiver: Receiver,
    signal: Signal,
    redis_client: aioredis.Redis,
    prefix: str,
) -> None:
    app = make_app(Webhook(receiver.url()))
    holdback = {"holdback_s": 0.5 * UNIT}
    a = await start_node("a", app, **holdback)
    leader = await leader_of(signal, a)
    b = await start_node("b", app, **holdback)
    # Both ways round: the leader's vacated cancelled by the other's occupied, and back.
    a.emit(app, WebhookEvent(CHANNEL_VACATED, "x"))
    b.emit(app, WebhookEvent(CHANNEL_VACATED, "y"))
    await signal.until(lambda: leader.stats.delivery.held == 2)
    b.emit(app, WebhookEvent(CHANNEL_OCCUPIED, "x"))
    a.emit(app, WebhookEvent(CHANNEL_OCCUPIED, "y"))
    # Held after the pairs, so a leaked vacated would be due first and arrive first or with it.
    b.emit(app, WebhookEvent(CHANNEL_VACATED, "marker"))
    await signal.until(lambda: len(receiver.requests) >= 1 and acked(a, b) == 5)
    assert receiver.ids() == ["channel_vacated:marker"]
    assert len(receiver.requests) == 1
    assert await lengths(redis_client, prefix) == (0, 0)


# ---- restarts and crashes ---------------------------------------------------------------------


async def test_a_node_closed_while_the_receiver_fails_leaves_every_event_to_its_successor(
    start_node: Start,
    receiver: Receiver,
    signal: Signal,
    redis_client: aioredis.Redis,
    prefix: str,
    log: tuple[logging.Logger, LogWatch],
) -> None:
    receiver.plan = lambda path, n: 500
    app = make_app(Webhook(receiver.url()))
    # A hold-back longer than the test: the vacated can only arrive if its successor holds it.
    a = await start_node("a", app, holdback_s=60.0)
    await leader_of(signal, a)
    a.emit(app, WebhookEvent(CHANNEL_VACATED, "x"))
    for i in range(5):
        a.emit(app, client_event(i))
    await signal.until(lambda: a.stats.delivery.failed_attempts >= 1)
    # Still in the node's buffer when it closes: appended first.
    for i in range(5, 7):
        a.emit(app, client_event(i))
    await a.close(0.2 * UNIT)

    assert await lengths(redis_client, prefix) == (8, 0)
    assert not await redis_client.exists(f"{prefix}:webhooks:leader")
    assert receiver.ids() == []
    assert a.stats.abandoned == 0
    assert "undelivered event(s) back in the queue" in log[1].at(logging.INFO)[-1]

    receiver.plan = lambda path, n: 200
    restarted = await start_node("a", app)
    await signal.until(lambda: restarted.stats.acked == 8)
    assert receiver.ids() == [*(str(i) for i in range(7)), "channel_vacated:x"]
    assert await lengths(redis_client, prefix) == (0, 0)
    assert restarted.stats.recovered == 0


async def test_a_dead_leaders_events_are_delivered_by_the_next_duplicates_only_for_those(
    start_node: Start,
    receiver: Receiver,
    signal: Signal,
    redis_client: aioredis.Redis,
    prefix: str,
) -> None:
    receiver.plan = lambda path, n: 500 if path == "b" else 200
    app = make_app(Webhook(receiver.url("a")), Webhook(receiver.url("b")))
    a = await start_node("a", app)
    await leader_of(signal, a)
    b = await start_node("b", app)
    for i in range(5):
        a.emit(app, client_event(i))
    # Delivered to "a", not to "b": in flight, so not removed from Redis.
    await signal.until(
        lambda: len(receiver.ids("a")) == 5 and a.stats.delivery.failed_attempts >= 1
    )
    await a.abort()
    for i in range(5, 10):
        b.emit(app, client_event(i))
    receiver.plan = lambda path, n: 200

    await signal.until(lambda: b.stats.acked == 10, within=TIMEOUT + 2 * LEASE_S)
    first = [str(i) for i in range(5)]
    assert receiver.ids("b") == [str(i) for i in range(10)]
    assert receiver.ids("a") == [*first, *first, *(str(i) for i in range(5, 10))]
    assert b.stats.recovered == 5
    assert await lengths(redis_client, prefix) == (0, 0)


# ---- bounds -----------------------------------------------------------------------------------


async def test_events_past_the_backlog_in_redis_are_dropped_counted_and_logged(
    start_node: Start,
    receiver: Receiver,
    signal: Signal,
    log: tuple[logging.Logger, LogWatch],
) -> None:
    receiver.plan = lambda path, n: 500
    app = make_app(Webhook(receiver.url()))
    a = await start_node("a", app, backlog_max=3)
    await leader_of(signal, a)
    for i in range(10):
        a.emit(app, client_event(i))
    await signal.until(lambda: a.stats.dropped_backlog == 7)
    assert any("webhook queue full in Redis" in w for w in log[1].at(logging.WARNING))
    receiver.plan = lambda path, n: 200
    await signal.until(lambda: a.stats.acked == 3)
    assert receiver.ids() == ["0", "1", "2"]


async def test_a_batch_given_up_after_the_retry_period_leaves_redis(
    start_node: Start,
    receiver: Receiver,
    signal: Signal,
    redis_client: aioredis.Redis,
    prefix: str,
    log: tuple[logging.Logger, LogWatch],
) -> None:
    receiver.plan = lambda path, n: 500
    app = make_app(Webhook(receiver.url()))
    a = await start_node("a", app, retry_period_s=0.3)
    for i in range(2):
        a.emit(app, client_event(i))
    await signal.until(lambda: a.stats.acked == 2)
    assert a.stats.delivery.dropped_expired == 2
    assert "2 event(s) undelivered" in log[1].at(logging.ERROR)[0]
    assert await lengths(redis_client, prefix) == (0, 0)


async def test_an_unreadable_entry_is_dropped_without_holding_up_the_queue(
    start_node: Start,
    receiver: Receiver,
    signal: Signal,
    redis_client: aioredis.Redis,
    prefix: str,
    log: tuple[logging.Logger, LogWatch],
) -> None:
    app = make_app(Webhook(receiver.url()))
    await redis_client.rpush(f"{prefix}:webhooks:queue", b"not a webhook")
    a = await start_node("a", app)
    a.emit(app, client_event(1))
    await signal.until(lambda: a.stats.acked == 2)
    assert receiver.ids() == ["1"]
    assert a.stats.unreadable == 1
    assert any("dropped unreadable entry" in w for w in log[1].at(logging.WARNING))
    assert await lengths(redis_client, prefix) == (0, 0)


# ---- Redis unreachable ------------------------------------------------------------------------


@pytest.fixture
async def private_redis() -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis()
    yield server
    await server.aclose()


async def test_events_emitted_while_redis_is_unreachable_are_delivered_once_it_is_back(
    start_node: Start,
    receiver: Receiver,
    signal: Signal,
    private_redis: PrivateRedis,
    log: tuple[logging.Logger, LogWatch],
) -> None:
    client = connect(private_redis.url, REDIS_TIMEOUT_S)
    try:
        app = make_app(Webhook(receiver.url()))
        a = await start_node("a", app, client=client)
        for i in range(3):
            a.emit(app, client_event(i))
        await signal.until(lambda: a.stats.push_failures >= 1)
        assert a.stats.buffered == 3
        assert any("cannot append to Redis" in w for w in log[1].at(logging.WARNING))

        await private_redis.start()
        await signal.until(lambda: a.stats.acked == 3)
        assert receiver.ids() == ["0", "1", "2"]

        # Gone again, with its data (no persistence): the leader loses its lease, new events wait
        # in the node's buffer, and all goes on when a Redis is back.
        await private_redis.kill()
        failures = a.stats.push_failures
        for i in range(3, 5):
            a.emit(app, client_event(i))
        await signal.until(
            lambda: a.stats.push_failures > failures and not a.stats.leader,
            within=TIMEOUT + LEASE_S,
        )
        assert a.stats.buffered == 2
        await private_redis.start()
        await signal.until(lambda: a.stats.acked == 5)
        assert receiver.ids() == [str(i) for i in range(5)]
        assert a.stats.terms == 2
        await a.close(0.2 * UNIT)
    finally:
        await client.aclose()


# ---- the port's life cycle --------------------------------------------------------------------


async def test_events_emitted_before_start_are_kept_and_after_close_dropped(
    receiver: Receiver,
    signal: Signal,
    redis_client: aioredis.Redis,
    prefix: str,
    log: tuple[logging.Logger, LogWatch],
) -> None:
    app = make_app(Webhook(receiver.url()))
    node = RedisWebhookQueue(
        redis_client,
        prefix,
        "early",
        MemoryAppStore([app]),
        DispatcherSettings(**FAST),
        logger=log[0],
        lease_s=LEASE_S,
    )
    node.emit(app, client_event(1))
    await node.start()
    await signal.until(lambda: node.stats.acked == 1)
    await node.close(TIMEOUT)
    node.emit(app, client_event(2))
    assert node.stats.dropped_closed == 1
    assert receiver.ids() == ["1"]
    assert not await redis_client.exists(f"{prefix}:webhooks:leader")


# ---- one port, two implementations ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_both_sinks_keep_the_ports_contract(
    kind: str,
    start_node: Start,
    receiver: Receiver,
    signal: Signal,
    log: tuple[logging.Logger, LogWatch],
) -> None:
    """`WebhookSink`: emit never blocks; each endpoint gets each event it wants once, in
    emission order; a vacated cancelled within the hold-back sends nothing (reference 6)."""
    app = make_app(Webhook(receiver.url()))
    sink: WebhookSink
    if kind == "memory":
        dispatcher = WebhookDispatcher(DispatcherSettings(**FAST), logger=log[0])
        await dispatcher.start()
        sink = dispatcher
    else:
        sink = await start_node("a", app)
    sink.emit(app, client_event(1))
    sink.emit(app, WebhookEvent(CHANNEL_VACATED, "pair"))
    sink.emit(app, WebhookEvent(CHANNEL_OCCUPIED, "pair"))
    sink.emit(app, client_event(2))
    sink.emit(app, WebhookEvent(CHANNEL_VACATED, "marker"))
    await signal.until(lambda: "channel_vacated:marker" in receiver.ids())
    assert receiver.ids() == ["1", "2", "channel_vacated:marker"]
    if kind == "memory":
        await dispatcher.close(TIMEOUT)


# ---- the dispatcher under uvloop (what `clarion serve` runs on) -------------------------------


def test_a_hold_back_under_uvloops_clock_tick_is_still_released(
    log: tuple[logging.Logger, LogWatch],
) -> None:
    """uvloop answers a `call_at` less than half a millisecond ahead with a plain Handle, which
    has no `when()`; the hold-back timer must not need one. Bursts of held events from the Redis
    queue met it: deadlines that fall due within the loop's millisecond."""

    async def main() -> list[str]:
        signal = Signal()
        receiver = await Receiver(signal).start()
        settings = DispatcherSettings(**{**FAST, "holdback_s": 0.0001})
        dispatcher = WebhookDispatcher(settings, logger=log[0])
        await dispatcher.start()
        try:
            dispatcher.emit(make_app(Webhook(receiver.url())), WebhookEvent(CHANNEL_VACATED, "a"))
            await signal.until(lambda: len(receiver.requests) == 1)
            return receiver.ids()
        finally:
            await dispatcher.close(TIMEOUT)
            await receiver.close()

    assert uvloop.run(main()) == ["channel_vacated:a"]
