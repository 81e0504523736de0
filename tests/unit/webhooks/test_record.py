"""A queue entry's bytes and back (record.py): every event type, and what is refused."""

from __future__ import annotations

import json

import pytest

from clarion.protocol.webhooks import (
    CACHE_MISS,
    CHANNEL_OCCUPIED,
    CHANNEL_VACATED,
    CLIENT_EVENT,
    MEMBER_ADDED,
    MEMBER_REMOVED,
    SUBSCRIPTION_COUNT,
    WEBHOOK_EVENT_TYPES,
    WebhookEvent,
)
from clarion.types import AppId
from clarion.webhooks.record import QueuedEvent, decode, encode

# One of each type, with the fields reference 6 gives it.
EVENTS = [
    WebhookEvent(CHANNEL_OCCUPIED, "my-channel"),
    WebhookEvent(CHANNEL_VACATED, "my-channel"),
    WebhookEvent(MEMBER_ADDED, "presence-r", user_id="u1"),
    WebhookEvent(MEMBER_REMOVED, "presence-r", user_id="u1"),
    WebhookEvent(
        CLIENT_EVENT,
        "presence-r",
        event="client-typing",
        data='{"ünï":"cødé ✓"}',
        socket_id="123.456",
        user_id="u1",
    ),
    WebhookEvent(CLIENT_EVENT, "private-c", event="client-x", data="{}", socket_id="1.2"),
    WebhookEvent(CACHE_MISS, "cache-c"),
    WebhookEvent(SUBSCRIPTION_COUNT, "c", subscription_count=0),
    WebhookEvent(SUBSCRIPTION_COUNT, "c", subscription_count=12345),
]


def test_every_event_type_is_covered() -> None:
    assert {e.name for e in EVENTS} == WEBHOOK_EVENT_TYPES


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.name)
def test_round_trip(event: WebhookEvent) -> None:
    queued = QueuedEvent("node-1/abc/7", AppId("424242"), 1_700_000_000_123, event)
    raw = encode(queued)
    assert decode(raw) == queued
    # The stored event is the body's entry: one wire shape.
    assert json.loads(raw)["event"] == event.to_json()


def test_entries_are_compact_and_keep_unicode() -> None:
    raw = encode(QueuedEvent("n/1", AppId("1"), 5, WebhookEvent(CLIENT_EVENT, "c", data="✓")))
    expected = '{"id":"n/1","app":"1","at":5,"event":{"name":"client_event","channel":"c",'
    assert raw == (expected + '"data":"✓"}}').encode()


GOOD = {"id": "n/1", "app": "1", "at": 5, "event": {"name": "channel_occupied", "channel": "c"}}


def spoil(**changes: object) -> bytes:
    doc: dict[str, object] = {**GOOD, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def event(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {"name": "channel_occupied", "channel": "c"}
    return {k: v for k, v in {**base, **changes}.items() if v is not ...}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"{", "not JSON"),
        (b"[1]", "not a JSON object"),
        (spoil(id=...), "'id'"),
        (spoil(app=42), "'app'"),
        (spoil(at="5"), "'at'"),
        (spoil(at=True), "'at'"),
        (spoil(event="channel_occupied"), "'event'"),
        (spoil(event=event(name="channel_exploded")), "unknown webhook event"),
        (spoil(event=event(channel=...)), "'channel'"),
        (spoil(event=event(user_id=7)), "'user_id'"),
        (spoil(event=event(subscription_count="3")), "'subscription_count'"),
        (spoil(event=event(subscription_count=False)), "'subscription_count'"),
    ],
)
def test_anything_else_is_a_value_error(raw: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        decode(raw)


def test_null_optional_fields_read_as_absent() -> None:
    queued = decode(spoil(event=event(user_id=None, data=None)))
    assert queued.event == WebhookEvent(CHANNEL_OCCUPIED, "c")
