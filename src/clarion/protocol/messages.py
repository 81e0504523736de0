"""Every client-to-server message as a frozen dataclass (reference 1.4, 2.3, 3.2, 4).

Raw dicts exist only in `codec`; everything past it works with these types. Event `data` is
kept as the JSON *text* that goes on the wire (Pusher's double encoding, reference 1.2).

Each `__init__` is written out (`init=False`): the one dataclasses generates stays interpreted
in the compiled build, at ~0.6 us a message, while mypyc compiles `object.__setattr__` on its
own class to a plain store. `tests/unit/test_messages.py` checks them against the fields.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, init=False)
class Ping:
    """`pusher:ping` from the client; answered with `pusher:pong`."""

    def __init__(self) -> None:
        pass


@dataclass(frozen=True, slots=True, init=False)
class Pong:
    """`pusher:pong`, the client's answer to our `pusher:ping`; only liveness matters."""

    def __init__(self) -> None:
        pass


@dataclass(frozen=True, slots=True, init=False)
class Subscribe:
    channel: str
    auth: str | None
    # Presence only: signed exactly as received, so kept as the original text (reference 3.1).
    channel_data: str | None

    def __init__(self, channel: str, auth: str | None, channel_data: str | None) -> None:
        object.__setattr__(self, "channel", channel)
        object.__setattr__(self, "auth", auth)
        object.__setattr__(self, "channel_data", channel_data)


@dataclass(frozen=True, slots=True, init=False)
class Unsubscribe:
    channel: str

    def __init__(self, channel: str) -> None:
        object.__setattr__(self, "channel", channel)


@dataclass(frozen=True, slots=True, init=False)
class Signin:
    auth: str | None
    user_data: str | None

    def __init__(self, auth: str | None, user_data: str | None) -> None:
        object.__setattr__(self, "auth", auth)
        object.__setattr__(self, "user_data", user_data)


@dataclass(frozen=True, slots=True, init=False)
class ClientEvent:
    event: str
    channel: str
    data: str  # JSON text, relayed as the frame's `data` string

    def __init__(self, event: str, channel: str, data: str) -> None:
        object.__setattr__(self, "event", event)
        object.__setattr__(self, "channel", channel)
        object.__setattr__(self, "data", data)


ClientMessage = Ping | Pong | Subscribe | Unsubscribe | Signin | ClientEvent
