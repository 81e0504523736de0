"""Text frame <-> message. The only code that knows the wire's JSON shapes (reference 1.2).

Client-to-server `data` is a JSON object (pusher-js puts it straight into the envelope); a string
holding JSON is accepted too (Reverb does the same). Server-to-client `data` is a JSON-encoded
*string* for connection_established, pusher_internal:* and channel events.
"""

from __future__ import annotations

from typing import Any

from clarion.protocol.errors import INVALID_MESSAGE, PusherError
from clarion.protocol.jsontext import compact, loads, quote
from clarion.protocol.messages import (
    ClientEvent,
    ClientMessage,
    Ping,
    Pong,
    Signin,
    Subscribe,
    Unsubscribe,
)


def decode(text: str) -> ClientMessage:
    """Parse one client text frame; raises a non-closing `PusherError` for bad input."""
    try:
        raw = loads(text)
    except (ValueError, RecursionError):
        raise PusherError(INVALID_MESSAGE, "Invalid message format: not JSON") from None
    if not isinstance(raw, dict):
        raise PusherError(INVALID_MESSAGE, "Invalid message format: not a JSON object")
    event = raw.get("event")
    if not isinstance(event, str) or not event:
        raise PusherError(INVALID_MESSAGE, "Invalid message format: missing event")
    return _decode_event(_unicode(event, "event"), raw)


def _decode_event(event: str, raw: dict[str, Any]) -> ClientMessage:
    if event == "pusher:ping":
        return Ping()
    if event == "pusher:pong":
        return Pong()
    if event == "pusher:subscribe":
        data = _data_object(raw)
        return Subscribe(
            channel=_required_str(data, "channel", event),
            auth=_optional_str(data, "auth", event),
            channel_data=_channel_data(data),
        )
    if event == "pusher:unsubscribe":
        return Unsubscribe(channel=_required_str(_data_object(raw), "channel", event))
    if event == "pusher:signin":
        data = _data_object(raw)
        return Signin(
            auth=_optional_str(data, "auth", event),
            user_data=_optional_str(data, "user_data", event),
        )
    if event.startswith(("pusher:", "pusher_internal:")):
        raise PusherError(INVALID_MESSAGE, f"Unsupported event: {event}")
    channel = raw.get("channel")
    if not isinstance(channel, str) or not channel:
        raise PusherError(INVALID_MESSAGE, f"Event {event} has no channel")
    text = _data_text(raw.get("data"))
    return ClientEvent(event=event, channel=_unicode(channel, "channel"), data=text)


def _data_object(raw: dict[str, Any]) -> dict[str, Any]:
    data = raw.get("data")
    if isinstance(data, str):
        try:
            data = loads(data)
        except (ValueError, RecursionError):
            data = None
    if not isinstance(data, dict):
        raise PusherError(INVALID_MESSAGE, f"Invalid message format: {raw['event']} needs data")
    return data


def _required_str(data: dict[str, Any], key: str, event: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise PusherError(INVALID_MESSAGE, f"Invalid message format: {event} needs {key}")
    return _unicode(value, key)


def _optional_str(data: dict[str, Any], key: str, event: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return _unicode(value, key)
    raise PusherError(INVALID_MESSAGE, f"Invalid message format: {key} of {event} must be text")


def _channel_data(data: dict[str, Any]) -> str | None:
    value = data.get("channel_data")
    if value is None:
        return None
    if isinstance(value, str):
        return _unicode(value, "channel_data")
    # Not signable as sent; keep a compact form so verification fails cleanly later.
    return compact(value)


def _data_text(data: object) -> str:
    """Client event data as the JSON text relayed to others (a string is passed through)."""
    if isinstance(data, str):
        return _unicode(data, "data")
    return compact(data if data is not None else {})


def _unicode(text: str, what: str) -> str:
    """Refuse text that cannot be UTF-8 encoded (a lone surrogate from a `\\ud800` escape)."""
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        message = f"Invalid message format: {what} is not valid Unicode"
        raise PusherError(INVALID_MESSAGE, message) from None
    return text


# ---- server to client ------------------------------------------------------------------


def connection_established(socket_id: str, activity_timeout: int) -> str:
    # Once per connection, so written out: what `compact` makes of the same dicts (a unit
    # test compares both forms).
    data = f'{{"socket_id":{quote(socket_id)},"activity_timeout":{int(activity_timeout)}}}'
    return f'{{"event":"pusher:connection_established","data":{quote(data)}}}'


def error(code: int | None, message: str) -> str:
    return compact({"event": "pusher:error", "data": {"code": code, "message": message}})


PONG = compact({"event": "pusher:pong", "data": "{}"})
PING = compact({"event": "pusher:ping", "data": "{}"})


def subscription_succeeded(channel: str, data: str = "{}") -> str:
    return channel_event("pusher_internal:subscription_succeeded", channel, data)


def presence_roster(members: dict[str, Any]) -> str:
    """Reference 2.4: ids, hash and count of the distinct users, the subscriber included."""
    ids = list(members)
    return compact({"presence": {"ids": ids, "hash": members, "count": len(ids)}})


def member_added_data(user_id: str, user_info: Any) -> str:
    return compact({"user_id": user_id, "user_info": user_info})


def member_removed_data(user_id: str) -> str:
    return compact({"user_id": user_id})


def subscription_error(channel: str, error_type: str, message: str, status: int) -> str:
    payload = {"type": error_type, "error": message, "status": status}
    return compact({"event": "pusher:subscription_error", "channel": channel, "data": payload})


def channel_event(event: str, channel: str, data: str, user_id: str | None = None) -> str:
    """The one frame shape every channel event takes; encoded once per broadcast, written out
    as `compact` would write the dict (a unit test compares both forms)."""
    frame = f'{{"event":{quote(event)},"channel":{quote(channel)},"data":{quote(data)}'
    if user_id is not None:
        frame += f',"user_id":{quote(user_id)}'
    return frame + "}"


def signin_success(user_data: str) -> str:
    """Reference 3.2: `data` is a JSON string holding the user_data string as received."""
    return compact({"event": "pusher:signin_success", "data": compact({"user_data": user_data})})


def watchlist_events(name: str, user_ids: list[str]) -> str:
    """Reference 3.3: no channel; `data` holds `{"events":[{"name":..,"user_ids":[..]}]}`."""
    data = compact({"events": [{"name": name, "user_ids": user_ids}]})
    return compact({"event": "pusher_internal:watchlist_events", "data": data})


def cache_miss(channel: str) -> str:
    """Reference 2.8: sent instead of the last event when a cache channel has none."""
    return compact({"event": "pusher:cache_miss", "channel": channel})


def subscription_count_data(count: int) -> str:
    """Reference 2.7: data of `pusher_internal:subscription_count`."""
    return compact({"subscription_count": count})
