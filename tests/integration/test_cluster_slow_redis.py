"""A Redis that stops answering (frozen with SIGSTOP, as a stalled or overloaded server looks)
never stalls a node's event loop: its clients' pings are answered and its own triggers reach
its own subscribers while every Redis command waits; once Redis answers, the commands that
waited complete and nodes deliver to each other again."""

from __future__ import annotations

import os
import signal

import pytest
from cluster_support import Cluster, PrivateRedis, Recorder
from it_support import TIMEOUT

# Far longer than any wait below: only a loop that is not blocked on Redis can pass.
REDIS_TIMEOUT_S = 30 * TIMEOUT


@pytest.fixture
async def private_redis():
    server = await PrivateRedis().start()
    yield server
    assert server.proc is not None
    if server.proc.returncode is None:
        os.kill(server.proc.pid, signal.SIGCONT)
    await server.aclose()


async def test_a_frozen_redis_does_not_stall_the_nodes(private_redis: PrivateRedis) -> None:
    async with Cluster.running(
        2,
        redis_url=private_redis.url,
        lease_s=REDIS_TIMEOUT_S,
        env={"CLARION_REDIS_TIMEOUT_S": str(REDIS_TIMEOUT_S)},
    ) as cluster:
        n1, n2 = cluster.nodes
        local = Recorder(await cluster.join(n1, "news"), "news on node 1")
        remote = Recorder(await cluster.join(n2, "news"), "news on node 2")
        await n1.trigger("news", "before", 0)
        await local.wait_for("before", "news")
        await remote.wait_for("before", "news")
        waiting = await cluster.join(n1, "other")

        assert private_redis.proc is not None
        os.kill(private_redis.proc.pid, signal.SIGSTOP)
        try:
            # Every Redis command now waits (up to REDIS_TIMEOUT_S). The loop goes on:
            await waiting.until_pong()  # a ping answered
            assert await n1.trigger("news", "during", 1) == {}  # the HTTP API answers ...
            await local.wait_for("during", "news", 1)  # ... and node 1's subscriber gets it
            fresh = await n1.connect()  # a new socket is established
            await fresh.until_pong()
            # A subscribe needs Redis: it is answered once Redis is, not before.
            await cluster.subscribe(fresh, "later")
        finally:
            os.kill(private_redis.proc.pid, signal.SIGCONT)
        await fresh.expect_succeeded("later")
        # Node 2 gets what node 1 sent while Redis was frozen, and delivery goes on.
        await remote.wait_for("during", "news", 1)
        await n2.trigger("news", "after", 2)
        await local.wait_for("after", "news", 2)
        assert len(local.events("during")) == 1
        assert len(remote.events("during")) == 1
