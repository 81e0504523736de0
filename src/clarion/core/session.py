"""One socket's state and the pure rules for what it may do (reference 2, 4).

Invariants:
* `channels` holds exactly the channels whose `subscription_succeeded` was sent; the value is the
  presence user id for presence channels, else None.
* Liveness (reference 1.4): any frame received counts. After `activity_timeout` seconds of silence
  the server sends `pusher:ping`; if nothing arrives within `pong_timeout` more, the socket is
  closed with 4201.
* While an asynchronous step (a subscribe that consults a store) is running, later messages wait
  in `inbox`, so a socket's messages are handled in the order they were sent.
"""

from __future__ import annotations

import enum
import json
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clarion.core.apps import App
from clarion.core.envelope import Envelope
from clarion.core.ratelimit import TokenBucket
from clarion.protocol import auth
from clarion.protocol.channels import (
    CLIENT_EVENT_PREFIX,
    SERVER_TO_USER_PREFIX,
    ChannelKind,
    channel_kind,
    name_problem,
)
from clarion.protocol.errors import (
    CLIENT_EVENT_REJECTED,
    INVALID_MESSAGE,
    UNAUTHORIZED,
    PusherError,
    SubscriptionError,
)
from clarion.protocol.messages import ClientEvent, ClientMessage, Signin, Subscribe
from clarion.types import SocketId

if TYPE_CHECKING:
    from clarion.ports import Connection


class Liveness(enum.Enum):
    ALIVE = "alive"
    SEND_PING = "send-ping"
    DEAD = "dead"


class Session:
    __slots__ = (
        "app",
        "authorized",
        "channels",
        "client_events",
        "closed",
        "conn",
        "counted",
        "inbox",
        "last_seen",
        "opened_at",
        "ping_sent_at",
        "socket_id",
        "user_id",
        "user_info",
        "watch_buffer",
        "watchlist",
    )

    def __init__(self, app: App, socket_id: SocketId, conn: Connection, now: float) -> None:
        self.app = app
        self.socket_id = socket_id
        self.conn = conn
        self.channels: dict[str, str | None] = {}
        self.opened_at = now
        # Reference 3.2 "authorized connections": once signed in or admitted to a channel that
        # needs auth, the socket stays authorized (leaving that channel later is normal).
        self.authorized = False
        self.last_seen = now
        self.ping_sent_at: float | None = None
        self.inbox: deque[ClientMessage | None] | None = None
        self.closed = False
        # Holds one of the app's `max_connections` places, given back when it closes.
        self.counted = False
        self.user_id: str | None = None
        self.user_info: Any = None
        self.watchlist: tuple[str, ...] = ()
        # While a sign-in waits for the store, watchlist events for this socket wait here: it
        # must hear signin_success and its initial `online` list first (reference 3.3).
        self.watch_buffer: list[tuple[str, str]] | None = None
        # Created on the first client event: most sockets never send one (reference 4).
        self.client_events: TokenBucket | None = None

    def seen(self, now: float) -> None:
        self.last_seen = now
        self.ping_sent_at = None

    def liveness(self, now: float, activity_timeout: float, pong_timeout: float) -> Liveness:
        if self.ping_sent_at is not None:
            return Liveness.DEAD if now - self.ping_sent_at >= pong_timeout else Liveness.ALIVE
        if now - self.last_seen >= activity_timeout:
            return Liveness.SEND_PING
        return Liveness.ALIVE

    def next_check(self, activity_timeout: float, pong_timeout: float) -> float:
        """The earliest time `liveness` or the authorization timeout could next ask for
        something, as things stand (a later message only makes it later)."""
        if self.ping_sent_at is not None:
            due = self.ping_sent_at + pong_timeout
        else:
            due = self.last_seen + activity_timeout
        auth_due = self._auth_deadline()
        return due if auth_due is None else min(due, auth_due)

    def unauthorized_too_long(self, now: float) -> bool:
        """Reference 3.2 "authorized connections", when the app asks for them."""
        auth_due = self._auth_deadline()
        return auth_due is not None and now >= auth_due

    def _auth_deadline(self) -> float | None:
        app = self.app
        if app.enable_user_authentication and not self.authorized:
            return self.opened_at + app.user_authentication_timeout
        return None


@dataclass(frozen=True, slots=True, init=False)
class Member:
    user_id: str
    user_info: Any

    def __init__(self, user_id: str, user_info: Any) -> None:
        # Written out: the `__init__` dataclasses generates stays interpreted in the compiled
        # build, and mypyc compiles `object.__setattr__` on its own class to a plain store.
        object.__setattr__(self, "user_id", user_id)
        object.__setattr__(self, "user_info", user_info)


@dataclass(frozen=True, slots=True, init=False)
class Authorized:
    """A subscribe that passed every check; `member` is set for presence channels."""

    channel: str
    kind: ChannelKind
    member: Member | None

    def __init__(self, channel: str, kind: ChannelKind, member: Member | None) -> None:
        object.__setattr__(self, "channel", channel)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "member", member)


def authorize_subscribe(session: Session, msg: Subscribe) -> Authorized:
    """Check a subscribe against reference 2.2, 2.6, 2.10 and 3.1; raises `SubscriptionError`,
    or a plain `PusherError` for a repeated subscribe."""
    app, channel = session.app, msg.channel
    problem = name_problem(channel, app.max_channel_name_length)
    if problem is not None:
        raise SubscriptionError(channel, "InvalidChannel", problem, 4009)
    limit = app.max_channels_per_connection
    if limit and _counted_channels(session) >= limit and channel not in session.channels:
        raise SubscriptionError(
            channel, "LimitReached", f"A connection may subscribe to at most {limit} channels", 4100
        )
    if channel in session.channels:
        # Reference 2.3: Pusher's answer to a repeated subscribe; the subscription stands, so
        # no `pusher:subscription_error` (Echo would report a live channel as failed).
        raise PusherError(None, f"Existing subscription to channel {channel}")
    kind = channel_kind(channel)
    if kind is ChannelKind.SERVER_TO_USER:
        _check_own_user_channel(session, channel)
        return Authorized(channel, kind, None)
    if not kind.needs_auth:
        return Authorized(channel, kind, None)
    channel_data = msg.channel_data if kind is ChannelKind.PRESENCE else None
    if kind is ChannelKind.PRESENCE and channel_data is None and session.user_id is None:
        raise SubscriptionError(
            channel, "AuthError", "Presence channels need channel_data or a signed-in user", 401
        )
    if not auth.verify_channel_auth(
        app.key, app.secret, session.socket_id, channel, channel_data, msg.auth
    ):
        expected = auth.channel_string_to_sign(session.socket_id, channel, channel_data)
        raise SubscriptionError(
            channel,
            "AuthError",
            f"Invalid signature: Expected HMAC SHA256 hex digest of {expected}, but got {msg.auth}",
            401,
        )
    member = (
        _presence_member(session, channel, channel_data) if kind is ChannelKind.PRESENCE else None
    )
    return Authorized(channel, kind, member)


def _counted_channels(session: Session) -> int:
    """Channels toward `max_channels_per_connection`; pusher-js's own `#server-to-user-` one
    (subscribed by itself after sign-in) does not count."""
    count = len(session.channels)
    if session.user_id is not None and SERVER_TO_USER_PREFIX + session.user_id in session.channels:
        count -= 1
    return count


def _check_own_user_channel(session: Session, channel: str) -> None:
    """Reference 2.10: only a socket signed in as that user may subscribe."""
    wanted = channel[len(SERVER_TO_USER_PREFIX) :]
    if session.user_id is None or session.user_id != wanted:
        raise SubscriptionError(
            channel, "AuthError", "Server-to-user channels need a sign-in as that user", 401
        )


def _presence_member(session: Session, channel: str, channel_data: str | None) -> Member:
    """Reference 2.6: `user_id` (string or number) and optional `user_info`, within limits."""
    if channel_data is None:
        # Signed-in socket subscribing with only `auth` (reference 2.6, last point).
        assert session.user_id is not None
        return Member(session.user_id, session.user_info)
    try:
        parsed = json.loads(channel_data)
    except ValueError:
        parsed = None
    user_id = parsed.get("user_id") if isinstance(parsed, dict) else None
    if isinstance(user_id, bool) or not isinstance(user_id, str | int) or user_id == "":
        raise SubscriptionError(
            channel, "AuthError", "channel_data must be a JSON object with a user_id", 400
        )
    assert isinstance(parsed, dict)
    return _checked_member(session.app, channel, str(user_id), parsed.get("user_info"))


def _checked_member(app: App, channel: str, user_id: str, user_info: Any) -> Member:
    if not user_id.isascii() and not _encodable(user_id):
        raise SubscriptionError(channel, "AuthError", "user_id is not valid Unicode", 400)
    if len(user_id) > app.max_user_id_length:
        raise SubscriptionError(
            channel,
            "LimitReached",
            f"user_id is longer than {app.max_user_id_length} characters",
            4301,
        )
    info_size = len(json.dumps(user_info, separators=(",", ":")).encode())
    if info_size > app.max_presence_user_info_kb * 1024:
        raise SubscriptionError(
            channel,
            "LimitReached",
            f"user_info is larger than {app.max_presence_user_info_kb} KB",
            4301,
        )
    return Member(user_id, user_info)


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def authorize_client_event(session: Session, msg: ClientEvent, now: float) -> Envelope:
    """Reference 4: the checks a client event passes before it is published, the rate limit
    (a token per event, `max_client_events_per_second` per connection) last."""
    app = session.app
    if not msg.event.startswith(CLIENT_EVENT_PREFIX):
        raise PusherError(INVALID_MESSAGE, f"Unsupported event: {msg.event}")
    if not app.enable_client_messages:
        raise PusherError(CLIENT_EVENT_REJECTED, "Client events are not enabled for this app")
    if not channel_kind(msg.channel).allows_client_events:
        raise PusherError(
            None, "Client event rejected - only supported on private and presence channels"
        )
    if msg.channel not in session.channels:
        raise PusherError(None, f"Client event rejected - not subscribed to channel {msg.channel}")
    if len(msg.event) > app.max_event_name_length:
        raise PusherError(
            None, f"Client event rejected - event name longer than {app.max_event_name_length}"
        )
    if len(msg.data.encode()) > app.max_message_bytes:
        raise PusherError(
            None, f"Client event rejected - data larger than {app.max_message_size_kb} KB"
        )
    _spend_client_event(session, now)
    return Envelope(
        app_id=app.id,
        channel=msg.channel,
        event=msg.event,
        data=msg.data,
        exclude_socket_id=session.socket_id,
        user_id=session.channels[msg.channel],
    )


def _spend_client_event(session: Session, now: float) -> None:
    bucket = session.client_events
    if bucket is None:
        bucket = session.client_events = TokenBucket(session.app.max_client_events_per_second, now)
    if not bucket.take(now):
        raise PusherError(
            CLIENT_EVENT_REJECTED,
            "Client event rejected - rate limit of "
            f"{session.app.max_client_events_per_second} per second exceeded",
        )


@dataclass(frozen=True, slots=True, init=False)
class SignedIn:
    """A `pusher:signin` that passed every check (reference 3.2)."""

    user_id: str
    user_info: Any
    user_data: str  # as received: echoed in signin_success
    watchlist: tuple[str, ...]
    watchlist_truncated: bool

    def __init__(
        self,
        user_id: str,
        user_info: Any,
        user_data: str,
        watchlist: tuple[str, ...],
        watchlist_truncated: bool,
    ) -> None:
        object.__setattr__(self, "user_id", user_id)
        object.__setattr__(self, "user_info", user_info)
        object.__setattr__(self, "user_data", user_data)
        object.__setattr__(self, "watchlist", watchlist)
        object.__setattr__(self, "watchlist_truncated", watchlist_truncated)


def authorize_signin(session: Session, msg: Signin) -> SignedIn:
    """Reference 3.2: verify `auth` over `<socket_id>::user::<user_data>`, then parse
    `user_data` (a non-empty string `id`, optional `user_info` and `watchlist`)."""
    app = session.app
    if not msg.auth or msg.user_data is None:
        raise PusherError(UNAUTHORIZED, "Invalid signin: auth and user_data are required")
    to_sign = auth.user_string_to_sign(session.socket_id, msg.user_data)
    if not auth.verify_token(app.key, app.secret, to_sign, msg.auth):
        raise PusherError(
            UNAUTHORIZED,
            f"Invalid signature: Expected HMAC SHA256 hex digest of {to_sign}, but got {msg.auth}",
        )
    user_data = _user_data_object(msg.user_data)
    user_id = user_data.get("id")
    if not isinstance(user_id, str) or not user_id:
        raise PusherError(UNAUTHORIZED, "Invalid signin: user_data needs a non-empty string id")
    if len(user_id) > app.max_user_id_length:
        raise PusherError(
            UNAUTHORIZED, f"Invalid signin: id is longer than {app.max_user_id_length} characters"
        )
    if session.user_id is not None and session.user_id != user_id:
        # Docs: a connection cannot switch users; it must reconnect.
        raise PusherError(
            UNAUTHORIZED, f"Connection is already signed in as user {session.user_id}"
        )
    user_info = user_data.get("user_info")
    _check_user_info_size(app, user_info)
    watchlist, truncated = _watchlist(user_data.get("watchlist"), app.max_watchlist_size)
    return SignedIn(user_id, user_info, msg.user_data, watchlist, truncated)


def _user_data_object(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        raise PusherError(UNAUTHORIZED, "Invalid signin: user_data must be a JSON object")
    return parsed


def _check_user_info_size(app: App, user_info: Any) -> None:
    size = len(json.dumps(user_info, separators=(",", ":")).encode())
    if size > app.max_presence_user_info_kb * 1024:
        raise PusherError(
            UNAUTHORIZED,
            f"Invalid signin: user_info is larger than {app.max_presence_user_info_kb} KB",
        )


def _watchlist(raw: Any, limit: int) -> tuple[tuple[str, ...], bool]:
    """Reference 3.2: ids (strings; numbers as text), first `limit` honoured, duplicates once."""
    if raw is None:
        return (), False
    if not isinstance(raw, list) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) and v != "" for v in raw
    ):
        raise PusherError(UNAUTHORIZED, "Invalid signin: watchlist must be a list of user ids")
    ids = tuple(dict.fromkeys(str(v) for v in raw))
    return ids[:limit], len(ids) > limit
