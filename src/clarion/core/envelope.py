"""What travels through the broker: ids and text only, never objects (architecture: fan-out)."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.types import AppId, SocketId


@dataclass(frozen=True, slots=True)
class Envelope:
    app_id: AppId
    channel: str
    event: str
    data: str  # JSON text, the frame's `data` string
    exclude_socket_id: SocketId | None = None
    # Set on presence client events (reference 4: pusher-js reads it as metadata.user_id).
    user_id: str | None = None
