"""The orchestrator: this process's sockets, the ports, and the one fan-out path.

Everything that publishes (client events, HTTP API triggers, presence changes) goes through
`publish` -> broker -> `deliver`, which encodes a frame once and writes the same bytes to every
local subscriber. Protocol decisions live in `protocol` and `core`; this module sequences them,
talks to the ports and maps errors to the wire (reference 1.5, 1.6, 2.5).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from clarion.core.apps import App
from clarion.core.envelope import Envelope
from clarion.core.hub import Hub
from clarion.core.session import (
    Authorized,
    Liveness,
    Session,
    authorize_client_event,
    authorize_subscribe,
)
from clarion.ports import AppStore, Broker, ChannelStore, Connection, PresenceStore
from clarion.protocol import codec
from clarion.protocol import errors as codes
from clarion.protocol.errors import ConnectionRefused, PusherError, SubscriptionError
from clarion.protocol.messages import (
    ClientEvent,
    ClientMessage,
    Ping,
    Pong,
    Signin,
    Subscribe,
    Unsubscribe,
)
from clarion.types import AppId, SocketId

# Reference 1.7: every current client sends 7; 5 and 6 differ only in details we also honour.
SUPPORTED_PROTOCOLS = range(5, 8)


@dataclass(frozen=True, slots=True)
class NodeSettings:
    # Reference 1.3: sent in connection_established; must be non-zero.
    activity_timeout: int = 30
    # Reference 1.4: after our ping, how long the client has to answer before 4201.
    pong_timeout: float = 30.0


class Node:
    def __init__(
        self,
        *,
        apps: AppStore,
        broker: Broker,
        presence: PresenceStore,
        channels: ChannelStore,
        frame: Callable[[str], bytes],
        clock: Callable[[], float],
        settings: NodeSettings | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.apps = apps
        self.hub = Hub()
        self._broker = broker
        self._presence = presence
        self._channels = channels
        self._frame = frame
        self._clock = clock
        self.settings = settings or NodeSettings()
        self._log = logger or logging.getLogger("clarion.node")
        self._tasks: set[asyncio.Task[None]] = set()
        self._pong = frame(codec.PONG)
        broker.bind(self.deliver)

    def now(self) -> float:
        return self._clock()

    # ---- connection lifecycle ---------------------------------------------------------

    def on_open(
        self, conn: Connection, app_key: str, protocol: str | None, origin: str | None
    ) -> Session | None:
        """Admit a freshly upgraded socket, or refuse it with a 4000-range code."""
        try:
            app = self._admit(app_key, protocol, origin)
        except ConnectionRefused as refused:
            conn.write(self._frame(codec.error(refused.code, refused.message)))
            conn.close(refused.code or codes.UNAUTHORIZED, refused.message)
            return None
        session = Session(app, self._new_socket_id(), conn, self._clock())
        self.hub.add(session)
        text = codec.connection_established(session.socket_id, self.settings.activity_timeout)
        conn.write(self._frame(text))
        return session

    def _admit(self, app_key: str, protocol: str | None, origin: str | None) -> App:
        _check_protocol(protocol)
        app = self.apps.by_key(app_key)
        if app is None:
            raise ConnectionRefused(codes.UNKNOWN_APP, f"App key {app_key} does not exist")
        if not app.enabled:
            raise ConnectionRefused(codes.APP_DISABLED, "Application is disabled")
        if not app.origin_allowed(origin):
            raise ConnectionRefused(codes.UNAUTHORIZED, f"Origin {origin} is not allowed")
        limit = app.max_connections
        if limit and self.hub.connection_count(app.id) >= limit:
            raise ConnectionRefused(codes.OVER_QUOTA, "Application is over its connection quota")
        return app

    def _new_socket_id(self) -> SocketId:
        # Reference 1.3: `<digits>.<digits>`, which every server SDK validates.
        while True:
            sid = SocketId(f"{secrets.randbelow(10**9) + 1}.{secrets.randbelow(10**9) + 1}")
            if sid not in self.hub.sessions:
                return sid

    def on_message(self, session: Session, text: str) -> None:
        session.seen(self._clock())
        msg = self._decode(session, text)
        if msg is None:
            return
        if session.inbox is not None:
            session.inbox.append(msg)
        elif not self._handle_now(session, msg):
            self._start_serial(session, msg)

    def on_close(self, session: Session) -> None:
        """The socket is gone; leave every channel (after any step still running)."""
        if session.closed:
            return
        session.closed = True
        self.hub.remove(session)
        if session.inbox is not None:
            session.inbox.append(None)
        elif session.channels:
            self._start_serial(session, None)

    def report(self, session: Session, error: PusherError) -> None:
        """Map a protocol error to the wire: `pusher:error`, then close if it is fatal."""
        session.conn.write(self._frame(codec.error(error.code, error.message)))
        if error.close:
            session.conn.close(error.code or codes.UNAUTHORIZED, error.message)

    def _decode(self, session: Session, text: str) -> ClientMessage | None:
        try:
            return codec.decode(text)
        except PusherError as error:
            self.report(session, error)
            return None

    # ---- message handling -------------------------------------------------------------

    def _handle_now(self, session: Session, msg: ClientMessage) -> bool:
        """Handle the messages that need no store; False for the ones that do."""
        if isinstance(msg, Ping):
            session.conn.write(self._pong)
        elif isinstance(msg, Pong):
            pass
        elif isinstance(msg, ClientEvent):
            self._client_event(session, msg)
        elif isinstance(msg, Signin):
            self.report(session, PusherError(None, "User authentication is not supported yet"))
        else:
            return False
        return True

    def _client_event(self, session: Session, msg: ClientEvent) -> None:
        try:
            envelope = authorize_client_event(session, msg)
        except PusherError as error:
            self.report(session, error)
            return
        self.publish(envelope)

    def _start_serial(self, session: Session, first: ClientMessage | None) -> None:
        session.inbox = deque()
        self._spawn(self._run_serial(session, first))

    async def _run_serial(self, session: Session, first: ClientMessage | None) -> None:
        """Run store-backed steps one at a time; `None` in the inbox means the socket closed."""
        inbox = session.inbox
        assert inbox is not None
        item: ClientMessage | None = first
        try:
            while True:
                if item is None:
                    await self._leave_all(session)
                    return
                if not self._handle_now(session, item):
                    await self._handle_stored(session, item)
                if not inbox:
                    return
                item = inbox.popleft()
        finally:
            session.inbox = None
            if session.closed and session.channels:
                await self._leave_all(session)

    async def _handle_stored(self, session: Session, msg: ClientMessage) -> None:
        if session.closed:
            return
        if isinstance(msg, Subscribe):
            await self._subscribe(session, msg)
        elif isinstance(msg, Unsubscribe):
            await self._unsubscribe(session, msg.channel)

    async def _subscribe(self, session: Session, msg: Subscribe) -> None:
        try:
            granted = authorize_subscribe(session, msg)
            roster = await self._join_presence(session, granted)
        except SubscriptionError as error:
            self._refuse_subscription(session, error)
            return
        except PusherError as error:
            self.report(session, error)
            return
        await self._channels.add(session.app.id, granted.channel, session.socket_id)
        member_id = granted.member.user_id if granted.member else None
        self.hub.subscribe(session, granted.channel, member_id)
        data = codec.presence_roster(roster) if roster is not None else "{}"
        session.conn.write(self._frame(codec.subscription_succeeded(granted.channel, data)))

    async def _join_presence(self, session: Session, granted: Authorized) -> dict[str, Any] | None:
        """Add the member; publish `member_added` for a user's first socket (reference 2.6)."""
        member = granted.member
        if member is None:
            return None
        app, channel = session.app, granted.channel
        members = await self._presence.members(app.id, channel)
        if member.user_id not in members and len(members) >= app.max_presence_members:
            raise SubscriptionError(
                channel,
                "LimitReached",
                f"Presence channel is full ({app.max_presence_members} members)",
                4100,
            )
        first = await self._presence.join(
            app.id, channel, member.user_id, session.socket_id, member.user_info
        )
        members[member.user_id] = member.user_info
        if first:
            data = codec.member_added_data(member.user_id, member.user_info)
            self.publish(
                Envelope(app.id, channel, "pusher_internal:member_added", data, session.socket_id)
            )
        return members

    def _refuse_subscription(self, session: Session, error: SubscriptionError) -> None:
        """Reference 2.5: `pusher:error` (Pusher's form) and `pusher:subscription_error`
        (soketi's, which pusher-js emits on the channel and Echo's `.error()` receives)."""
        conn = session.conn
        conn.write(self._frame(codec.error(None, error.message)))
        frame = codec.subscription_error(
            error.channel, error.error_type, error.message, error.status
        )
        conn.write(self._frame(frame))

    async def _unsubscribe(self, session: Session, channel: str) -> None:
        # Reference 2.3: unsubscribing from a channel the socket is not in is ignored.
        if channel not in session.channels:
            return
        member_id = session.channels[channel]
        self.hub.unsubscribe(session, channel)
        await self._channels.remove(session.app.id, channel, session.socket_id)
        if member_id is not None:
            await self._leave_presence(session, channel, member_id)

    async def _leave_presence(self, session: Session, channel: str, user_id: str) -> None:
        app_id = session.app.id
        if await self._presence.leave(app_id, channel, user_id, session.socket_id):
            data = codec.member_removed_data(user_id)
            self.publish(Envelope(app_id, channel, "pusher_internal:member_removed", data))

    async def _leave_all(self, session: Session) -> None:
        for channel in list(session.channels):
            await self._unsubscribe(session, channel)

    # ---- the fan-out path -------------------------------------------------------------

    def publish(self, envelope: Envelope) -> None:
        self._broker.publish(envelope)

    def deliver(self, envelope: Envelope) -> None:
        """Called by the broker on every node: encode once, write the same bytes to each."""
        subscribers = self.hub.subscribers(envelope.app_id, envelope.channel)
        if not subscribers:
            return
        text = codec.channel_event(
            envelope.event, envelope.channel, envelope.data, envelope.user_id
        )
        frame = self._frame(text)
        excluded = envelope.exclude_socket_id
        for socket_id, session in subscribers.items():
            if socket_id != excluded:
                session.conn.write(frame)

    # ---- HTTP API queries -------------------------------------------------------------

    def trigger(
        self, app: App, channels: Iterable[str], event: str, data: str, exclude: SocketId | None
    ) -> None:
        for channel in channels:
            self.publish(Envelope(app.id, channel, event, data, exclude))

    async def subscription_count(self, app_id: AppId, channel: str) -> int:
        return await self._channels.count(app_id, channel)

    async def user_count(self, app_id: AppId, channel: str) -> int:
        return await self._presence.count(app_id, channel)

    async def occupied_channels(self, app_id: AppId, prefix: str) -> dict[str, int]:
        return await self._channels.occupied(app_id, prefix)

    async def presence_user_ids(self, app_id: AppId, channel: str) -> list[str]:
        return list(await self._presence.members(app_id, channel))

    # ---- timers and shutdown ----------------------------------------------------------

    def sweep(self) -> None:
        """Liveness check for every socket (reference 1.4); run every few seconds."""
        now = self._clock()
        settings = self.settings
        ping = self._frame(codec.PING)
        for session in list(self.hub.sessions.values()):
            state = session.liveness(now, settings.activity_timeout, settings.pong_timeout)
            if state is Liveness.SEND_PING:
                session.ping_sent_at = now
                session.conn.write(ping)
            elif state is Liveness.DEAD:
                self.report(
                    session,
                    ConnectionRefused(codes.PONG_NOT_RECEIVED, "Pong reply not received in time"),
                )

    def close_all(self, code: int, reason: str) -> None:
        """Tell every client to go (4200: reconnect at once, to another node)."""
        for session in list(self.hub.sessions.values()):
            self.report(session, ConnectionRefused(code, reason))

    async def drain(self) -> None:
        """Wait for every in-flight step (leaving channels, publishing) to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("node step failed", exc_info=task.exception())


def _check_protocol(protocol: str | None) -> None:
    """Reference 1.7: 4008 missing, 4006 not an integer, 4007 unsupported."""
    if protocol is None or protocol == "":
        raise ConnectionRefused(codes.NO_PROTOCOL, "No protocol version supplied")
    if not (protocol.isascii() and protocol.isdigit()):
        raise ConnectionRefused(codes.INVALID_VERSION, f"Invalid version string: {protocol}")
    if int(protocol) not in SUPPORTED_PROTOCOLS:
        raise ConnectionRefused(
            codes.UNSUPPORTED_PROTOCOL, f"Unsupported protocol version: {protocol}"
        )
