"""Reference 5: the HTTP API through the official python SDK (and, where the SDK cannot send
what we need, requests signed here by the reference's algorithm, section 5.2)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from it_support import (
    DISABLED,
    MAIN,
    api_signature,
    data_of,
    http_request,
    presence_data,
    sdk_request,
    signed_http,
    signed_params,
)
from pusher.errors import PusherBadAuth, PusherBadRequest, PusherBadStatus, PusherForbidden

EVENTS = f"/apps/{MAIN.id}/events"


def _json(body: bytes):
    return json.loads(body)


# ---- triggering -------------------------------------------------------------------------


async def test_trigger_single_channel(server):
    client = await server.connect()
    await server.subscribe_ok(client, "my-channel")
    assert await server.trigger("my-channel", "my-event", {"message": "hello"}) == {}
    msg = await client.recv()
    assert msg == {"event": "my-event", "channel": "my-channel", "data": '{"message": "hello"}'}


async def test_trigger_relays_data_string_unchanged(server):
    client = await server.connect()
    await server.subscribe_ok(client, "my-channel")
    data = '{"b": 1,   "a": "ünïcødé ✓", "nested": {"x": [1, 2]}}'
    await server.trigger("my-channel", "raw", data)
    assert (await client.expect("raw", "my-channel"))["data"] == data


async def test_trigger_multiple_channels(server):
    only_a = await server.connect()
    only_b = await server.connect()
    both = await server.connect()
    await server.subscribe_ok(only_a, "chan-a")
    await server.subscribe_ok(only_b, "presence-b", presence_data("7"))
    await server.subscribe_ok(both, "chan-a")
    await server.subscribe_ok(both, "presence-b", presence_data("8"))
    await only_b.expect("pusher_internal:member_added", "presence-b")

    assert await server.trigger(["chan-a", "presence-b"], "news", "hi") == {}
    assert (await only_a.expect("news", "chan-a"))["data"] == "hi"
    msg = await only_b.expect("news", "presence-b")
    assert msg["data"] == "hi"
    assert "user_id" not in msg
    got = {(await both.expect("news"))["channel"] for _ in range(2)}
    assert got == {"chan-a", "presence-b"}
    for client in (only_a, only_b, both):
        await client.assert_nothing_pending()


async def test_trigger_excludes_the_given_socket_id(server):
    author = await server.connect()
    reader = await server.connect()
    await server.subscribe_ok(author, "my-channel")
    await server.subscribe_ok(reader, "my-channel")
    await server.trigger("my-channel", "posted", "x", socket_id=author.socket_id)
    await reader.expect("posted", "my-channel")
    await author.assert_nothing_pending()


async def test_trigger_with_info_returns_counts(server):
    watchers = [await server.connect() for _ in range(3)]
    # Two sockets for user 1, one for user 2: 2 users, 3 subscriptions.
    for client, user in zip(watchers, ("1", "1", "2"), strict=True):
        await server.subscribe_ok(client, "presence-room", presence_data(user))
    reader = await server.connect()
    await server.subscribe_ok(reader, "news")

    response = await server.call(
        sdk_request,
        server.sdk(),
        "POST",
        EVENTS,
        {
            "name": "count-me",
            "channels": ["presence-room", "news", "empty-channel"],
            "data": "x",
            "info": "user_count,subscription_count",
        },
    )
    assert response == {
        "channels": {
            "presence-room": {"user_count": 2, "subscription_count": 3},
            "news": {"subscription_count": 1},
            "empty-channel": {"subscription_count": 0},
        }
    }
    await reader.expect("count-me", "news")


async def test_trigger_batch(server):
    a = await server.connect()
    b = await server.connect()
    await server.subscribe_ok(a, "chan-a")
    await server.subscribe_ok(b, "chan-a")
    await server.subscribe_ok(b, "chan-b")
    response = await server.call(
        server.sdk().trigger_batch,
        [
            {"channel": "chan-a", "name": "ev1", "data": {"n": 1}},
            {"channel": "chan-b", "name": "ev2", "data": "plain text"},
            {"channel": "chan-a", "name": "ev3", "data": "not for b", "socket_id": b.socket_id},
        ],
    )
    assert response == {}
    assert data_of(await a.expect("ev1", "chan-a")) == {"n": 1}
    assert (await a.expect("ev3", "chan-a"))["data"] == "not for b"
    await a.assert_nothing_pending()
    assert data_of(await b.expect("ev1", "chan-a")) == {"n": 1}
    assert (await b.expect("ev2", "chan-b"))["data"] == "plain text"
    await b.assert_nothing_pending()  # ev3 excluded b


async def test_trigger_batch_with_info(server):
    clients = [await server.connect() for _ in range(2)]
    for client, user in zip(clients, ("1", "2"), strict=True):
        await server.subscribe_ok(client, "presence-room", presence_data(user))
    await server.subscribe_ok(clients[1], "news")
    response = await server.call(
        server.sdk().trigger_batch,
        [
            {"channel": "news", "name": "e1", "data": "x", "info": "subscription_count"},
            {"channel": "presence-room", "name": "e2", "data": "y"},
            {
                "channel": "presence-room",
                "name": "e3",
                "data": "z",
                "info": "user_count,subscription_count",
            },
        ],
    )
    assert response == {
        "batch": [
            {"subscription_count": 1},
            {},
            {"user_count": 2, "subscription_count": 2},
        ]
    }


async def test_php_style_body_with_channel_instead_of_channels(server):
    client = await server.connect()
    await server.subscribe_ok(client, "my-channel")
    # Reference 9.3: pusher-http-php's json_encode, compact, with a single `channel`.
    body = b'{"name":"my-event","data":"{\\"message\\":\\"hello\\"}","channel":"my-channel"}'
    status, response = await signed_http(server.port, "POST", EVENTS, body)
    assert status == 200, response
    assert _json(response) == {}
    msg = await client.recv()
    assert msg == {"event": "my-event", "channel": "my-channel", "data": '{"message":"hello"}'}


async def test_trigger_to_one_encrypted_channel_is_accepted(server):
    client = await server.connect()
    await server.subscribe_ok(client, "private-encrypted-vault")
    assert await server.trigger("private-encrypted-vault", "sealed", {"m": 1}) == {}
    sealed = json.loads((await client.expect("sealed", "private-encrypted-vault"))["data"])
    assert set(sealed) == {"nonce", "ciphertext"}


# ---- querying ---------------------------------------------------------------------------


async def test_channels_info_lists_occupied_channels_with_prefix_filter(server):
    clients = [await server.connect() for _ in range(3)]
    await server.subscribe_ok(clients[0], "news")
    await server.subscribe_ok(clients[0], "presence-a", presence_data("1"))
    await server.subscribe_ok(clients[1], "presence-a", presence_data("2"))
    await server.subscribe_ok(clients[2], "presence-a", presence_data("2"))
    await server.subscribe_ok(clients[2], "presence-b", presence_data("3"))
    await server.subscribe_ok(clients[2], "private-x")
    await server.subscribe_ok(clients[2], "left-already")
    await clients[2].unsubscribe("left-already")
    await clients[2].assert_nothing_pending()
    api = server.sdk()

    everything = await server.call(api.channels_info)
    assert everything == {
        "channels": {"news": {}, "presence-a": {}, "presence-b": {}, "private-x": {}}
    }
    presence = await server.call(api.channels_info, "presence-", ["user_count"])
    assert presence == {
        "channels": {"presence-a": {"user_count": 2}, "presence-b": {"user_count": 1}}
    }
    private = await server.call(api.channels_info, "private-")
    assert private == {"channels": {"private-x": {}}}
    nothing = await server.call(api.channels_info, "nope-")
    assert nothing == {"channels": {}}


async def test_channel_names_with_punctuation_work_in_api_paths(server):
    # Reference 5.2 step 2: names may contain `@,;=`, which some clients percent-encode.
    channel = "odd@name,with;equals=sign"
    client = await server.connect()
    await server.subscribe_ok(client, channel)
    info = await server.call(server.sdk().channel_info, channel, ["subscription_count"])
    assert info == {"occupied": True, "subscription_count": 1}
    encoded = "/apps/{}/channels/{}".format(MAIN.id, "odd%40name%2Cwith%3Bequals%3Dsign")
    status, body = await signed_http(server.port, "GET", encoded)
    assert status == 200, body
    assert _json(body) == {"occupied": True}


async def test_channels_info_user_count_needs_presence_prefix(server):
    with pytest.raises(PusherBadRequest):
        await server.call(server.sdk().channels_info, None, ["user_count"])


async def test_channel_info(server):
    api = server.sdk()
    assert await server.call(api.channel_info, "news") == {"occupied": False}
    clients = [await server.connect() for _ in range(2)]
    for client in clients:
        await server.subscribe_ok(client, "news")
    info = await server.call(api.channel_info, "news", ["subscription_count"])
    assert info == {"occupied": True, "subscription_count": 2}
    assert await server.call(api.channel_info, "news") == {"occupied": True}


async def test_channel_info_on_presence_channel(server):
    clients = [await server.connect() for _ in range(3)]
    for client, user in zip(clients, ("1", "2", "2"), strict=True):
        await server.subscribe_ok(client, "presence-room", presence_data(user))
    info = await server.call(server.sdk().channel_info, "presence-room", ["user_count"])
    assert info == {"occupied": True, "user_count": 2}


async def test_channel_info_user_count_on_non_presence_channel_is_400(server):
    client = await server.connect()
    await server.subscribe_ok(client, "news")
    with pytest.raises(PusherBadRequest):
        await server.call(server.sdk().channel_info, "news", ["user_count"])


async def test_users_info(server):
    clients = [await server.connect() for _ in range(3)]
    for client, user in zip(clients, ("1", "2", "2"), strict=True):
        await server.subscribe_ok(client, "presence-room", presence_data(user))
    users = await server.call(server.sdk().users_info, "presence-room")
    assert set(users) == {"users"}
    assert sorted(users["users"], key=lambda u: u["id"]) == [{"id": "1"}, {"id": "2"}]
    empty = await server.call(server.sdk().users_info, "presence-empty")
    assert empty == {"users": []}


async def test_users_info_on_non_presence_channel_is_400(server):
    with pytest.raises(PusherBadRequest):
        await server.call(server.sdk().users_info, "news")


async def test_percent_encoded_query_values_verify(server):
    # Reference 5.2 step 1 / 9.3: PHP's Guzzle percent-encodes query values; the signature is
    # over the decoded values.
    client = await server.connect()
    await server.subscribe_ok(client, "presence-room", presence_data("1"))
    path = f"/apps/{MAIN.id}/channels"
    params = signed_params(
        MAIN, "GET", path, extra={"filter_by_prefix": "presence-", "info": "user_count"}
    )
    query = "&".join(f"{k}={v}" for k, v in params.items())
    query = query.replace("presence-", "presence%2D").replace("user_count", "user%5Fcount")
    status, body = await asyncio.to_thread(http_request, server.port, "GET", path, raw_query=query)
    assert status == 200, body
    assert _json(body) == {"channels": {"presence-room": {"user_count": 1}}}


async def test_get_without_body_md5_verifies(server):
    # Node, PHP and Go sign GET requests without body_md5 (reference 5.2, 9.3).
    status, body = await signed_http(server.port, "GET", f"/apps/{MAIN.id}/channels")
    assert status == 200, body
    assert _json(body) == {"channels": {}}


# ---- errors: real HTTP statuses --------------------------------------------------------


async def test_bad_signature_is_401(server):
    with pytest.raises(PusherBadAuth):
        await server.call(server.sdk(secret="not-the-secret").trigger, "news", "e", "x")


@pytest.mark.parametrize(
    "age",
    [
        pytest.param(600, id="600s-old"),
        pytest.param(3600, id="1h-old"),
        pytest.param(-660, id="future"),
    ],
)
async def test_stale_timestamp_is_401(server, age):
    body = b'{"name":"e","channels":["news"],"data":"x"}'
    stamp = int(time.time()) - age
    status, response = await signed_http(server.port, "POST", EVENTS, body, timestamp=stamp)
    assert status == 401, response


async def test_timestamp_inside_the_window_is_accepted(server):
    body = b'{"name":"e","channels":["news"],"data":"x"}'
    stamp = int(time.time()) - 590
    status, response = await signed_http(server.port, "POST", EVENTS, body, timestamp=stamp)
    assert status == 200, response


@pytest.mark.parametrize(
    "damage",
    [
        "drop-auth_signature",
        "drop-auth_key",
        "drop-auth_timestamp",
        "drop-body_md5",
        "auth_version-1.1",
        "unknown-auth_key",
        "body-altered",
    ],
)
async def test_request_signature_problems_are_401(server, damage):
    body = b'{"name":"e","channels":["news"],"data":"x"}'
    params = signed_params(MAIN, "POST", EVENTS, body)
    if damage.startswith("drop-"):
        del params[damage.removeprefix("drop-")]
    elif damage == "auth_version-1.1":
        params["auth_version"] = "1.1"
        params["auth_signature"] = api_signature(MAIN.secret, "POST", EVENTS, params)
    elif damage == "unknown-auth_key":
        params["auth_key"] = "who-is-this"
        params["auth_signature"] = api_signature(MAIN.secret, "POST", EVENTS, params)
    elif damage == "body-altered":
        body = body.replace(b'"x"', b'"y"')
    status, response = await asyncio.to_thread(
        http_request, server.port, "POST", EVENTS, params=params, body=body
    )
    assert status == 401, response


async def test_unknown_app_is_404(server):
    with pytest.raises(PusherBadStatus, match=r"^404"):
        await server.call(server.sdk(app_id="999999").trigger, "news", "e", "x")


async def test_disabled_app_is_403(server):
    with pytest.raises(PusherForbidden):
        await server.call(server.sdk(DISABLED).trigger, "news", "e", "x")


async def test_data_over_10_kb_is_413(server):
    client = await server.connect()
    await server.subscribe_ok(client, "news")
    with pytest.raises(PusherBadStatus, match=r"^413"):
        await server.call(server.sdk().trigger, "news", "big", "x" * (10 * 1024 + 1))
    await client.assert_nothing_pending()
    # Exactly 10 KB is fine.
    await server.trigger("news", "big", "x" * (10 * 1024))
    assert len((await client.expect("big", "news"))["data"]) == 10 * 1024


async def test_batch_item_data_over_10_kb_is_413(server):
    body = json.dumps(
        {"batch": [{"channel": "news", "name": "big", "data": "x" * (10 * 1024 + 1)}]}
    ).encode()
    status, response = await signed_http(server.port, "POST", f"/apps/{MAIN.id}/batch_events", body)
    assert status == 413, response


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"name": "e", "channels": ["news"], "data": ', id="truncated"),
        pytest.param(b"not json at all", id="garbage"),
        pytest.param(b'["name", "e"]', id="array"),
        pytest.param(b"\xff\xfe\x00", id="binary"),
    ],
)
async def test_malformed_json_body_is_400(server, body):
    status, response = await signed_http(server.port, "POST", EVENTS, body)
    assert status == 400, response


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"name": "e", "data": "x"}, id="no-channels"),
        pytest.param({"name": "e", "channels": [], "data": "x"}, id="empty-channels"),
        pytest.param({"channels": ["news"], "data": "x"}, id="no-name"),
        pytest.param({"name": "e", "channels": ["bad channel"], "data": "x"}, id="bad-channel"),
        pytest.param({"name": "e", "channels": ["a" * 201], "data": "x"}, id="long-channel"),
        pytest.param({"name": "pusher:e", "channels": ["news"], "data": "x"}, id="reserved-name"),
        pytest.param(
            {"name": "e", "channels": ["news"], "data": "x", "socket_id": "abc"}, id="bad-socket"
        ),
    ],
)
async def test_invalid_trigger_is_400(server, payload):
    status, response = await signed_http(server.port, "POST", EVENTS, json.dumps(payload).encode())
    assert status == 400, response


async def test_missing_signature_param_is_401(server):
    params = signed_params(MAIN, "GET", f"/apps/{MAIN.id}/channels")
    del params["auth_signature"]
    status, response = await asyncio.to_thread(
        http_request, server.port, "GET", f"/apps/{MAIN.id}/channels", params=params
    )
    assert status == 401, response


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/apps/{MAIN.id}/nothing-here"),
        ("POST", f"/apps/{MAIN.id}/events/extra"),
        ("GET", "/nothing-here"),
    ],
)
async def test_unknown_route_is_404(server, method, path):
    status, response = await signed_http(server.port, method, path)
    assert status == 404, response


async def test_more_than_one_channel_with_an_encrypted_one_is_400(server):
    body = json.dumps(
        {"name": "e", "channels": ["private-encrypted-vault", "news"], "data": "x"}
    ).encode()
    status, response = await signed_http(server.port, "POST", EVENTS, body)
    assert status == 400, response


async def test_more_than_100_channels_is_400(server):
    client = await server.connect()
    await server.subscribe_ok(client, "ch-0")
    too_many = [f"ch-{i}" for i in range(101)]
    body = json.dumps({"name": "e", "channels": too_many, "data": "x"}).encode()
    status, response = await signed_http(server.port, "POST", EVENTS, body)
    assert status == 400, response
    await client.assert_nothing_pending()
    # 100 is the limit, not over it.
    assert await server.trigger(too_many[:100], "e", "x") == {}
    await client.expect("e", "ch-0")


async def test_batch_over_10_events_is_400(server):
    client = await server.connect()
    await server.subscribe_ok(client, "news")
    batch = [{"channel": "news", "name": f"e{i}", "data": "x"} for i in range(11)]
    with pytest.raises(PusherBadRequest):
        await server.call(server.sdk().trigger_batch, batch)
    await client.assert_nothing_pending()
    assert await server.call(server.sdk().trigger_batch, batch[:10]) == {}
    for i in range(10):
        await client.expect(f"e{i}", "news")


async def test_errors_have_a_json_or_text_body(server):
    # Reference 5.1: SDKs surface the body verbatim; it must say something.
    status, response = await signed_http(server.port, "POST", EVENTS, b"{oops")
    assert status == 400
    assert response.strip()
