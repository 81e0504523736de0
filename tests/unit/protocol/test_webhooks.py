"""Webhook events, bodies and headers as pure data (reference 6, vector 9.4)."""

from __future__ import annotations

import hashlib
import hmac
import json
from unittest import mock

import pusher
import pytest

from clarion.protocol import webhooks
from clarion.protocol.webhooks import WEBHOOK_EVENT_TYPES, WebhookEvent

VECTOR_BODY = (
    b'{"time_ms":1700000000000,"events":[{"name":"channel_occupied","channel":"my-channel"}]}'
)
VECTOR_SIGNATURE = "fec9fff324b82111ea03affc886e951bec5ee7a9e365bfd05cf254414c990a1a"


def test_9_4_vector() -> None:
    raw = webhooks.body(1700000000000, [WebhookEvent("channel_occupied", "my-channel")])
    assert raw == VECTOR_BODY
    assert webhooks.headers("app-key", "app-secret", raw) == {
        "Content-Type": "application/json",
        "X-Pusher-Key": "app-key",
        "X-Pusher-Signature": VECTOR_SIGNATURE,
    }


def test_the_signature_covers_the_exact_bytes() -> None:
    raw = webhooks.body(1, [WebhookEvent("channel_vacated", "c")])
    signature = webhooks.headers("k", "s", raw)["X-Pusher-Signature"]
    assert signature == hmac.new(b"s", raw, hashlib.sha256).hexdigest()
    assert webhooks.headers("k", "s", raw + b" ")["X-Pusher-Signature"] != signature


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param(
            WebhookEvent(webhooks.CHANNEL_OCCUPIED, "c"),
            {"name": "channel_occupied", "channel": "c"},
            id="occupied",
        ),
        pytest.param(
            WebhookEvent(webhooks.CHANNEL_VACATED, "c"),
            {"name": "channel_vacated", "channel": "c"},
            id="vacated",
        ),
        pytest.param(
            WebhookEvent(webhooks.MEMBER_ADDED, "presence-c", user_id="42"),
            {"name": "member_added", "channel": "presence-c", "user_id": "42"},
            id="member-added",
        ),
        pytest.param(
            WebhookEvent(webhooks.MEMBER_REMOVED, "presence-c", user_id="42"),
            {"name": "member_removed", "channel": "presence-c", "user_id": "42"},
            id="member-removed",
        ),
        pytest.param(
            WebhookEvent(
                webhooks.CLIENT_EVENT,
                "private-c",
                event="client-typing",
                data='{"a":1}',
                socket_id="1.2",
            ),
            {
                "name": "client_event",
                "channel": "private-c",
                "event": "client-typing",
                "data": '{"a":1}',
                "socket_id": "1.2",
            },
            id="client-event-private",
        ),
        pytest.param(
            WebhookEvent(
                webhooks.CLIENT_EVENT,
                "presence-c",
                user_id="42",
                event="client-typing",
                data="{}",
                socket_id="1.2",
            ),
            {
                "name": "client_event",
                "channel": "presence-c",
                "event": "client-typing",
                "data": "{}",
                "socket_id": "1.2",
                "user_id": "42",
            },
            id="client-event-presence",
        ),
        pytest.param(
            WebhookEvent(webhooks.CACHE_MISS, "cache-c"),
            {"name": "cache_miss", "channel": "cache-c"},
            id="cache-miss",
        ),
        pytest.param(
            WebhookEvent(webhooks.SUBSCRIPTION_COUNT, "c", subscription_count=0),
            {"name": "subscription_count", "channel": "c", "subscription_count": 0},
            id="subscription-count-zero",
        ),
    ],
)
def test_event_json_has_the_reference_fields_only(
    event: WebhookEvent, expected: dict[str, object]
) -> None:
    assert event.to_json() == expected
    # The reference table's order: name and channel first.
    assert list(event.to_json())[:2] == ["name", "channel"]


def test_client_event_data_stays_a_string() -> None:
    event = WebhookEvent(webhooks.CLIENT_EVENT, "private-c", event="client-x", data='{"a":1}')
    raw = webhooks.body(5, [event])
    assert json.loads(raw)["events"][0]["data"] == '{"a":1}'


def test_body_batches_several_events_in_order() -> None:
    events = [
        WebhookEvent(webhooks.CHANNEL_OCCUPIED, "c"),
        WebhookEvent(webhooks.MEMBER_ADDED, "presence-c", user_id="1"),
    ]
    parsed = json.loads(webhooks.body(123, events))
    assert parsed == {
        "time_ms": 123,
        "events": [
            {"name": "channel_occupied", "channel": "c"},
            {"name": "member_added", "channel": "presence-c", "user_id": "1"},
        ],
    }


def test_body_is_compact_ascii() -> None:
    raw = webhooks.body(1, [WebhookEvent(webhooks.CHANNEL_OCCUPIED, "é")])
    assert b" " not in raw
    assert raw.decode("ascii")


def test_every_name_is_a_known_type() -> None:
    assert {
        webhooks.CHANNEL_OCCUPIED,
        webhooks.CHANNEL_VACATED,
        webhooks.MEMBER_ADDED,
        webhooks.MEMBER_REMOVED,
        webhooks.CLIENT_EVENT,
        webhooks.CACHE_MISS,
        webhooks.SUBSCRIPTION_COUNT,
    } == WEBHOOK_EVENT_TYPES
    assert len(WEBHOOK_EVENT_TYPES) == 7


def test_the_python_sdk_validates_our_body() -> None:
    time_ms = 1700000000000
    events = [
        WebhookEvent(webhooks.MEMBER_ADDED, "presence-c", user_id="42"),
        WebhookEvent(webhooks.SUBSCRIPTION_COUNT, "c", subscription_count=3),
    ]
    raw = webhooks.body(time_ms, events)
    headers = webhooks.headers("app-key", "app-secret", raw)
    client = pusher.Pusher("12345", "app-key", "app-secret")
    with mock.patch("time.time", return_value=time_ms / 1000 + 10):
        validated = client.validate_webhook(
            headers["X-Pusher-Key"], headers["X-Pusher-Signature"], raw.decode()
        )
    assert validated == json.loads(raw)
    with mock.patch("time.time", return_value=time_ms / 1000):
        assert client.validate_webhook("app-key", "0" * 64, raw.decode()) is None
