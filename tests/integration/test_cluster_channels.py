"""Issue 5, three nodes on one Redis: fan-out of API triggers, batches and client events across
nodes, cache channels, cluster-wide subscription counts, the HTTP API's channel queries and the
per-app connection quota, each answered the same whichever node is asked.

"Exactly once" is shown with a marker: after the event, a second event is triggered through the
same node (same publisher, same Redis connection order), and the marker must be the very next
frame each subscriber reads.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import pytest_asyncio
from cluster_support import (
    CAPPED,
    CAPPED_TOO,
    COUNTED,
    MAIN,
    Cluster,
    eventually,
    frames_until,
    until_markers,
)
from it_support import TIMEOUT, data_of, error_code, refused

# One cluster for the module, each test with an app of its own (cluster_support.APP_POOL).
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shared_cluster():
    async with Cluster.running(3) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def cluster(shared_cluster):
    async with shared_cluster.test_scope() as scoped:
        yield scoped


def _events(frames):
    return [(f.get("event"), f.get("channel"), data_of(f)) for f in frames]


# ---- HTTP API triggers ---------------------------------------------------------------------


async def test_an_api_trigger_through_any_node_reaches_every_node_exactly_once(cluster):
    subs = [await cluster.join(node, "news") for node in cluster.nodes]
    subs.append(await cluster.join(cluster[1], "news"))  # two local subscribers on node 2
    for origin in cluster.nodes:
        assert await origin.trigger("news", "headline", {"via": origin.index}) == {}
        await origin.trigger("news", "marker", origin.index)
        for sub in subs:
            before = await frames_until(sub, "marker", "news")
            assert _events(before) == [("headline", "news", {"via": origin.index})], (
                f"through node {origin.index}, socket on {sub.node}"
            )


async def test_a_multi_channel_trigger_reaches_each_channel_once_on_every_node(cluster):
    a_only = await cluster.join(cluster[0], "alpha")
    b_only = await cluster.join(cluster[1], "beta")
    both = await cluster.join(cluster[1], "alpha")
    await cluster.subscribe_ok(both, "beta")
    # Triggered through the one node with no subscriber at all.
    await cluster[2].trigger(["alpha", "beta"], "news", "x")
    await cluster[2].trigger(["alpha", "beta"], "marker", "m")
    assert _events(await frames_until(a_only, "marker", "alpha")) == [("news", "alpha", "x")]
    assert _events(await frames_until(b_only, "marker", "beta")) == [("news", "beta", "x")]
    seen = await until_markers(both, {"alpha", "beta"})
    assert sorted(_events(seen)) == [("news", "alpha", "x"), ("news", "beta", "x")], seen


async def test_socket_id_exclusion_works_for_a_socket_on_another_node(cluster):
    subs = [await cluster.join(node, "news") for node in cluster.nodes]
    excluded = subs[1]
    await cluster[0].trigger("news", "update", "not for node 2", socket_id=excluded.socket_id)
    await cluster[0].trigger("news", "marker", "m")
    for sub in subs:
        before = await frames_until(sub, "marker", "news")
        expected = [] if sub is excluded else [("update", "news", "not for node 2")]
        assert _events(before) == expected, sub.node


async def test_a_batch_trigger_reaches_every_node_exactly_once(cluster):
    news_1 = await cluster.join(cluster[0], "news")
    news_3 = await cluster.join(cluster[2], "news")
    await cluster.subscribe_ok(news_3, "sports")
    batch = [
        {"channel": "news", "name": "one", "data": "1"},
        {"channel": "sports", "name": "two", "data": "2"},
        {"channel": "news", "name": "three", "data": "3", "socket_id": news_3.socket_id},
    ]
    # Through node 2, which has no subscriber of either channel.
    assert await cluster[1].api("trigger_batch", batch) == {}
    await cluster[1].trigger(["news", "sports"], "marker", "m")
    assert _events(await frames_until(news_1, "marker", "news")) == [
        ("one", "news", 1),
        ("three", "news", 3),
    ]
    got = await until_markers(news_3, {"news", "sports"})
    assert sorted(_events(got)) == [("one", "news", 1), ("two", "sports", 2)], got


# ---- client events -------------------------------------------------------------------------


async def test_client_events_reach_the_other_nodes_and_never_the_sender(cluster):
    peer_1 = await cluster.join(cluster[0], "private-chat")
    sender = await cluster.join(cluster[1], "private-chat")
    local_peer = await cluster.join(cluster[1], "private-chat")
    peer_3 = await cluster.join(cluster[2], "private-chat")
    await sender.send_event("client-typing", {"who": "me"}, channel="private-chat")
    for peer in (peer_1, local_peer, peer_3):
        msg = await peer.expect("client-typing", "private-chat")
        assert data_of(msg) == {"who": "me"}
        assert "user_id" not in msg
    # Nothing more for anyone, and nothing at all for the sender.
    await cluster[1].trigger("private-chat", "marker", "m")
    for peer in (peer_1, local_peer, peer_3):
        assert await frames_until(peer, "marker", "private-chat") == [], peer.node
    assert await frames_until(sender, "marker", "private-chat") == []


async def test_client_events_on_presence_channels_carry_the_user_id_across_nodes(cluster):
    a = await cluster.join(cluster[0], "presence-chat", "a")
    sender = await cluster.join(cluster[1], "presence-chat", "b")
    await a.expect("pusher_internal:member_added", "presence-chat")
    c = await cluster.join(cluster[2], "presence-chat", "c")
    for peer in (a, sender):
        await peer.expect("pusher_internal:member_added", "presence-chat")
    await sender.send_event("client-wave", {"hi": 1}, channel="presence-chat")
    for peer in (a, c):
        msg = await peer.expect("client-wave", "presence-chat")
        assert data_of(msg) == {"hi": 1}
        assert msg["user_id"] == "b", msg
    await cluster[1].trigger("presence-chat", "marker", "m")
    for client in (a, c, sender):
        assert await frames_until(client, "marker", "presence-chat") == [], client.node


# ---- cache channels ------------------------------------------------------------------------


async def test_cache_channels_are_shared_by_every_node(cluster):
    await cluster[0].trigger("cache-score", "goal", {"home": 1})
    late = await cluster.join(cluster[1], "cache-score")
    cached = await late.recv()
    assert (cached["event"], cached["channel"]) == ("goal", "cache-score"), cached
    assert data_of(cached) == {"home": 1}
    await late.assert_nothing_pending()

    # A cache channel nobody triggered: a miss on every node.
    empty = await cluster.join(cluster[2], "cache-empty")
    assert await empty.recv() == {"event": "pusher:cache_miss", "channel": "cache-empty"}

    # A newer event through another node replaces it everywhere; the API of any node shows it.
    await cluster[2].trigger("cache-score", "goal", {"home": 2})
    assert data_of(await late.expect("goal", "cache-score")) == {"home": 2}
    newest = await cluster.join(cluster[0], "cache-score")
    assert data_of(await newest.expect("goal", "cache-score")) == {"home": 2}
    for node in cluster.nodes:
        info = await node.api("channel_info", "cache-score", ["cache"])
        assert info["occupied"] is True
        assert info["cache"]["event"] == "goal", info
        assert json.loads(info["cache"]["data"]) == {"home": 2}, info
        assert 0 < info["cache"]["ttl"] <= MAIN.cache_ttl_seconds


# ---- subscription counts -------------------------------------------------------------------

COUNT = "pusher_internal:subscription_count"


async def test_subscription_count_events_carry_the_cluster_wide_count(cluster):
    async def expect_count(client, n):
        msg = await client.expect(COUNT, "news")
        assert data_of(msg) == {"subscription_count": n}, (msg, client.node)

    a = await cluster.join(cluster[0], "news", app=COUNTED)
    await expect_count(a, 1)
    b = await cluster.join(cluster[1], "news", app=COUNTED)
    await expect_count(b, 2)
    await expect_count(a, 2)
    c = await cluster.join(cluster[2], "news", app=COUNTED)
    for client in (c, a, b):
        await expect_count(client, 3)
    d = await cluster.join(cluster[2], "news", app=COUNTED)  # a second socket on node 3
    for client in (d, a, b, c):
        await expect_count(client, 4)

    await b.unsubscribe("news")
    for client in (a, c, d):
        await expect_count(client, 3)
    await c.close()
    for client in (a, d):
        await expect_count(client, 2)
    # Nothing else, to anyone: a marker through each node must come next.
    for node in cluster.nodes:
        await node.trigger("news", "marker", node.index, app=COUNTED)
        for client in (a, d):
            frames = await frames_until(client, "marker", "news", data=node.index)
            assert frames == [], (frames, client.node, node)
    assert await b.until_pong() == []
    for node in cluster.nodes:
        info = await node.api("channel_info", "news", ["subscription_count"], app=COUNTED)
        assert info == {"occupied": True, "subscription_count": 2}, node


# ---- HTTP API queries -----------------------------------------------------------------------


async def test_channel_queries_through_any_node_are_cluster_exact(cluster):
    n1, n2, n3 = cluster.nodes
    await cluster.join(n1, "news")
    await cluster.join(n2, "news")
    await cluster.join(n3, "news-sports")
    await cluster.join(n2, "private-x")
    alice = await cluster.join(n1, "presence-room", "alice")
    bob_2 = await cluster.join(n2, "presence-room", "bob")
    bob_3 = await cluster.join(n3, "presence-room", "bob")
    await alice.expect("pusher_internal:member_added", "presence-room")
    everything = {"news": {}, "news-sports": {}, "private-x": {}, "presence-room": {}}

    async def check(user_ids, presence_sockets):
        for node in cluster.nodes:
            listed = await node.api("channels_info")
            expected = dict(everything)
            if not user_ids:
                expected.pop("presence-room")
            assert listed == {"channels": expected}, node
            assert await node.api("channels_info", "news") == {
                "channels": {"news": {}, "news-sports": {}}
            }, node
            presence = await node.api("channels_info", "presence-", ["user_count"])
            expected_presence = {"presence-room": {"user_count": len(user_ids)}} if user_ids else {}
            assert presence == {"channels": expected_presence}, node
            info = await node.api("channel_info", "news", ["subscription_count"])
            assert info == {"occupied": True, "subscription_count": 2}, node
            info = await node.api(
                "channel_info", "presence-room", ["user_count", "subscription_count"]
            )
            assert info == {
                "occupied": bool(user_ids),
                "user_count": len(user_ids),
                "subscription_count": presence_sockets,
            }, node
            assert await node.api("channel_info", "nobody-here") == {"occupied": False}, node
            users = await node.api("users_info", "presence-room")
            assert sorted(u["id"] for u in users["users"]) == sorted(user_ids), node

    await check(["alice", "bob"], 3)
    # Bob's node-3 socket goes: he is still a member (on node 2).
    await bob_3.close()
    await eventually(lambda: check(["alice", "bob"], 2))
    # His last socket goes: the roster and counts lose him through every node.
    await bob_2.unsubscribe("presence-room")
    await alice.expect("pusher_internal:member_removed", "presence-room")
    await check(["alice"], 1)
    await alice.close()
    await eventually(lambda: check([], 0))


# ---- connection quota (max_connections) ----------------------------------------------------


async def _connect_capped(node, app=CAPPED):
    """A socket of a capped app on `node`: the client if accepted, else (close code, frames)."""
    ws = await node.open(app)
    first = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    if first.get("event") == "pusher:connection_established":
        return ws, None
    code, rest = await refused(ws)
    return None, (code, [first, *rest])


async def test_max_connections_is_enforced_across_the_cluster(cluster):
    held = []
    for node in cluster.nodes:
        ws, refusal = await _connect_capped(node)
        assert ws is not None, (node, refusal)
        held.append(ws)
    for node in cluster.nodes:
        ws, refusal = await _connect_capped(node)
        assert ws is None, f"a fourth socket was accepted on {node}"
        code, frames = refusal
        assert [f["event"] for f in frames] == ["pusher:error"], frames
        assert error_code(frames[0]) == 4004
        assert code == 4004
    # The quota is per app: another app on the same nodes is unaffected.
    await cluster[0].connect(MAIN)
    # Once one socket has gone (node 2's), one new socket fits again, on another node. The
    # count is shared state with no event to wait on: polled.
    await held[1].close()

    async def fits():
        ws, refusal = await _connect_capped(cluster[2])
        assert ws is not None, refusal
        return ws

    await eventually(fits)
    ws, refusal = await _connect_capped(cluster[0])
    assert ws is None, "over the quota again, yet accepted"
    assert refusal[0] == 4004, refusal


async def test_simultaneous_connections_over_the_quota_are_refused_exactly(cluster):
    results = await asyncio.gather(
        *(_connect_capped(node, CAPPED_TOO) for node in cluster.nodes for _ in range(3))
    )
    accepted = [ws for ws, _ in results if ws is not None]
    refusals = [r for ws, r in results if ws is None]
    assert len(accepted) == CAPPED_TOO.max_connections, results
    assert len(refusals) == 9 - CAPPED_TOO.max_connections
    assert all(code == 4004 for code, _ in refusals), refusals
    # The accepted ones are really open: they answer a ping.
    for ws in accepted:
        await ws.send(json.dumps({"event": "pusher:ping", "data": {}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["event"] == "pusher:pong"
