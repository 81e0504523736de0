"""What travels through the broker: ids and text only, never objects (architecture: fan-out)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from clarion.types import AppId, SocketId


class Target(enum.Enum):
    """Who an envelope is for, on every node that receives it."""

    # The subscribers of `channel`; for `#server-to-user-<id>` every socket signed in as <id>.
    CHANNEL = "channel"
    # Every socket signed in as `user_id` is closed (reference 3.4).
    TERMINATE_USER = "terminate-user"
    # Sockets whose watchlist holds `user_id` get `event` ("online"/"offline", reference 3.3).
    WATCHERS = "watchers"


@dataclass(frozen=True, slots=True, init=False)
class Envelope:
    app_id: AppId
    channel: str
    event: str
    data: str  # JSON text, the frame's `data` string
    exclude_socket_id: SocketId | None = None
    # Set on presence client events (reference 4: pusher-js reads it as metadata.user_id), and
    # the subject of TERMINATE_USER and WATCHERS envelopes.
    user_id: str | None = None
    target: Target = Target.CHANNEL

    def __init__(
        self,
        app_id: AppId,
        channel: str,
        event: str,
        data: str,
        exclude_socket_id: SocketId | None = None,
        user_id: str | None = None,
        target: Target = Target.CHANNEL,
    ) -> None:
        # Written out: the `__init__` dataclasses generates stays interpreted in the compiled
        # build, and mypyc compiles `object.__setattr__` on its own class to a plain store.
        object.__setattr__(self, "app_id", app_id)
        object.__setattr__(self, "channel", channel)
        object.__setattr__(self, "event", event)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "exclude_socket_id", exclude_socket_id)
        object.__setattr__(self, "user_id", user_id)
        object.__setattr__(self, "target", target)
