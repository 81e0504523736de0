"""Issue 5, three nodes on one Redis: users are cluster-wide. Server-to-user events through any
node reach the user's sockets on every node; watchlists see users come online at their first
socket anywhere and go offline at their last; terminate_connections through any node closes the
user's sockets on every node with 4009."""

from __future__ import annotations

import pytest
import pytest_asyncio
from cluster_support import Cluster, frames_until
from it_support import data_of, watchlist_of

USER_CHANNEL = "#server-to-user-"
WATCH = "pusher_internal:watchlist_events"


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


async def _signed_in(cluster, node, user_data):
    client = await node.connect()
    await cluster.signin_ok(client, user_data)
    return client


async def test_send_to_user_through_any_node_reaches_every_socket_of_the_user(cluster):
    phone = await _signed_in(cluster, cluster[0], {"id": "1"})
    laptop = await _signed_in(cluster, cluster[2], {"id": "1"})
    other = await _signed_in(cluster, cluster[0], {"id": "2"})
    for origin in cluster.nodes:
        assert await origin.api("send_to_user", "1", "notice", {"via": origin.index}) == {}
        await origin.api("send_to_user", "1", "marker", origin.index)
        for client in (phone, laptop):
            before = await frames_until(client, "marker", f"{USER_CHANNEL}1")
            assert [(f["event"], f["channel"], data_of(f)) for f in before] == [
                ("notice", f"{USER_CHANNEL}1", {"via": origin.index})
            ], (client.node, origin)
    # User 2 got none of it.
    await cluster[1].api("send_to_user", "2", "marker", "m")
    assert await frames_until(other, "marker", f"{USER_CHANNEL}2") == []


async def test_watchlists_see_users_on_other_nodes_come_and_go(cluster):
    n1, n2, n3 = cluster.nodes
    early = await _signed_in(cluster, n3, {"id": "w"})  # online before the watcher signs in
    watcher = await n1.connect()
    await cluster.signin_ok(watcher, {"id": "me", "watchlist": ["w", "x", "y", "z"]})
    assert watchlist_of(await watcher.expect(WATCH)) == [("online", ["w"])]

    # x's first socket, on node 2: online once.
    x_2 = await _signed_in(cluster, n2, {"id": "x"})
    assert watchlist_of(await watcher.expect(WATCH)) == [("online", ["x"])]
    # x's second socket, on node 3: nothing (a later arrival, y on node 3, comes next).
    x_3 = await _signed_in(cluster, n3, {"id": "x"})
    y = await _signed_in(cluster, n3, {"id": "y"})
    assert watchlist_of(await watcher.expect(WATCH)) == [("online", ["y"])]

    # x leaves node 2: still online on node 3, so nothing (z arriving on node 2 comes next).
    await x_2.close()
    await _signed_in(cluster, n2, {"id": "z"})
    assert watchlist_of(await watcher.expect(WATCH)) == [("online", ["z"])]
    # The last socket of x goes: offline, once; then the others, each once.
    await x_3.close()
    assert watchlist_of(await watcher.expect(WATCH)) == [("offline", ["x"])]
    await early.close()
    assert watchlist_of(await watcher.expect(WATCH)) == [("offline", ["w"])]
    await y.close()
    assert watchlist_of(await watcher.expect(WATCH)) == [("offline", ["y"])]
    # Nothing more: y comes back through node 2, and that is the very next frame.
    await _signed_in(cluster, n2, {"id": "y"})
    assert watchlist_of(await watcher.expect(WATCH)) == [("online", ["y"])]
    await watcher.assert_nothing_pending()


async def test_terminate_connections_through_any_node_closes_the_users_sockets_everywhere(
    cluster,
):
    n1, n2, n3 = cluster.nodes
    phone = await _signed_in(cluster, n1, {"id": "1"})
    laptop = await _signed_in(cluster, n2, {"id": "1"})
    watcher = await _signed_in(cluster, n3, {"id": "2", "watchlist": ["1"]})
    assert watchlist_of(await watcher.expect(WATCH)) == [("online", ["1"])]
    # In a presence channel as user 1 on node 2, but never signed in: not user 1's connection.
    lookalike = await cluster.join(n2, "presence-room", "1")

    assert await n3.api("terminate_user_connections", "1") == {}
    for client in (phone, laptop):
        code, frames = await client.closed()
        assert code == 4009, (client.node, code, frames)
        assert [f["event"] for f in frames] == ["pusher:error"], frames
        assert data_of(frames[0]) == {"code": 4009, "message": "Connection terminated by the app"}
    assert watchlist_of(await watcher.expect(WATCH)) == [("offline", ["1"])]
    # The others stay open and keep receiving.
    await n1.trigger("presence-room", "still", "here")
    assert data_of(await lookalike.expect("still", "presence-room")) == "here"
    await watcher.assert_nothing_pending()
