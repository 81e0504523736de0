"""Reference 2, 3.1: subscribing to public, private and encrypted channels; auth failures;
repeated subscribes; unsubscribe; channel names. Presence is in test_presence.py."""

from __future__ import annotations

import base64
import json

import nacl.secret
import pytest
from it_support import MAIN, data_of, error_code


def _assert_rejected(frames: list[dict], channel: str, status: int | None = None) -> None:
    """Reference 2.5: a refused subscription is reported, never as success, and the socket stays
    open (the caller got its pong). Clarion sends Pusher's `pusher:error` (code null) and
    soketi's `pusher:subscription_error` on the channel."""
    events = sorted(f["event"] for f in frames)
    assert events == ["pusher:error", "pusher:subscription_error"], frames
    error = next(f for f in frames if f["event"] == "pusher:error")
    assert error_code(error) is None
    sub_error = next(f for f in frames if f["event"] == "pusher:subscription_error")
    assert sub_error.get("channel") == channel
    if status is not None:
        assert data_of(sub_error)["status"] == status, sub_error


async def test_public_subscribe_and_receive_an_event(server):
    client = await server.connect()
    data = await server.subscribe_ok(client, "my-channel")
    assert data in ({}, None)
    await server.trigger("my-channel", "my-event", {"message": "hello"})
    msg = await client.recv()
    # Reference 9.3: the frame, with the SDK's data string relayed unchanged.
    assert msg == {"event": "my-event", "channel": "my-channel", "data": '{"message": "hello"}'}


async def test_public_subscribe_ignores_auth(server):
    client = await server.connect()
    await client.subscribe("my-channel", auth="whatever:nonsense")
    await client.expect_succeeded("my-channel")


async def test_subscribe_data_sent_as_a_json_string_is_accepted(server):
    # Reference 1.2: be lenient, decode C->S `data` that arrives as a string holding JSON.
    client = await server.connect()
    await client.send_json(
        {"event": "pusher:subscribe", "data": json.dumps({"auth": "", "channel": "lenient"})}
    )
    await client.expect_succeeded("lenient")


async def test_private_subscribe_with_sdk_auth(server):
    client = await server.connect()
    assert await server.subscribe_ok(client, "private-chat") in ({}, None)
    await server.trigger("private-chat", "secret", "psst")
    msg = await client.expect("secret", "private-chat")
    assert msg["data"] == "psst"


async def test_private_encrypted_subscribe_and_receive_an_encrypted_event(server):
    channel = "private-encrypted-vault"
    client = await server.connect()
    signed = server.auth(client, channel)
    # The auth endpoint's shared_secret goes to the client, never to the server (reference 2.9).
    shared_secret = base64.b64decode(signed["shared_secret"])
    await client.subscribe(channel, signed["auth"])
    await client.expect_succeeded(channel)
    await server.trigger(channel, "sealed", {"message": "hello"})
    msg = await client.expect("sealed", channel)
    sealed = json.loads(msg["data"])
    plain = nacl.secret.SecretBox(shared_secret).decrypt(
        base64.b64decode(sealed["ciphertext"]), base64.b64decode(sealed["nonce"])
    )
    assert json.loads(plain) == {"message": "hello"}


async def test_bad_signature_is_rejected_and_socket_stays_usable(server):
    client = await server.connect()
    await client.subscribe("private-chat", auth=f"{MAIN.key}:{'0' * 64}")
    frames = await client.until_pong()
    _assert_rejected(frames, "private-chat", status=401)
    # Not subscribed: events on the channel do not reach it.
    await server.trigger("private-chat", "secret", "psst")
    await client.assert_nothing_pending()
    # A later, correctly signed subscribe on the same socket works.
    await server.subscribe_ok(client, "private-chat")
    await server.trigger("private-chat", "secret", "psst")
    assert (await client.expect("secret", "private-chat"))["data"] == "psst"


async def test_missing_auth_on_private_channel_is_rejected(server):
    client = await server.connect()
    await client.subscribe("private-chat")
    _assert_rejected(await client.until_pong(), "private-chat", status=401)


async def test_auth_with_another_apps_key_is_rejected(server):
    client = await server.connect()
    signature = server.auth(client, "private-chat")["auth"].partition(":")[2]
    await client.subscribe("private-chat", auth=f"other-key:{signature}")
    _assert_rejected(await client.until_pong(), "private-chat", status=401)


async def test_auth_made_for_another_socket_is_rejected(server):
    owner = await server.connect()
    thief = await server.connect()
    signed = server.auth(owner, "private-chat")
    # Reference 7 / 9.5: auth is bound to the current socket_id.
    await thief.subscribe("private-chat", signed["auth"])
    _assert_rejected(await thief.until_pong(), "private-chat", status=401)
    await owner.subscribe("private-chat", signed["auth"])
    await owner.expect_succeeded("private-chat")


async def test_presence_auth_with_altered_channel_data_is_rejected(server):
    client = await server.connect()
    signed = server.auth(client, "presence-room", {"user_id": "1"})
    forged = signed["channel_data"].replace('"1"', '"2"')
    assert forged != signed["channel_data"]
    await client.subscribe("presence-room", signed["auth"], forged)
    _assert_rejected(await client.until_pong(), "presence-room", status=401)


async def test_subscribing_twice_keeps_a_single_subscription(server):
    client = await server.connect()
    await server.subscribe_ok(client, "my-channel")
    await server.subscribe(client, "my-channel")
    reply = await client.recv()
    # Reference 2.3: Pusher answers pusher:error (code null), soketi re-sends success.
    if reply["event"] == "pusher:error":
        assert error_code(reply) is None
    else:
        assert reply["event"] == "pusher_internal:subscription_succeeded", reply
        assert reply["channel"] == "my-channel"
    await client.assert_nothing_pending()
    # Still subscribed, and only once: one event arrives, not two.
    await server.trigger("my-channel", "once", "x")
    await client.expect("once", "my-channel")
    await client.assert_nothing_pending()


async def test_unsubscribe_has_no_reply_and_stops_events(server):
    leaver = await server.connect()
    stayer = await server.connect()
    await server.subscribe_ok(leaver, "my-channel")
    await server.subscribe_ok(stayer, "my-channel")
    await leaver.unsubscribe("my-channel")
    await leaver.assert_nothing_pending()  # no reply to pusher:unsubscribe (reference 2.3)
    await server.trigger("my-channel", "after", "x")
    await stayer.expect("after", "my-channel")
    await leaver.assert_nothing_pending()
    info = await server.call(server.sdk().channel_info, "my-channel", ["subscription_count"])
    assert info == {"occupied": True, "subscription_count": 1}
    await stayer.unsubscribe("my-channel")
    await stayer.assert_nothing_pending()
    info = await server.call(server.sdk().channel_info, "my-channel")
    assert info["occupied"] is False


async def test_unsubscribe_from_a_channel_never_joined_is_ignored(server):
    client = await server.connect()
    await client.unsubscribe("never-joined")
    await client.assert_nothing_pending()


async def test_disconnect_leaves_channels(server):
    client = await server.connect()
    await server.subscribe_ok(client, "my-channel")
    await client.close()
    info = await server.call(server.sdk().channel_info, "my-channel")
    assert info["occupied"] is False


@pytest.mark.parametrize(
    "channel",
    [
        pytest.param("bad channel", id="space"),
        pytest.param("bad/channel", id="slash"),
        pytest.param("héllo", id="non-ascii"),
        pytest.param("#internal", id="hash-prefix"),
        pytest.param("a" * 201, id="201-chars"),
    ],
)
async def test_invalid_channel_name_is_rejected(server, channel):
    client = await server.connect()
    await client.subscribe(channel)
    frames = await client.until_pong()
    assert frames, "an invalid channel name must be answered with an error"
    assert not any(f["event"] == "pusher_internal:subscription_succeeded" for f in frames), frames
    assert {f["event"] for f in frames} <= {"pusher:error", "pusher:subscription_error"}, frames
    # And the socket still works.
    await server.subscribe_ok(client, "good-channel")


async def test_channel_name_of_200_characters_and_every_allowed_character_is_accepted(server):
    client = await server.connect()
    await server.subscribe_ok(client, "a" * 200)
    odd = "-_=@,.;AZaz09"
    await server.subscribe_ok(client, odd)
    await server.trigger(odd, "odd", "x")
    await client.expect("odd", odd)
