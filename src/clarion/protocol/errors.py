"""Errors that carry their wire code; `node` maps them to frames, `transport` to HTTP.

WebSocket close/error code ranges (reference 1.6) and what pusher-js does with each:

* 4000-4099 - the connection is refused; the client does not reconnect unchanged.
  4001 unknown app key, 4003 app disabled, 4004 over connection quota, 4005 bad path,
  4006 bad protocol version format, 4007 unsupported version, 4008 no version, 4009 unauthorized.
* 4100-4199 - the client reconnects after a back-off (4100 over capacity / slow consumer).
* 4200-4299 - the client reconnects at once (4200 server going down, 4201 pong not received).
* 4300-4399 - pusher-js refuses at once on *close*, so these are only ever sent as
  `pusher:error` on a socket that stays open (4301 client event rate limit, 4302 watchlist limit).

`ApiError` is the HTTP API's error: a real status code and a text body the SDKs surface verbatim.
"""

from __future__ import annotations


class PusherError(Exception):
    """A problem reported to one socket as `pusher:error`; if `close` the socket is then closed."""

    def __init__(self, code: int | None, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close = close


class ConnectionRefused(PusherError):
    """Fatal: the socket gets `pusher:error` and is closed with the same code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message, close=True)


class SubscriptionError(PusherError):
    """A subscription was refused; the socket stays open and the channel never gets events.

    Sent as `pusher:subscription_error` on the channel (soketi's shape, reference 2.5), which
    pusher-js emits on the channel object and Laravel Echo hands to `.error()` callbacks.
    """

    def __init__(self, channel: str, error_type: str, message: str, status: int) -> None:
        super().__init__(None, message)
        self.channel = channel
        self.error_type = error_type
        self.status = status


class ApiError(Exception):
    """An HTTP API failure: 400 bad request, 401 auth, 403 disabled, 404 unknown, 413 too large."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# Wire codes, named once (reference 1.6).
UNKNOWN_APP = 4001
APP_DISABLED = 4003
OVER_QUOTA = 4004
PATH_NOT_FOUND = 4005
INVALID_VERSION = 4006
UNSUPPORTED_PROTOCOL = 4007
NO_PROTOCOL = 4008
UNAUTHORIZED = 4009
OVER_CAPACITY = 4100
SLOW_CONSUMER = 4101
GOING_AWAY = 4200
PONG_NOT_RECEIVED = 4201
CLIENT_EVENT_REJECTED = 4301
WATCHLIST_LIMIT = 4302
# Generic protocol-level complaints that keep the socket open (Reverb uses 4200 for these;
# pusher-js only acts on codes when closing, so the choice is informational).
INVALID_MESSAGE = 4200
