"""Channel kinds by name prefix and the name/size rules (reference 2.1, 2.2, 5.4).

Prefixes are checked in this order: `private-encrypted-` before `private-`, since the first is
a special case of the second; `#server-to-user-` is the only name allowed to start with `#`.
"""

from __future__ import annotations

import enum
import re

from clarion.protocol.errors import ApiError

SERVER_TO_USER_PREFIX = "#server-to-user-"
# Reference 2.2: `[-a-zA-Z0-9_=@,.;]`, `#` reserved for internal channels.
_NAME_RE = re.compile(r"\A[-a-zA-Z0-9_=@,.;]+\Z")
RESERVED_EVENT_PREFIXES = ("pusher:", "pusher_internal:")
CLIENT_EVENT_PREFIX = "client-"


class ChannelKind(enum.Enum):
    PUBLIC = "public"
    PRIVATE = "private"
    PRESENCE = "presence"
    ENCRYPTED = "encrypted"
    SERVER_TO_USER = "server-to-user"

    @property
    def needs_auth(self) -> bool:
        return self in _NEEDS_AUTH

    @property
    def allows_client_events(self) -> bool:
        """Reference 4: private and presence only; pusher-js refuses them on encrypted ones."""
        return self in _ALLOWS_CLIENT_EVENTS


# Built once: looking members up on the Enum class costs more than the test (on every
# subscribe and client event). Tuples: `in` compares members by identity.
_NEEDS_AUTH = (ChannelKind.PRIVATE, ChannelKind.PRESENCE, ChannelKind.ENCRYPTED)
_ALLOWS_CLIENT_EVENTS = (ChannelKind.PRIVATE, ChannelKind.PRESENCE)


def channel_kind(name: str) -> ChannelKind:
    if name.startswith("private-encrypted-"):
        return ChannelKind.ENCRYPTED
    if name.startswith("private-"):
        return ChannelKind.PRIVATE
    if name.startswith("presence-"):
        return ChannelKind.PRESENCE
    if name.startswith(SERVER_TO_USER_PREFIX):
        return ChannelKind.SERVER_TO_USER
    return ChannelKind.PUBLIC


def is_cache_channel(name: str) -> bool:
    """Reference 2.8: `cache-`, `private-cache-`, `presence-cache-`, `private-encrypted-cache-`."""
    return name.startswith(
        ("cache-", "private-cache-", "presence-cache-", "private-encrypted-cache-")
    )


def name_problem(name: object, max_length: int) -> str | None:
    """Why `name` is not a valid channel name, or None when it is (reference 2.2)."""
    if not isinstance(name, str) or not name:
        return "Channel name must be a non-empty string"
    if len(name) > max_length:
        return f"Channel name is longer than {max_length} characters: {name[:40]}..."
    if name.startswith(SERVER_TO_USER_PREFIX):
        rest = name[len(SERVER_TO_USER_PREFIX) :]
        return None if rest and _NAME_RE.match(rest) else f"Invalid channel name: {name}"
    if not _NAME_RE.match(name):
        return f"Invalid channel name {name!r}: only [-a-zA-Z0-9_=@,.;] are allowed"
    return None


def check_api_channel(name: object, max_length: int) -> str:
    """Validate a channel named in an HTTP API request; raises `ApiError(400)`."""
    problem = name_problem(name, max_length)
    if problem is not None:
        raise ApiError(400, problem)
    assert isinstance(name, str)
    return name


def event_name_problem(name: object, max_length: int) -> str | None:
    """Reference 5.4: any characters (Laravel sends `App\\Events\\X`), no reserved prefix."""
    if not isinstance(name, str) or not name:
        return "Event name must be a non-empty string"
    if len(name) > max_length:
        return f"Event name is longer than {max_length} characters"
    if name.startswith(RESERVED_EVENT_PREFIXES):
        return f"Event name {name!r} uses a reserved prefix"
    return None
