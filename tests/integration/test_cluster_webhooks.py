"""Issue 5, three nodes on one Redis: webhooks describe the cluster, not a node.
channel_occupied when the first subscriber anywhere arrives, channel_vacated when the last one
anywhere leaves; member_added / member_removed once per user however many nodes its sockets are
on; one client_event per client event.

Every request is checked with the pusher SDK's `validate_webhook` (it_support.WebhookReceiver).
To show that an event was NOT sent, each node then makes a marker channel occupied and vacated
(vacated is held back like the events under test): once all three markers have arrived, a leaked
event, emitted earlier by any node, would have too.
"""

from __future__ import annotations

import pytest
from cluster_support import (
    Cluster,
    WebhookReceiver,
    hook_names,
    hooked_app,
    hooks_until,
    webhook_markers,
)

from clarion.core.apps import App
from clarion.types import AppId, AppKey

HOOKED = App(
    id=AppId("987654"),
    key=AppKey("hooked-key"),
    secret="hooked-secret",
    name="hooked",
    enable_client_messages=True,
)


@pytest.fixture
async def receiver():
    started = await WebhookReceiver(HOOKED).start()
    yield started
    await started.close()


@pytest.fixture
async def app(receiver):
    return hooked_app(receiver)


@pytest.fixture
async def cluster(app):
    async with Cluster.running(3, apps=(app,)) as running:
        yield running


async def test_occupied_and_vacated_once_for_the_whole_cluster(cluster, receiver, app):
    n1, n2, n3 = cluster.nodes
    a = await cluster.join(n1, "news", app=app)
    await hooks_until(receiver, lambda: hook_names(receiver) == ["channel_occupied:news"])
    b = await cluster.join(n2, "news", app=app)
    c = await cluster.join(n3, "news", app=app)
    # Two of three leave, on different nodes: the channel is still occupied (on node 3).
    await a.close()
    await b.unsubscribe("news")
    await b.until_pong()
    await webhook_markers(cluster, receiver, app)
    assert hook_names(receiver) == ["channel_occupied:news"]
    # The last one anywhere leaves: vacated, once.
    await c.close()
    await hooks_until(receiver, lambda: "channel_vacated:news" in hook_names(receiver))
    await webhook_markers(cluster, receiver, app)
    assert hook_names(receiver) == ["channel_occupied:news", "channel_vacated:news"]
    assert {"name": "channel_vacated", "channel": "news"} in receiver.events()


async def test_member_events_once_per_user_across_nodes(cluster, receiver, app):
    n1, n2, n3 = cluster.nodes
    room = "presence-room"
    phone = await cluster.join(n1, room, "1", app=app)
    await hooks_until(receiver, lambda: len(hook_names(receiver)) >= 2)
    laptop = await cluster.join(n2, room, "1", app=app)  # user 1 again, on node 2
    other = await cluster.join(n3, room, "2", app=app)
    await hooks_until(receiver, lambda: f"member_added:{room}:2" in hook_names(receiver))
    await webhook_markers(cluster, receiver, app)
    assert hook_names(receiver) == [
        f"channel_occupied:{room}",
        f"member_added:{room}:1",
        f"member_added:{room}:2",
    ]
    # User 1 leaves node 1 but is still on node 2: nothing.
    await phone.close()
    await webhook_markers(cluster, receiver, app)
    assert len(hook_names(receiver)) == 3, hook_names(receiver)
    # User 1's last socket, then user 2's: each removed once, then the channel vacated.
    await laptop.close()
    await hooks_until(receiver, lambda: f"member_removed:{room}:1" in hook_names(receiver))
    await other.close()
    await hooks_until(receiver, lambda: f"channel_vacated:{room}" in hook_names(receiver))
    await webhook_markers(cluster, receiver, app)
    assert hook_names(receiver) == [
        f"channel_occupied:{room}",
        f"member_added:{room}:1",
        f"member_added:{room}:2",
        f"member_removed:{room}:1",
        f"member_removed:{room}:2",
        f"channel_vacated:{room}",
    ]
    assert {"name": "member_removed", "channel": room, "user_id": "1"} in receiver.events()


async def test_a_client_event_heard_on_three_nodes_is_one_webhook(cluster, receiver, app):
    peers = [await cluster.join(node, "private-chat", app=app) for node in cluster.nodes]
    sender = await cluster.join(cluster[1], "private-chat", app=app)
    await sender.send_event("client-typing", {"who": "me"}, channel="private-chat")
    for peer in peers:
        await peer.expect("client-typing", "private-chat")
    await hooks_until(receiver, lambda: "client_event:private-chat" in hook_names(receiver))
    await webhook_markers(cluster, receiver, app)
    client_events = [e for e in receiver.events() if e["name"] == "client_event"]
    assert len(client_events) == 1, client_events
    assert client_events[0]["event"] == "client-typing"
    assert client_events[0]["socket_id"] == sender.socket_id
    assert client_events[0]["channel"] == "private-chat"
