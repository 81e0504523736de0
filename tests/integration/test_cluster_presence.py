"""Issue 5, three nodes on one Redis: one presence roster for the whole cluster, and a user with
sockets on several nodes counted once (member_added at the first socket anywhere,
member_removed at the last one anywhere).

To show that a member event was NOT sent, a marker member joins through the node where the action
happened: its member_added follows the same path, so a leaked event would arrive first.
"""

from __future__ import annotations

import itertools

import pytest
import pytest_asyncio
from cluster_support import Cluster, frames_until
from it_support import data_of

ROOM = "presence-room"
ADDED, REMOVED = "pusher_internal:member_added", "pusher_internal:member_removed"
_markers = itertools.count()


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


def _member_events(frames):
    return [(f["event"], data_of(f)) for f in frames if f["event"] in (ADDED, REMOVED)]


async def _marker(cluster, node, observers):
    """A fresh member joins through `node`; return, per observer, the frames that arrived
    before its member_added (and leave the marker in the room)."""
    user = f"marker-{next(_markers)}"
    await cluster.join(node, ROOM, user)
    return [
        await frames_until(o, ADDED, ROOM, data={"user_id": user, "user_info": None})
        for o in observers
    ]


async def test_the_roster_lists_members_from_every_node(cluster):
    alice = await cluster.join(cluster[0], ROOM, "alice", info={"name": "Alice"})
    bob = await cluster.join(cluster[1], ROOM, "bob", info={"name": "Bob"})
    added = await alice.expect(ADDED, ROOM)
    assert data_of(added) == {"user_id": "bob", "user_info": {"name": "Bob"}}

    carol = await cluster[2].connect()
    roster = await cluster.subscribe_ok(carol, ROOM, {"user_id": "carol"})
    assert sorted(roster["presence"]["ids"]) == ["alice", "bob", "carol"]
    assert roster["presence"]["count"] == 3
    assert roster["presence"]["hash"] == {
        "alice": {"name": "Alice"},
        "bob": {"name": "Bob"},
        "carol": None,
    }
    for member in (alice, bob):
        msg = await member.expect(ADDED, ROOM)
        assert data_of(msg) == {"user_id": "carol", "user_info": None}, member.node
    # Carol is not told about herself, and nobody hears anything twice.
    for before in await _marker(cluster, cluster[2], (alice, bob, carol)):
        assert before == [], before


async def test_a_user_on_two_nodes_is_one_member(cluster):
    n1, n2, n3 = cluster.nodes
    alice = await cluster.join(n1, ROOM, "alice")
    carol = await cluster.join(n3, ROOM, "carol")
    await alice.expect(ADDED, ROOM)
    observers = (alice, carol)

    # Bob's first socket, on node 2: everyone else hears of him once.
    bob_2 = await cluster.join(n2, ROOM, "bob", info={"name": "Bob"})
    for o in observers:
        msg = await o.expect(ADDED, ROOM)
        assert data_of(msg) == {"user_id": "bob", "user_info": {"name": "Bob"}}, o.node
    for before in await _marker(cluster, n2, (*observers, bob_2)):
        assert _member_events(before) == [], before

    # His second socket, on node 3: the roster has him once, and nobody hears of it.
    bob_3 = await cluster[2].connect()
    roster = await cluster.subscribe_ok(bob_3, ROOM, {"user_id": "bob", "user_info": {"x": 1}})
    ids = roster["presence"]["ids"]
    assert len(ids) == len(set(ids)), roster  # bob (and everyone) once
    assert {"alice", "bob", "carol"} <= set(ids), roster
    assert len(ids) == 4, roster  # and the marker member
    assert roster["presence"]["count"] == 4, roster
    assert roster["presence"]["hash"]["bob"] in ({"name": "Bob"}, {"x": 1}), roster
    for before in await _marker(cluster, n3, (*observers, bob_2, bob_3)):
        assert _member_events(before) == [], before

    # His node-2 socket leaves: he is still there (node 3), so no member_removed.
    await bob_2.unsubscribe(ROOM)
    await bob_2.until_pong()
    for before in await _marker(cluster, n2, (*observers, bob_3)):
        assert _member_events(before) == [], before
    users = await n1.api("users_info", ROOM)
    assert "bob" in [u["id"] for u in users["users"]]

    # His last socket goes (a disconnect, on node 3): member_removed once, everywhere.
    await bob_3.close()
    for o in observers:
        msg = await o.expect(REMOVED, ROOM)
        assert data_of(msg) == {"user_id": "bob"}, o.node
    for before in await _marker(cluster, n3, observers):
        assert _member_events(before) == [], before
    for node in cluster.nodes:
        users = await node.api("users_info", ROOM)
        assert "bob" not in [u["id"] for u in users["users"]], node


async def test_a_user_who_comes_back_on_another_node_is_announced_again(cluster):
    alice = await cluster.join(cluster[0], ROOM, "alice")
    bob = await cluster.join(cluster[1], ROOM, "bob")
    assert data_of(await alice.expect(ADDED, ROOM)) == {"user_id": "bob", "user_info": None}
    await bob.close()
    assert data_of(await alice.expect(REMOVED, ROOM)) == {"user_id": "bob"}
    # Back, through node 3 this time.
    bob_again = await cluster.join(cluster[2], ROOM, "bob")
    assert data_of(await alice.expect(ADDED, ROOM)) == {"user_id": "bob", "user_info": None}
    for before in await _marker(cluster, cluster[2], (alice, bob_again)):
        assert before == [], before
    for node in cluster.nodes:
        info = await node.api("channel_info", ROOM, ["user_count"])
        # alice, bob and the marker
        assert info == {"occupied": True, "user_count": 3}, node
