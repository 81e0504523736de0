"""HTTP API request bodies and query rules (reference 5.3, 5.4, 2.9), as pure functions.

Everything here raises `ApiError` with the status the SDKs expect: 400 for a malformed or
disallowed request, 413 for event data over the app's limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from clarion.protocol.channels import (
    ChannelKind,
    channel_kind,
    check_api_channel,
    event_name_problem,
    is_cache_channel,
)
from clarion.protocol.errors import ApiError
from clarion.protocol.jsontext import loads_bytes
from clarion.types import SocketId

_SOCKET_ID_RE = re.compile(r"\A\d+\.\d+\Z")
TRIGGER_INFO = frozenset({"user_count", "subscription_count"})
CHANNEL_INFO = frozenset({"user_count", "subscription_count", "cache"})


class Limits(Protocol):
    """The per-app limits these rules need; `core.apps.App` provides them."""

    @property
    def max_channels_per_trigger(self) -> int: ...
    @property
    def max_channel_name_length(self) -> int: ...
    @property
    def max_event_name_length(self) -> int: ...
    @property
    def max_batch_size(self) -> int: ...
    @property
    def max_message_size_kb(self) -> int: ...


@dataclass(frozen=True, slots=True, init=False)
class Trigger:
    event: str
    channels: tuple[str, ...]
    data: str
    socket_id: SocketId | None
    info: frozenset[str]

    def __init__(
        self,
        event: str,
        channels: tuple[str, ...],
        data: str,
        socket_id: SocketId | None,
        info: frozenset[str],
    ) -> None:
        # Written out: the `__init__` dataclasses generates stays interpreted in the compiled
        # build, and mypyc compiles `object.__setattr__` on its own class to a plain store.
        object.__setattr__(self, "event", event)
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "socket_id", socket_id)
        object.__setattr__(self, "info", info)


def parse_json_body(body: bytes) -> dict[str, Any]:
    try:
        parsed = loads_bytes(body) if body else {}
    except (ValueError, RecursionError):
        raise ApiError(400, "Request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return parsed


def parse_trigger(body: bytes, app: Limits) -> Trigger:
    """`POST /apps/{id}/events`: `channels` (or PHP's `channel`), `name`, `data`, ..."""
    raw = parse_json_body(body)
    channels = _trigger_channels(raw, app)
    return _trigger(raw, channels, app)


def parse_batch(body: bytes, app: Limits) -> list[Trigger]:
    """`POST /apps/{id}/batch_events`: `{"batch": [{channel, name, data, ...}, ...]}`."""
    batch = parse_json_body(body).get("batch")
    if not isinstance(batch, list) or not batch:
        raise ApiError(400, "batch must be a non-empty list of events")
    if len(batch) > app.max_batch_size:
        raise ApiError(400, f"Batch has {len(batch)} events; at most {app.max_batch_size} allowed")
    triggers = []
    for index, item in enumerate(batch):
        if not isinstance(item, dict):
            raise ApiError(400, f"batch[{index}] must be an object")
        channel = check_api_channel(item.get("channel"), app.max_channel_name_length)
        triggers.append(_trigger(item, (channel,), app))
    return triggers


def _trigger_channels(raw: dict[str, Any], app: Limits) -> tuple[str, ...]:
    if "channels" in raw:
        names = raw["channels"]
        if not isinstance(names, list) or not names:
            raise ApiError(400, "channels must be a non-empty list of channel names")
    elif "channel" in raw:
        names = [raw["channel"]]
    else:
        raise ApiError(400, "Missing channels (or channel)")
    if len(names) > app.max_channels_per_trigger:
        raise ApiError(
            400, f"At most {app.max_channels_per_trigger} channels per trigger; got {len(names)}"
        )
    channels = tuple(check_api_channel(n, app.max_channel_name_length) for n in names)
    encrypted = any(channel_kind(c) is ChannelKind.ENCRYPTED for c in channels)
    # Reference 2.9: an event to an encrypted channel may address only that channel.
    if encrypted and len(channels) > 1:
        raise ApiError(400, "An event to an encrypted channel may name only that one channel")
    return channels


def _trigger(raw: dict[str, Any], channels: tuple[str, ...], app: Limits) -> Trigger:
    event = raw.get("name")
    problem = event_name_problem(event, app.max_event_name_length)
    if problem is not None:
        raise ApiError(400, problem)
    assert isinstance(event, str)
    data = raw.get("data")
    if not isinstance(data, str):
        raise ApiError(400, "data must be a string (JSON-encode objects before sending)")
    if len(_utf8(event, "name")) > app.max_event_name_length * 4:
        raise ApiError(400, "Event name is too long")
    if len(_utf8(data, "data")) > app.max_message_size_kb * 1024:
        raise ApiError(413, f"Event data is larger than {app.max_message_size_kb} KB")
    return Trigger(
        event=event,
        channels=channels,
        data=data,
        socket_id=_socket_id(raw.get("socket_id")),
        info=parse_info(raw.get("info"), TRIGGER_INFO),
    )


def _utf8(text: str, what: str) -> bytes:
    """UTF-8 bytes of `text`; a lone surrogate (from a `\\ud800` escape) is a 400."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise ApiError(400, f"{what} is not valid Unicode") from None


def _socket_id(value: object) -> SocketId | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _SOCKET_ID_RE.match(value):
        raise ApiError(400, f"Invalid socket_id: {value!r}")
    return SocketId(value)


def parse_info(value: object, allowed: frozenset[str]) -> frozenset[str]:
    """A comma list of attribute names (`info=user_count,subscription_count`)."""
    if value is None or value == "":
        return frozenset()
    if not isinstance(value, str):
        raise ApiError(400, "info must be a comma-separated string")
    attrs = frozenset(a.strip() for a in value.split(",") if a.strip())
    unknown = attrs - allowed
    if unknown:
        raise ApiError(400, f"Unknown info attributes: {', '.join(sorted(unknown))}")
    return attrs


def check_channel_info(channel: str, attrs: frozenset[str]) -> None:
    """Reference 5.3: an attribute the channel's kind does not have is a 400."""
    kind = channel_kind(channel)
    if "user_count" in attrs and kind is not ChannelKind.PRESENCE:
        raise ApiError(400, "user_count is only available for presence channels")
    if "cache" in attrs and not is_cache_channel(channel):
        raise ApiError(400, "cache is only available for cache channels")


def check_channels_list(prefix: str, attrs: frozenset[str]) -> None:
    """Reference 5.3: `info=user_count` needs `filter_by_prefix` restricting to presence-."""
    if "user_count" in attrs and not prefix.startswith("presence-"):
        raise ApiError(400, "info=user_count requires filter_by_prefix=presence-")
    if attrs - {"user_count"}:
        raise ApiError(400, "Only user_count can be requested when listing channels")


def check_presence_channel(channel: str) -> None:
    if channel_kind(channel) is not ChannelKind.PRESENCE:
        raise ApiError(400, "Users can only be listed for presence channels")
