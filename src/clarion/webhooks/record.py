"""A webhook event as it waits in Redis: the bytes of one queue entry, and back.

One entry is compact JSON, `{"id": ..., "app": ..., "at": ..., "event": {...}}`:

* `id`: `<node>/<incarnation>/<n>`, unique per entry, so removing an entry once it is settled
  (LREM on the in-flight list) removes that entry and no look-alike;
* `app`: the app id only. The webhook leader looks the app up when it delivers, so its current
  endpoints and secret apply (the secret signs the body, reference 6);
* `at`: unix ms when it was emitted, for logs and lag (the body's `time_ms` is stamped on each
  try instead: receivers reject one more than 300 s off, reference 6);
* `event`: the event's body entry (`WebhookEvent.to_json`): the wire shape is the storage shape.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from clarion.protocol.webhooks import WEBHOOK_EVENT_TYPES, WebhookEvent
from clarion.types import AppId

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_OPTIONAL_STR = ("user_id", "event", "data", "socket_id")


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    id: str
    app_id: AppId
    emitted_ms: int
    event: WebhookEvent


def encode(queued: QueuedEvent) -> bytes:
    return _compact(
        {
            "id": queued.id,
            "app": queued.app_id,
            "at": queued.emitted_ms,
            "event": queued.event.to_json(),
        }
    ).encode()


def decode(raw: bytes) -> QueuedEvent:
    """The entry `raw` holds; ValueError if it is not one (written by another version, or not
    by Clarion at all), so the caller can drop it rather than stall the queue on it."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    entry_id = _field(doc, "id", str)
    app_id = _field(doc, "app", str)
    emitted_ms = _field(doc, "at", int)
    event = _event(_field(doc, "event", dict))
    return QueuedEvent(entry_id, AppId(app_id), emitted_ms, event)


def _event(doc: dict[str, Any]) -> WebhookEvent:
    name = _field(doc, "name", str)
    if name not in WEBHOOK_EVENT_TYPES:
        raise ValueError(f"unknown webhook event {name!r}")
    optional: dict[str, Any] = {k: _optional(doc, k, str) for k in _OPTIONAL_STR}
    count = _optional(doc, "subscription_count", int)
    return WebhookEvent(
        name=name, channel=_field(doc, "channel", str), subscription_count=count, **optional
    )


def _field(doc: dict[str, Any], name: str, kind: type[Any]) -> Any:
    value = doc.get(name)
    # bool is an int to isinstance, never a count or a time here.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{name!r} missing or not {kind.__name__}: {value!r}")
    return value


def _optional(doc: dict[str, Any], name: str, kind: type[Any]) -> Any:
    return None if doc.get(name) is None else _field(doc, name, kind)
