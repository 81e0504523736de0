"""Webhook events and request bodies (reference 6), as pure data and functions.

A body is `{"time_ms": <unix ms>, "events": [...]}`, signed with HMAC-SHA256 of the exact bytes
sent (`X-Pusher-Signature`), with `X-Pusher-Key` and `Content-Type: application/json` spelled
exactly so (pusher-http-node compares the whole content type, pusher-http-php indexes the
header names literally).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clarion.protocol.auth import webhook_signature

CHANNEL_OCCUPIED = "channel_occupied"
CHANNEL_VACATED = "channel_vacated"
MEMBER_ADDED = "member_added"
MEMBER_REMOVED = "member_removed"
CLIENT_EVENT = "client_event"
CACHE_MISS = "cache_miss"
SUBSCRIPTION_COUNT = "subscription_count"
WEBHOOK_EVENT_TYPES = frozenset(
    {
        CHANNEL_OCCUPIED,
        CHANNEL_VACATED,
        MEMBER_ADDED,
        MEMBER_REMOVED,
        CLIENT_EVENT,
        CACHE_MISS,
        SUBSCRIPTION_COUNT,
    }
)

_compact = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One entry of a webhook body's `events`; fields that do not apply stay None."""

    name: str
    channel: str
    user_id: str | None = None
    event: str | None = None
    data: str | None = None
    socket_id: str | None = None
    subscription_count: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "channel": self.channel}
        for key in ("event", "data", "socket_id", "user_id", "subscription_count"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def body(time_ms: int, events: Sequence[WebhookEvent]) -> bytes:
    return _compact({"time_ms": time_ms, "events": [e.to_json() for e in events]}).encode()


def headers(app_key: str, secret: str, raw_body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Pusher-Key": app_key,
        "X-Pusher-Signature": webhook_signature(secret, raw_body),
    }
