"""Reference 4: client events: where they are allowed, who receives them, what is added."""

from __future__ import annotations

from it_support import NO_CLIENT_EVENTS, data_of, error_code, presence_data


async def _pair(server, channel, app=None, custom=None):
    kwargs = {"app": app} if app is not None else {}
    sender = await server.connect(**kwargs)
    receiver = await server.connect(**kwargs)
    await server.subscribe_ok(sender, channel, custom and custom("1"), **kwargs)
    await server.subscribe_ok(receiver, channel, custom and custom("2"), **kwargs)
    if channel.startswith("presence-"):
        await sender.expect("pusher_internal:member_added", channel)
    return sender, receiver


async def test_client_event_reaches_the_others_but_never_the_sender(server):
    sender, receiver = await _pair(server, "private-chat")
    third = await server.connect()
    await server.subscribe_ok(third, "private-chat")
    await sender.send_event("client-typing", {"who": "me"}, channel="private-chat")
    for other in (receiver, third):
        msg = await other.expect("client-typing", "private-chat")
        assert data_of(msg) == {"who": "me"}
        assert "user_id" not in msg  # only presence channels carry it
    await sender.assert_nothing_pending()


async def test_client_event_on_presence_channel_carries_the_senders_user_id(server):
    sender, receiver = await _pair(server, "presence-chat", custom=presence_data)
    await sender.send_event("client-wave", {"hand": "left"}, channel="presence-chat")
    msg = await receiver.expect("client-wave", "presence-chat")
    assert msg["user_id"] == "1"
    assert data_of(msg) == {"hand": "left"}
    await sender.assert_nothing_pending()


async def test_client_event_on_public_channel_is_rejected(server):
    sender, receiver = await _pair(server, "lobby")
    await sender.send_event("client-shout", {"x": 1}, channel="lobby")
    frames = await sender.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error"], frames
    await receiver.assert_nothing_pending()


async def test_client_event_rejected_when_app_disables_them(server):
    sender, receiver = await _pair(server, "private-chat", app=NO_CLIENT_EVENTS)
    await sender.send_event("client-typing", {"x": 1}, channel="private-chat")
    frames = await sender.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error"], frames
    assert error_code(frames[0]) == 4301
    await receiver.assert_nothing_pending()
    # pusher:error only: the socket stays open and subscribed (never *close* with 43xx).
    await server.call(
        server.sdk(NO_CLIENT_EVENTS).trigger, "private-chat", "server-side", "still-here"
    )
    assert (await sender.expect("server-side", "private-chat"))["data"] == "still-here"


async def test_client_event_on_unsubscribed_channel_is_rejected(server):
    outsider = await server.connect()
    member = await server.connect()
    await server.subscribe_ok(member, "private-chat")
    await outsider.send_event("client-sneak", {"x": 1}, channel="private-chat")
    frames = await outsider.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error"], frames
    await member.assert_nothing_pending()


async def test_client_event_after_unsubscribe_is_rejected(server):
    sender, receiver = await _pair(server, "private-chat")
    await sender.unsubscribe("private-chat")
    await sender.send_event("client-late", {"x": 1}, channel="private-chat")
    frames = await sender.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error"], frames
    await receiver.assert_nothing_pending()


async def test_client_event_with_data_over_10_kb_is_rejected(server):
    sender, receiver = await _pair(server, "private-chat")
    await sender.send_event("client-big", "x" * (10 * 1024 + 100), channel="private-chat")
    frames = await sender.until_pong()
    assert [f["event"] for f in frames] == ["pusher:error"], frames
    await receiver.assert_nothing_pending()
    # A normal-sized one right after still goes through.
    await sender.send_event("client-small", "ok", channel="private-chat")
    assert data_of(await receiver.expect("client-small", "private-chat")) == "ok"


async def test_event_without_client_prefix_is_not_relayed(server):
    sender, receiver = await _pair(server, "private-chat")
    await sender.send_event("typing", {"x": 1}, channel="private-chat")
    frames = await sender.until_pong()
    assert all(f["event"] == "pusher:error" for f in frames), frames
    await receiver.assert_nothing_pending()
