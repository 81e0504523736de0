"""What goes on the wire (reference 6, vector 9.4), checked against the pusher SDK."""

from __future__ import annotations

import importlib
import json
import types
from typing import Any

import pytest

from clarion.protocol import webhooks
from clarion.protocol.webhooks import WebhookEvent

KEY = "app-key"
SECRET = "app-secret"
TIME_MS = 1700000000000
VECTOR_BODY = (
    b'{"time_ms":1700000000000,"events":[{"name":"channel_occupied","channel":"my-channel"}]}'
)
VECTOR_SIGNATURE = "fec9fff324b82111ea03affc886e951bec5ee7a9e365bfd05cf254414c990a1a"


def sdk_at(monkeypatch: pytest.MonkeyPatch, now_s: float) -> Any:
    pusher_auth = importlib.import_module("pusher.authentication_client")
    monkeypatch.setattr(pusher_auth, "time", types.SimpleNamespace(time=lambda: now_s))
    return importlib.import_module("pusher").Pusher("12345", KEY, SECRET)


def test_9_4_body_and_headers() -> None:
    raw = webhooks.body(TIME_MS, [WebhookEvent(webhooks.CHANNEL_OCCUPIED, "my-channel")])
    assert raw == VECTOR_BODY
    assert webhooks.headers(KEY, SECRET, raw) == {
        "Content-Type": "application/json",
        "X-Pusher-Key": KEY,
        "X-Pusher-Signature": VECTOR_SIGNATURE,
    }


@pytest.mark.parametrize("skew_s", [-299.0, 0.0, 299.0])
def test_sdk_accepts_a_batch_within_300_s(monkeypatch: pytest.MonkeyPatch, skew_s: float) -> None:
    events = [
        WebhookEvent(webhooks.CHANNEL_OCCUPIED, "presence-r"),
        WebhookEvent(webhooks.MEMBER_ADDED, "presence-r", user_id="42"),
        WebhookEvent(
            webhooks.CLIENT_EVENT,
            "presence-r",
            event="client-typing",
            data='{"é":"ü"}',
            socket_id="1.2",
            user_id="42",
        ),
        WebhookEvent(webhooks.SUBSCRIPTION_COUNT, "presence-r", subscription_count=3),
    ]
    raw = webhooks.body(TIME_MS, events)
    signed = webhooks.headers(KEY, SECRET, raw)
    client = sdk_at(monkeypatch, TIME_MS / 1000 + skew_s)
    parsed = client.validate_webhook(
        signed["X-Pusher-Key"], signed["X-Pusher-Signature"], raw.decode()
    )
    assert parsed == json.loads(raw)
    assert parsed["events"][2] == {
        "name": "client_event",
        "channel": "presence-r",
        "event": "client-typing",
        "data": '{"é":"ü"}',
        "socket_id": "1.2",
        "user_id": "42",
    }
    assert parsed["events"][3]["subscription_count"] == 3


def test_sdk_rejects_a_stale_body(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = webhooks.body(TIME_MS, [WebhookEvent(webhooks.CHANNEL_VACATED, "c")])
    signed = webhooks.headers(KEY, SECRET, raw)
    client = sdk_at(monkeypatch, TIME_MS / 1000 + 301.0)
    assert client.validate_webhook(KEY, signed["X-Pusher-Signature"], raw.decode()) is None
