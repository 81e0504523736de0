"""The Redis backends as several nodes see them: state shared exactly, a dead node's entries
cleared once by one survivor, a node whose lease was lost coming back, envelopes crossing nodes.

Each test is its own deployment (a fresh key prefix on the real Redis); nodes are
`RedisCluster` memberships in this process, so a "dead" node is one whose lease loop stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from it_support import TIMEOUT

from clarion.backends.redis.broker import RedisBroker
from clarion.backends.redis.client import connect, connect_reader
from clarion.backends.redis.cluster import RedisCluster
from clarion.backends.redis.stores import (
    RedisChannelStore,
    RedisConnectionQuota,
    RedisPresenceStore,
    RedisUserStore,
)
from clarion.core.envelope import Envelope
from clarion.ports import ChangeKind, ClusterChange
from clarion.types import AppId

REDIS_URL = "redis://127.0.0.1:6379/0"
A = AppId("app-a")
# Short enough that expiry tests are quick, long enough that a busy machine renews in time.
LEASE_S = 1.0


@dataclass
class ClusterNode:
    cluster: RedisCluster
    presence: RedisPresenceStore
    channels: RedisChannelStore
    users: RedisUserStore
    quota: RedisConnectionQuota
    changes: list[ClusterChange] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, batch: list[ClusterChange]) -> None:
        self.changes.extend(batch)
        self.changed.set()

    def die(self) -> None:
        """SIGKILL as the cluster sees it: the lease stops being renewed, nothing is cleared."""
        assert self.cluster._task is not None
        self.cluster._task.cancel()

    async def wait_changes(self, count: int) -> list[ClusterChange]:
        async with asyncio.timeout(TIMEOUT + 5 * LEASE_S):
            while len(self.changes) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.changes


class Deployment:
    def __init__(self) -> None:
        self.prefix = f"clarion-test:{uuid.uuid4().hex}"
        self.nodes: list[ClusterNode] = []

    async def node(self, lease_s: float = LEASE_S) -> ClusterNode:
        cluster = RedisCluster(
            connect(REDIS_URL, 5.0), self.prefix, lease_s, logging.getLogger("test.cluster")
        )
        node = ClusterNode(
            cluster,
            RedisPresenceStore(cluster),
            RedisChannelStore(cluster),
            RedisUserStore(cluster),
            RedisConnectionQuota(cluster),
        )
        for store in (node.presence, node.users, node.channels, node.quota):
            cluster.attach(store)
        cluster.on_changes(node.record)
        await cluster.start()
        self.nodes.append(node)
        return node

    async def close(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                await node.cluster.close()
            await node.cluster.client.aclose()
        client = connect(REDIS_URL, 5.0)
        keys = [k async for k in client.scan_iter(match=self.prefix + ":*", count=1000)]
        if keys:
            await client.unlink(*keys)
        await client.aclose()


@pytest.fixture
async def deployment() -> AsyncIterator[Deployment]:
    d = Deployment()
    try:
        yield d
    finally:
        await d.close()


async def test_a_user_on_two_nodes_is_one_member(deployment: Deployment) -> None:
    one, two = await deployment.node(), await deployment.node()
    assert await one.presence.join(A, "presence-room", "u1", "1.1", {"name": "Ann"})
    assert not await two.presence.join(A, "presence-room", "u1", "2.1", {"name": "Ann"})
    assert await two.presence.join(A, "presence-room", "u2", "2.2", None)
    assert await one.presence.members(A, "presence-room") == {"u1": {"name": "Ann"}, "u2": None}
    assert await two.presence.count(A, "presence-room") == 2
    assert not await one.presence.leave(A, "presence-room", "u1", "1.1")
    assert await two.presence.leave(A, "presence-room", "u1", "2.1")
    assert await one.presence.members(A, "presence-room") == {"u2": None}


async def test_channel_counts_add_up_over_nodes(deployment: Deployment) -> None:
    one, two = await deployment.node(), await deployment.node()
    assert await one.channels.add(A, "news", "1.1") == 1
    assert await two.channels.add(A, "news", "2.1") == 2
    assert await two.channels.add(A, "news", "2.1") == 2  # idempotent per socket
    assert await one.channels.add(A, "sport", "1.2") == 1
    assert await two.channels.occupied(A, "") == {"news": 2, "sport": 1}
    assert await one.channels.remove(A, "news", "1.1") == 1
    assert await two.channels.remove(A, "news", "2.1") == 0
    assert await one.channels.count(A, "news") == 0


async def test_concurrent_first_subscribers_see_exactly_one_occupied(
    deployment: Deployment,
) -> None:
    nodes = [await deployment.node() for _ in range(3)]
    counts = await asyncio.gather(
        *(
            node.channels.add(A, "busy", f"{i}.{j}")
            for i, node in enumerate(nodes)
            for j in range(5)
        )
    )
    assert sorted(counts) == list(range(1, 16))


async def test_users_online_across_nodes(deployment: Deployment) -> None:
    one, two = await deployment.node(), await deployment.node()
    assert await one.users.sign_in(A, "u1", "1.1")
    assert not await two.users.sign_in(A, "u1", "2.1")
    assert await two.users.online(A, ["u0", "u1"]) == ["u1"]
    assert not await one.users.sign_out(A, "u1", "1.1")
    assert await two.users.sign_out(A, "u1", "2.1")
    assert await one.users.online(A, ["u1"]) == []


async def test_connection_quota_is_shared(deployment: Deployment) -> None:
    one, two = await deployment.node(), await deployment.node()
    assert await one.quota.acquire(A, 2)
    assert await two.quota.acquire(A, 2)
    assert not await one.quota.acquire(A, 2)
    await two.quota.release(A)
    assert await one.quota.acquire(A, 2)


async def test_a_dead_nodes_state_is_cleared_once_and_announced(deployment: Deployment) -> None:
    survivors = [await deployment.node(), await deployment.node()]
    dead = await deployment.node()
    await survivors[0].presence.join(A, "presence-room", "kept", "1.1", None)
    await survivors[0].channels.add(A, "presence-room", "1.1")
    await dead.presence.join(A, "presence-room", "kept", "3.1", None)  # also on a survivor
    await dead.presence.join(A, "presence-room", "gone", "3.2", {"n": 1})
    await dead.channels.add(A, "presence-room", "3.1")
    await dead.channels.add(A, "presence-room", "3.2")
    await dead.channels.add(A, "lonely", "3.1")
    await dead.users.sign_in(A, "gone", "3.2")
    await dead.quota.acquire(A, 2)
    await survivors[1].quota.acquire(A, 2)

    dead.die()
    # Whichever survivor claims the dead node announces everything (and only it does).
    winner = await _first_to_announce(survivors)
    changes = await winner.wait_changes(4)
    assert _described(changes) == [
        ("member_removed", "presence-room", "gone"),
        ("user_offline", "", "gone"),
        ("channel_count", "presence-room", "3->1"),
        ("channel_count", "lonely", "1->0"),
    ] or _described(changes) == [
        ("member_removed", "presence-room", "gone"),
        ("user_offline", "", "gone"),
        ("channel_count", "lonely", "1->0"),
        ("channel_count", "presence-room", "3->1"),
    ]
    loser = survivors[1] if winner is survivors[0] else survivors[0]
    # The cluster state is what the survivors hold, and the quota place came back.
    assert await loser.presence.members(A, "presence-room") == {"kept": None}
    assert await loser.channels.occupied(A, "") == {"presence-room": 1}
    assert await loser.users.online(A, ["gone"]) == []
    assert await loser.quota.acquire(A, 2)
    # One more lease period: nobody announces the dead node a second time.
    await survivors[0].cluster._reap_dead_nodes()
    await survivors[1].cluster._reap_dead_nodes()
    assert loser.changes == []
    assert len(winner.changes) == 4


async def test_a_node_whose_lease_was_lost_comes_back_and_is_announced(
    deployment: Deployment,
) -> None:
    observer = await deployment.node()
    lagging = await deployment.node()
    await lagging.presence.join(A, "presence-room", "u1", "2.1", {"n": 1})
    await lagging.channels.add(A, "presence-room", "2.1")
    lagging.die()
    removed = await observer.wait_changes(2)
    assert {c.kind for c in removed} == {ChangeKind.MEMBER_REMOVED, ChangeKind.CHANNEL_COUNT}
    assert await observer.presence.members(A, "presence-room") == {}

    # The lagging node wakes up (its sockets never went away): it finds its lease gone,
    # registers anew and puts its members back, announcing them since the others heard
    # them leave.
    await lagging.cluster._tick()
    assert _described(lagging.changes) == [
        ("member_added", "presence-room", "u1"),
        ("channel_count", "presence-room", "0->1"),
    ]
    assert await observer.presence.members(A, "presence-room") == {"u1": {"n": 1}}
    assert await observer.channels.count(A, "presence-room") == 1


async def test_envelopes_cross_nodes_once(deployment: Deployment) -> None:
    nodes = [await deployment.node() for _ in range(3)]
    brokers: list[RedisBroker] = []
    seen: list[list[Envelope]] = [[] for _ in nodes]
    arrived = asyncio.Event()
    for index, node in enumerate(nodes):
        reader = connect_reader(REDIS_URL, 5.0, 5.0)
        broker = RedisBroker(node.cluster, reader, logging.getLogger("test.broker"))
        await broker.start()
        brokers.append(broker)

        def deliver(envelope: Envelope, into: list[Envelope] = seen[index]) -> None:
            into.append(envelope)
            arrived.set()

        broker.bind(deliver)
    try:
        sent = [Envelope(A, "news", f"e{i}", "{}") for i in range(20)]
        for i, envelope in enumerate(sent):
            brokers[i % 3].publish(envelope)
        async with asyncio.timeout(TIMEOUT):
            while any(len(s) < len(sent) for s in seen):
                arrived.clear()
                await arrived.wait()
        for index, received in enumerate(seen):
            assert sorted(e.event for e in received) == sorted(e.event for e in sent)
            # Each publisher's own envelopes arrive in its order, on every node.
            for origin in range(3):
                mine = [e for e in received if int(e.event[1:]) % 3 == origin]
                assert mine == [e for i, e in enumerate(sent) if i % 3 == origin], index
    finally:
        for broker in brokers:
            await broker.close()


async def _first_to_announce(nodes: list[ClusterNode]) -> ClusterNode:
    waiters = {asyncio.ensure_future(node.changed.wait()): node for node in nodes}
    try:
        async with asyncio.timeout(TIMEOUT + 5 * LEASE_S):
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return waiters[next(iter(done))]


def _described(changes: list[ClusterChange]) -> list[tuple[str, str, str]]:
    out = []
    for c in changes:
        if c.kind is ChangeKind.CHANNEL_COUNT:
            out.append((c.kind.value, c.channel, f"{c.before}->{c.count}"))
        else:
            out.append((c.kind.value, c.channel, c.user_id))
    return out
