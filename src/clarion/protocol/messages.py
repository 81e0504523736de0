"""Every client-to-server message as a frozen dataclass (reference 1.4, 2.3, 3.2, 4).

Raw dicts exist only in `codec`; everything past it works with these types. Event `data` is
kept as the JSON *text* that goes on the wire (Pusher's double encoding, reference 1.2).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ping:
    """`pusher:ping` from the client; answered with `pusher:pong`."""


@dataclass(frozen=True, slots=True)
class Pong:
    """`pusher:pong`, the client's answer to our `pusher:ping`; only liveness matters."""


@dataclass(frozen=True, slots=True)
class Subscribe:
    channel: str
    auth: str | None
    # Presence only: signed exactly as received, so kept as the original text (reference 3.1).
    channel_data: str | None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    channel: str


@dataclass(frozen=True, slots=True)
class Signin:
    auth: str | None
    user_data: str | None


@dataclass(frozen=True, slots=True)
class ClientEvent:
    event: str
    channel: str
    data: str  # JSON text, relayed as the frame's `data` string


ClientMessage = Ping | Pong | Subscribe | Unsubscribe | Signin | ClientEvent
