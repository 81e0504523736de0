"""Issue 5, faults: a node killed outright (SIGKILL, no goodbye) and Redis restarted empty.

A killed node's state lives on a lease (`CLARION_NODE_LEASE_S`); within about one lease the
survivors remove its sockets: member_removed once to the presence subscribers left, the webhooks
(member_removed, channel_vacated) once, its channels gone from the HTTP API; and the survivors'
own clients lose nothing meanwhile (a ticker in lockstep: each tick is triggered once the
previous one has reached every survivor, and at the end every survivor must hold exactly 0..n-1).

Redis going away must not stop a node serving its own clients; once Redis is back (empty: no
persistence) the nodes put their state back and cross-node delivery resumes. These tests use a
private `redis-server` on a unix socket: the shared one is never touched.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from cluster_support import (
    HOLDBACK_S,
    Cluster,
    PrivateRedis,
    Recorder,
    WebhookReceiver,
    eventually,
    hook_names,
    hooked_app,
    hooks_until,
    webhook_markers,
)
from it_support import TIMEOUT, UNIT, data_of

from clarion.core.apps import App
from clarion.types import AppId, AppKey

LEASE_S = 2.0
ROOM = "presence-room"
ADDED, REMOVED = "pusher_internal:member_added", "pusher_internal:member_removed"
HOOKED = App(
    id=AppId("987655"),
    key=AppKey("faulty-key"),
    secret="faulty-secret",
    name="faulty",
    enable_client_messages=True,
)


@pytest.fixture
async def receiver():
    started = await WebhookReceiver(HOOKED).start()
    yield started
    await started.close()


@pytest.fixture
async def private_redis():
    server = await PrivateRedis().start()
    yield server
    await server.aclose()


class Ticker:
    """Triggers `tick` 0, 1, 2, ... on a channel through the given nodes in turn, each once the
    previous one reached every recorder (no pacing sleep: the recorders pace it)."""

    def __init__(self, nodes, recorders, channel, app):
        self.nodes = nodes
        self.recorders = recorders
        self.channel = channel
        self.app = app
        self.sent = 0
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self):
        for i in itertools.count():
            if self._stop.is_set():
                return
            node = self.nodes[i % len(self.nodes)]
            await node.trigger(self.channel, "tick", i, app=self.app)
            self.sent = i + 1
            for rec in self.recorders:
                await rec.until(lambda rec=rec, i=i: len(rec.events("tick")) > i)

    async def ticks(self, n):
        """Wait until n more ticks have gone round."""
        target = self.sent + n
        for rec in self.recorders:
            await rec.until(lambda rec=rec: len(rec.events("tick")) >= target, 2 * TIMEOUT)

    async def stop(self):
        self._stop.set()
        await asyncio.wait_for(self._task, 2 * TIMEOUT)  # re-raises a lost or late tick
        for rec in self.recorders:
            assert rec.data("tick", self.channel) == list(range(self.sent)), rec.name


# ---- a node killed ---------------------------------------------------------------------------


async def test_a_killed_nodes_members_and_channels_are_removed_within_a_lease(receiver):
    app = hooked_app(receiver)
    async with Cluster.running(3, apps=(app,), lease_s=LEASE_S) as cluster:
        n1, n2, n3 = cluster.nodes
        # Node 1 holds presence member "doomed" and the only subscriber of "solo".
        doomed = await cluster.join(n1, ROOM, "doomed", app=app)
        await cluster.subscribe_ok(doomed, "solo", app=app)
        s2 = await cluster.join(n2, ROOM, "s2", app=app)
        s3 = await cluster.join(n3, ROOM, "s3", app=app)
        await s2.expect(ADDED, ROOM)  # s3
        for client in (s2, s3):
            await cluster.subscribe_ok(client, "ticker", app=app)
        await hooks_until(receiver, lambda: f"member_added:{ROOM}:s3" in hook_names(receiver))
        await hooks_until(receiver, lambda: "channel_occupied:solo" in hook_names(receiver))
        for node in cluster.nodes:
            listed = await node.api("channels_info", app=app)
            assert set(listed["channels"]) == {ROOM, "solo", "ticker"}, node

        rec2, rec3 = Recorder(s2, "s2 on node 2"), Recorder(s3, "s3 on node 3")
        ticker = Ticker([n2, n3], [rec2, rec3], "ticker", app)
        await ticker.ticks(3)

        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        await n1.kill()
        gone = {"user_id": "doomed"}
        for rec in (rec2, rec3):
            await rec.wait_for(REMOVED, ROOM, gone, within=LEASE_S + TIMEOUT)
        removed_after = loop.time() - killed_at
        await hooks_until(
            receiver,
            lambda: (
                {f"member_removed:{ROOM}:doomed", "channel_vacated:solo"}
                <= set(hook_names(receiver))
            ),
            within=LEASE_S + HOLDBACK_S + TIMEOUT,
        )
        # The survivors' HTTP API no longer knows the dead node's channel or member.
        for node in (n2, n3):
            listed = await node.api("channels_info", app=app)
            assert set(listed["channels"]) == {ROOM, "ticker"}, node
            users = await node.api("users_info", ROOM, app=app)
            assert sorted(u["id"] for u in users["users"]) == ["s2", "s3"], node
            info = await node.api("channel_info", "solo", ["subscription_count"], app=app)
            assert info == {"occupied": False, "subscription_count": 0}, node

        await ticker.ticks(3)
        await ticker.stop()  # every tick, once, in order, on both survivors

        # Exactly once: a marker member joins through each survivor after all that.
        for node, user in ((n2, "m2"), (n3, "m3")):
            await cluster.join(node, ROOM, user, app=app)
            for rec in (rec2, rec3):
                await rec.wait_for(ADDED, ROOM, {"user_id": user, "user_info": None})
        for rec in (rec2, rec3):
            assert rec.data(REMOVED, ROOM) == [gone], rec.name
        await webhook_markers(cluster, receiver, app)
        names = hook_names(receiver)
        assert names.count(f"member_removed:{ROOM}:doomed") == 1, names
        assert names.count("channel_vacated:solo") == 1, names
        assert names.count("channel_occupied:solo") == 1, names
        assert f"channel_vacated:{ROOM}" not in names, names
        print(f"\nmember_removed reached the survivors {removed_after:.2f}s after SIGKILL")


async def test_a_replacement_node_joins_a_cluster_that_lost_one(receiver):
    """After a node is killed and cleaned up, a new node joins and is a full member."""
    app = hooked_app(receiver)
    async with Cluster.running(2, apps=(app,), lease_s=LEASE_S) as cluster:
        n1, n2 = cluster.nodes
        watcher = await cluster.join(n2, ROOM, "watcher", app=app)
        await cluster.join(n1, ROOM, "doomed", app=app)
        await watcher.expect(ADDED, ROOM)
        await n1.kill()
        msg = await watcher.expect(REMOVED, ROOM, within=LEASE_S + TIMEOUT)
        assert data_of(msg) == {"user_id": "doomed"}
        n3 = await cluster.add_node()
        newcomer = await n3.connect(app)
        roster = await cluster.subscribe_ok(newcomer, ROOM, {"user_id": "new"}, app=app)
        assert sorted(roster["presence"]["ids"]) == ["new", "watcher"], roster
        assert data_of(await watcher.expect(ADDED, ROOM)) == {"user_id": "new", "user_info": None}
        await n2.trigger(ROOM, "hello", "all", app=app)
        for client in (watcher, newcomer):
            assert data_of(await client.expect("hello", ROOM)) == "all"


# ---- Redis restarted --------------------------------------------------------------------------


async def _until_cross_node_delivery(cluster, recorders, within):
    """Probe through every node until each probe reaches every node's recorder: the cluster has
    recovered. Each probe waits on frames; a probe that got lost is followed by another."""
    probes = itertools.count()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    for origin in cluster.nodes:
        while True:
            k = next(probes)
            await origin.trigger("news", "probe", k)
            try:
                for rec in recorders:
                    await rec.wait_for("probe", "news", k, within=UNIT)
                break
            except AssertionError:
                if loop.time() > deadline:
                    raise


async def test_nodes_serve_their_own_clients_through_a_redis_restart_then_resync(private_redis):
    async with Cluster.running(
        3,
        redis_url=private_redis.url,
        lease_s=LEASE_S,
        env={"CLARION_REDIS_TIMEOUT_S": "0.5"},
    ) as cluster:
        cluster.errors_expected = True  # nodes may log Redis being unreachable
        n1, n2, n3 = cluster.nodes
        subs = [await cluster.join(node, "news") for node in cluster.nodes]
        alice = await cluster.join(n1, ROOM, "alice")
        bob = await cluster.join(n2, ROOM, "bob")
        await alice.expect(ADDED, ROOM)
        bob_rec = Recorder(bob, "bob on node 2")
        recs = [Recorder(sub, f"news on node {i + 1}") for i, sub in enumerate(subs)]
        await n1.trigger("news", "before", 0)
        for rec in recs:
            await rec.wait_for("before", "news")

        await private_redis.kill()

        # Redis is down. Node 1 still delivers its own triggers to its own clients ...
        assert await n1.trigger("news", "during", 1) == {}
        await recs[0].wait_for("during", "news", 1)
        # ... a new socket can still connect to node 2 and subscribe, and node 2 serves it.
        fresh = await n2.connect()
        await cluster.subscribe_ok(fresh, "news")
        fresh_rec = Recorder(fresh, "new socket on node 2")
        await n2.trigger("news", "during", 2)
        for rec in (fresh_rec, recs[1]):
            await rec.wait_for("during", "news", 2)
        # Presence changes while Redis is away: alice leaves (node 1), carol joins (node 3).
        await alice.unsubscribe(ROOM)
        await alice.until_pong()
        carol = await cluster.join(n3, ROOM, "carol")
        carol_rec = Recorder(carol, "carol on node 3")

        await private_redis.start()

        # Cross-node delivery comes back ...
        every_news = [*recs, fresh_rec]
        await _until_cross_node_delivery(cluster, every_news, 3 * TIMEOUT + LEASE_S)
        # ... and loses nothing triggered from then on, through any node, nor duplicates it.
        for i in range(30):
            await cluster[i % 3].trigger("news", "after", i)
        for node in cluster.nodes:
            await node.trigger("news", "marker", node.index)
        for rec in every_news:
            for node in cluster.nodes:
                await rec.wait_for("marker", "news", node.index)
            after = rec.data("after", "news")
            assert sorted(after) == list(range(30)), (rec.name, after)
            for origin in range(3):  # one publisher's events stay in order
                assert [i for i in after if i % 3 == origin] == list(range(origin, 30, 3))

        # The nodes put their state back: rosters and counts are right through every node.
        async def resynced():
            for node in cluster.nodes:
                users = await node.api("users_info", ROOM)
                assert sorted(u["id"] for u in users["users"]) == ["bob", "carol"], node
                info = await node.api("channel_info", "news", ["subscription_count"])
                assert info == {"occupied": True, "subscription_count": 4}, node
                info = await node.api("channel_info", ROOM, ["user_count", "subscription_count"])
                assert info == {"occupied": True, "user_count": 2, "subscription_count": 2}, node
                listed = await node.api("channels_info")
                assert listed == {"channels": {"news": {}, ROOM: {}}}, node

        await eventually(resynced, within=2 * TIMEOUT + LEASE_S)

        # Members see each other again: a newcomer's roster through node 1 is the cluster's.
        dave = await n1.connect()
        roster = await cluster.subscribe_ok(dave, ROOM, {"user_id": "dave"})
        assert sorted(roster["presence"]["ids"]) == ["bob", "carol", "dave"], roster
        for rec in (bob_rec, carol_rec):
            await rec.wait_for(ADDED, ROOM, {"user_id": "dave", "user_info": None})

        # Reported, not asserted here (see the next test): did node 1's outage-time event reach
        # node 2's and node 3's clients after recovery?
        reached = [rec.has("during", "news", 1) for rec in recs[1:]]
        print(f"\noutage event from node 1 reached node 2 / node 3 after recovery: {reached}")
        for rec in (bob_rec, carol_rec):
            heard = [(f["event"], data_of(f)) for f in rec.events() if f["event"] != "marker"]
            print(f"{rec.name} heard: {heard}")


async def test_events_triggered_during_a_redis_outage_reach_other_nodes_after_recovery(
    private_redis,
):
    """The design's aim: a node keeps what it could not publish and sends it once Redis is
    back, so clients on other nodes get outage-time events late rather than never."""
    async with Cluster.running(
        2,
        redis_url=private_redis.url,
        lease_s=LEASE_S,
        env={"CLARION_REDIS_TIMEOUT_S": "0.5"},
    ) as cluster:
        cluster.errors_expected = True
        n1, n2 = cluster.nodes
        local = Recorder(await cluster.join(n1, "news"), "node 1")
        remote = Recorder(await cluster.join(n2, "news"), "node 2")
        await private_redis.kill()
        for i in range(3):
            await n1.trigger("news", "during", i)
        await local.until(lambda: local.data("during") == [0, 1, 2])
        await private_redis.start()
        await remote.until(lambda: len(remote.events("during")) >= 3, within=3 * TIMEOUT + LEASE_S)
        await n1.trigger("news", "marker", "m")
        await remote.wait_for("marker", "news")
        assert remote.data("during") == [0, 1, 2]
        assert local.data("during") == [0, 1, 2]  # and node 1's own client got each once
