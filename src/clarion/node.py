"""The orchestrator: this process's sockets, the ports, and the one fan-out path.

Everything that publishes (client events, HTTP API triggers, presence changes) goes through
`publish` -> broker -> `deliver`, which encodes a frame once and writes the same bytes to every
local subscriber. Protocol decisions live in `protocol` and `core`; this module sequences them,
talks to the ports and maps errors to the wire (reference 1.5, 1.6, 2.5).
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from clarion.core.apps import App
from clarion.core.envelope import Envelope, Target
from clarion.core.hub import Hub
from clarion.core.liveness import DeadlineWheel
from clarion.core.session import (
    Authorized,
    Liveness,
    Member,
    Session,
    authorize_client_event,
    authorize_signin,
    authorize_subscribe,
)
from clarion.eager import run_eagerly
from clarion.ports import (
    AppStore,
    Broker,
    CachedEvent,
    CacheStore,
    ChangeKind,
    ChannelStore,
    ClusterChange,
    Connection,
    ConnectionQuota,
    FanOut,
    PresenceStore,
    UserStore,
    WebhookSink,
)
from clarion.protocol import codec
from clarion.protocol import errors as codes
from clarion.protocol import webhooks as hooks
from clarion.protocol.channels import (
    SERVER_TO_USER_PREFIX,
    ChannelKind,
    channel_kind,
    is_cache_channel,
)
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
from clarion.protocol.webhooks import WebhookEvent
from clarion.types import AppId, SocketId

# Reference 1.7: every current client sends 7; 5 and 6 differ only in details we also honour.
SUPPORTED_PROTOCOLS = range(5, 8)
# As clients send them (`?protocol=7`): accepted without parsing, once per connection.
_SUPPORTED_TEXT = frozenset(str(version) for version in SUPPORTED_PROTOCOLS)
# Reference 2.7: above 100 subscribers, subscription_count goes out at most once per 5 s.
SUBSCRIPTION_COUNT_THROTTLE_ABOVE = 100
SUBSCRIPTION_COUNT_INTERVAL_S = 5.0


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
        users: UserStore,
        cache: CacheStore,
        quota: ConnectionQuota,
        webhooks: WebhookSink,
        frame: Callable[[str], bytes],
        write_each: FanOut,
        clock: Callable[[], float],
        settings: NodeSettings | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.apps = apps
        self.hub = Hub()
        # Subscribes still waiting on a store for the roster or the cached event: the frames
        # their channel gets meanwhile, sent after `subscription_succeeded` (reference 2.3:
        # nothing of a channel comes before it).
        self._held: dict[tuple[AppId, str], dict[SocketId, list[bytes]]] = {}
        # Which sockets the liveness sweep must look at, and when (so not all every second).
        self._liveness: DeadlineWheel[Session] = DeadlineWheel()
        self._broker = broker
        self._presence = presence
        self._channels = channels
        self._users = users
        self._cache = cache
        self._quota = quota
        self._webhooks = webhooks
        self._frame = frame
        self._write_each = write_each
        self._clock = clock
        self.settings = settings or NodeSettings()
        self._log = logger or logging.getLogger("clarion.node")
        self._tasks: set[asyncio.Task[None]] = set()
        self._pong = frame(codec.PONG)
        self._random = random.Random(secrets.randbits(128))
        # Reference 2.7 throttle: when each channel's count was last sent, and which have a
        # deferred send scheduled.
        self._count_sent: dict[tuple[AppId, str], float] = {}
        self._count_due: dict[tuple[AppId, str], asyncio.TimerHandle] = {}
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
        self._file_liveness(session)
        if app.max_connections:
            # The quota may be cluster-wide (a store round trip): the client's messages wait
            # in the inbox until the socket is admitted or refused.
            session.inbox = deque()
            self._run_eagerly(self._admit_counted(session))
        else:
            self._established(session)
        return session

    def _established(self, session: Session) -> None:
        text = codec.connection_established(session.socket_id, self.settings.activity_timeout)
        session.conn.write(self._frame(text))

    async def _admit_counted(self, session: Session) -> None:
        """Reference 1.6: 4004 when the app is over its connection quota, cluster-wide."""
        app = session.app
        try:
            session.counted = await self._quota.acquire(app.id, app.max_connections)
        except Exception:
            session.inbox = None
            raise
        inbox = session.inbox
        assert inbox is not None
        if not session.closed:
            if session.counted:
                self._established(session)
            else:
                refused = ConnectionRefused(
                    codes.OVER_QUOTA, "Application is over its connection quota"
                )
                self.report(session, refused)
        if not inbox:
            session.inbox = None
            return
        await self._run_serial(session, inbox.popleft())

    def _admit(self, app_key: str, protocol: str | None, origin: str | None) -> App:
        _check_protocol(protocol)
        app = self.apps.by_key(app_key)
        if app is None:
            raise ConnectionRefused(codes.UNKNOWN_APP, f"App key {app_key} does not exist")
        if not app.enabled:
            raise ConnectionRefused(codes.APP_DISABLED, "Application is disabled")
        # `App` stays interpreted in the compiled build: ask only when there is an allow-list.
        if app.allowed_origins and not app.origin_allowed(origin):
            raise ConnectionRefused(codes.UNAUTHORIZED, f"Origin {origin} is not allowed")
        return app

    def _new_socket_id(self) -> SocketId:
        # Reference 1.3: `<digits>.<digits>`, which every server SDK validates. Unguessable
        # enough from a PRNG seeded by the OS (a socket id grants nothing without the app's
        # signature for it); `secrets` would cost a getrandom syscall per connection.
        while True:
            draw = self._random.getrandbits
            sid = SocketId(f"{draw(30) % 10**9 + 1}.{draw(30) % 10**9 + 1}")
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
        self._liveness.discard(session.socket_id)
        if session.inbox is not None:
            session.inbox.append(None)
        elif session.channels or session.user_id is not None or session.counted:
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
        else:
            return False
        return True

    def _client_event(self, session: Session, msg: ClientEvent) -> None:
        try:
            envelope = authorize_client_event(session, msg, self._clock())
        except PusherError as error:
            self.report(session, error)
            return
        self.publish(envelope)
        if not session.app.webhooks:  # the common case: no event object built per message
            return
        self._webhook(
            session.app,
            WebhookEvent(
                hooks.CLIENT_EVENT,
                envelope.channel,
                user_id=envelope.user_id,
                event=envelope.event,
                data=envelope.data,
                socket_id=session.socket_id,
            ),
        )

    def _start_serial(self, session: Session, first: ClientMessage | None) -> None:
        session.inbox = deque()
        self._run_eagerly(self._run_serial(session, first))

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
                step = None if self._handle_now(session, item) else self._stored_step(session, item)
                if step is not None:
                    await step
                if not inbox:
                    return
                item = inbox.popleft()
        finally:
            session.inbox = None
            if session.closed and (
                session.channels or session.user_id is not None or session.counted
            ):
                await self._leave_all(session)

    def _stored_step(
        self, session: Session, msg: ClientMessage
    ) -> Coroutine[Any, Any, None] | None:
        """The store-backed step for `msg` (a coroutine for `_run_serial` to await), if any.
        A plain function, not one more coroutine level: a subscribe is on every connection's
        setup path."""
        if session.closed:
            return None
        if isinstance(msg, Subscribe):
            return self._subscribe(session, msg)
        if isinstance(msg, Unsubscribe):
            return self._unsubscribe(session, msg.channel)
        if isinstance(msg, Signin):
            return self._signin(session, msg)
        return None

    async def _subscribe(self, session: Session, msg: Subscribe) -> None:
        try:
            granted = authorize_subscribe(session, msg)
            # No coroutine at all for the channels that have no members (most subscribes).
            first_member = granted.member is not None and await self._join_presence(
                session, granted
            )
        except SubscriptionError as refused:
            self._refuse_subscription(session, refused)
            return
        except PusherError as error:  # another name: compiled, a variable has one type
            self.report(session, error)
            return
        app, channel = session.app, granted.channel
        if granted.kind is ChannelKind.SERVER_TO_USER:
            # Reference 2.10: delivered through the user index, so not a channel subscriber.
            session.channels[channel] = None
            session.conn.write(self._frame(codec.subscription_succeeded(channel)))
            return
        count = await self._channels.add(app.id, channel, session.socket_id)
        member = granted.member
        cache = is_cache_channel(channel)
        cached: CachedEvent | None = None
        data = "{}"
        held: list[bytes] = []
        if member is not None or cache:
            # The roster and the cached event may wait on the stores (Redis); what the channel
            # gets meanwhile is held, so the socket misses nothing and sees none of it early.
            held = self._hold(app.id, channel, session.socket_id)
            try:
                if member is not None:
                    data = codec.presence_roster(await self._presence.members(app.id, channel))
                if cache:
                    cached = await self._cache.get(app.id, channel)
            finally:
                self._unhold(app.id, channel, session.socket_id)
        self.hub.subscribe(session, channel, member.user_id if member else None)
        if granted.kind.needs_auth:
            session.authorized = True
        session.conn.write(self._frame(codec.subscription_succeeded(channel, data)))
        if count == 1:
            self._webhook(app, WebhookEvent(hooks.CHANNEL_OCCUPIED, channel))
        if member is not None and first_member:
            self._announce_member(session, channel, member)
        if cache:
            self._send_cached(session, channel, cached)
        for frame in held:
            session.conn.write(frame)
        self._subscription_count_changed(app, channel, count)

    def _hold(self, app_id: AppId, channel: str, socket_id: SocketId) -> list[bytes]:
        frames: list[bytes] = []
        self._held.setdefault((app_id, channel), {})[socket_id] = frames
        return frames

    def _unhold(self, app_id: AppId, channel: str, socket_id: SocketId) -> None:
        holders = self._held.get((app_id, channel))
        if holders is not None:
            holders.pop(socket_id, None)
            if not holders:
                del self._held[(app_id, channel)]

    def _announce_member(self, session: Session, channel: str, member: Member) -> None:
        """Reference 2.6 / 6: a user's first socket in the channel; the others see it join."""
        app = session.app
        added = codec.member_added_data(member.user_id, member.user_info)
        self.publish(
            Envelope(app.id, channel, "pusher_internal:member_added", added, session.socket_id)
        )
        self._webhook(app, WebhookEvent(hooks.MEMBER_ADDED, channel, user_id=member.user_id))

    async def _join_presence(self, session: Session, granted: Authorized) -> bool:
        """Add the member within the app's limit; True for the user's first socket (2.6)."""
        member = granted.member
        if member is None:
            return False
        app, channel = session.app, granted.channel
        limit = app.max_presence_members
        if await self._presence.count(app.id, channel) >= limit:
            members = await self._presence.members(app.id, channel)
            if member.user_id not in members:
                raise SubscriptionError(
                    channel, "LimitReached", f"Presence channel is full ({limit} members)", 4100
                )
        return await self._presence.join(
            app.id, channel, member.user_id, session.socket_id, member.user_info
        )

    def _send_cached(self, session: Session, channel: str, cached: CachedEvent | None) -> None:
        """Reference 2.8: the last event, or `pusher:cache_miss` (and its webhook)."""
        if session.closed:
            return
        if cached is None:
            session.conn.write(self._frame(codec.cache_miss(channel)))
            self._webhook(session.app, WebhookEvent(hooks.CACHE_MISS, channel))
        else:
            frame = codec.channel_event(cached.event, channel, cached.data)
            session.conn.write(self._frame(frame))

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
        if channel_kind(channel) is ChannelKind.SERVER_TO_USER:
            return
        app = session.app
        count = await self._channels.remove(app.id, channel, session.socket_id)
        if member_id is not None:
            await self._leave_presence(session, channel, member_id)
        if count == 0:
            self._webhook(app, WebhookEvent(hooks.CHANNEL_VACATED, channel))
        self._subscription_count_changed(app, channel, count)

    async def _leave_presence(self, session: Session, channel: str, user_id: str) -> None:
        app = session.app
        if await self._presence.leave(app.id, channel, user_id, session.socket_id):
            data = codec.member_removed_data(user_id)
            self.publish(Envelope(app.id, channel, "pusher_internal:member_removed", data))
            self._webhook(app, WebhookEvent(hooks.MEMBER_REMOVED, channel, user_id=user_id))

    async def _leave_all(self, session: Session) -> None:
        for channel in list(session.channels):
            await self._unsubscribe(session, channel)
        await self._sign_out(session)
        if session.counted:
            session.counted = False
            await self._quota.release(session.app.id)

    # ---- users (reference 3.2-3.4) ----------------------------------------------------

    async def _signin(self, session: Session, msg: Signin) -> None:
        try:
            signed = authorize_signin(session, msg)
        except PusherError as error:
            self.report(session, error)
            return
        app = session.app
        again = session.user_id == signed.user_id
        session.user_info = signed.user_info
        self.hub.sign_in(session, signed.user_id, signed.watchlist)
        session.authorized = True
        if signed.watchlist:
            session.watch_buffer = []
        # Asked before this socket counts as online, so a user watching itself hears of its
        # own arrival once (from the `online` event below), not twice.
        online = await self._users.online(app.id, signed.watchlist) if signed.watchlist else []
        came_online = False
        if not again:
            came_online = await self._users.sign_in(app.id, signed.user_id, session.socket_id)
        buffered, session.watch_buffer = session.watch_buffer, None
        if session.closed:
            return
        session.conn.write(self._frame(codec.signin_success(signed.user_data)))
        if signed.watchlist_truncated:
            message = f"Watchlist limit exceeded: only the first {app.max_watchlist_size} ids count"
            self.report(session, PusherError(codes.WATCHLIST_LIMIT, message))
        if signed.watchlist:
            session.conn.write(self._frame(codec.watchlist_events("online", online)))
            self._replay_watch_events(session, buffered or [], set(online))
        if came_online:
            self._publish_presence_of(app, signed.user_id, "online")

    def _replay_watch_events(
        self, session: Session, buffered: list[tuple[str, str]], online: set[str]
    ) -> None:
        """What changed while the sign-in waited, minus what the initial list already says."""
        for event, user_id in buffered:
            if (event == "online") != (user_id in online):
                session.conn.write(self._frame(codec.watchlist_events(event, [user_id])))
                if event == "online":
                    online.add(user_id)
                else:
                    online.discard(user_id)

    async def _sign_out(self, session: Session) -> None:
        user_id = session.user_id
        if user_id is None:
            return
        session.user_id = None
        app = session.app
        if await self._users.sign_out(app.id, user_id, session.socket_id):
            self._publish_presence_of(app, user_id, "offline")

    def _publish_presence_of(self, app: App, user_id: str, name: str) -> None:
        """Reference 3.3: tell every watcher (on every node) the user went online/offline."""
        self.publish(Envelope(app.id, "", name, "", user_id=user_id, target=Target.WATCHERS))

    def terminate_user(self, app: App, user_id: str) -> None:
        """Reference 3.4: close every socket signed in as the user, on every node."""
        self.publish(Envelope(app.id, "", "", "", user_id=user_id, target=Target.TERMINATE_USER))

    # ---- subscription counts (reference 2.7) ------------------------------------------

    def _subscription_count_changed(self, app: App, channel: str, count: int) -> None:
        if channel_kind(channel) is ChannelKind.PRESENCE:
            return
        wanted = app.enable_subscription_count or (
            bool(app.webhooks) and app.wants_webhook(hooks.SUBSCRIPTION_COUNT)
        )
        if not wanted:
            return
        key = (app.id, channel)
        now = self._clock()
        last = self._count_sent.get(key)
        busy = count > SUBSCRIPTION_COUNT_THROTTLE_ABOVE
        if busy and last is not None and now - last < SUBSCRIPTION_COUNT_INTERVAL_S:
            if key not in self._count_due:
                delay = last + SUBSCRIPTION_COUNT_INTERVAL_S - now
                loop = asyncio.get_running_loop()
                self._count_due[key] = loop.call_later(delay, self._spawn_count_flush, key)
            return
        self._send_count(app, channel, count, now)

    def _spawn_count_flush(self, key: tuple[AppId, str]) -> None:
        self._spawn(self._flush_count(key))

    async def _flush_count(self, key: tuple[AppId, str]) -> None:
        self._count_due.pop(key, None)
        app = self.apps.by_id(key[0])
        if app is None:
            return
        count = await self._channels.count(app.id, key[1])
        self._send_count(app, key[1], count, self._clock())

    def _send_count(self, app: App, channel: str, count: int, now: float) -> None:
        key = (app.id, channel)
        deferred = self._count_due.pop(key, None)
        if deferred is not None:  # this send carries the newer count already
            deferred.cancel()
        if count:
            self._count_sent[key] = now
        else:
            self._count_sent.pop(key, None)
        if app.enable_subscription_count and count:
            data = codec.subscription_count_data(count)
            self.publish(Envelope(app.id, channel, "pusher_internal:subscription_count", data))
        self._webhook(
            app, WebhookEvent(hooks.SUBSCRIPTION_COUNT, channel, subscription_count=count)
        )

    def _webhook(self, app: App, event: WebhookEvent) -> None:
        if app.webhooks:
            self._webhooks.emit(app, event)

    # ---- transitions no local socket caused (ports.ClusterChange) ----------------------

    def apply_cluster_changes(self, changes: Iterable[ClusterChange]) -> None:
        """Announce what the stores observed on their own: a dead node's members and
        subscriptions expiring, or this node's state returning after its lease was lost. The
        events and webhooks are the ones a socket leaving or joining would cause (2.6, 6)."""
        for change in changes:
            app = self.apps.by_id(change.app_id)
            if app is not None:
                self._apply_cluster_change(app, change)

    def _apply_cluster_change(self, app: App, change: ClusterChange) -> None:
        kind, channel = change.kind, change.channel
        if kind is ChangeKind.MEMBER_REMOVED:
            data = codec.member_removed_data(change.user_id)
            self.publish(Envelope(app.id, channel, "pusher_internal:member_removed", data))
            self._webhook(app, WebhookEvent(hooks.MEMBER_REMOVED, channel, user_id=change.user_id))
        elif kind is ChangeKind.MEMBER_ADDED:
            data = codec.member_added_data(change.user_id, change.user_info)
            self.publish(Envelope(app.id, channel, "pusher_internal:member_added", data))
            self._webhook(app, WebhookEvent(hooks.MEMBER_ADDED, channel, user_id=change.user_id))
        elif kind is ChangeKind.CHANNEL_COUNT:
            if change.before == 0 and change.count > 0:
                self._webhook(app, WebhookEvent(hooks.CHANNEL_OCCUPIED, channel))
            elif change.before > 0 and change.count == 0:
                self._webhook(app, WebhookEvent(hooks.CHANNEL_VACATED, channel))
            self._subscription_count_changed(app, channel, change.count)
        elif kind is ChangeKind.USER_ONLINE:
            self._publish_presence_of(app, change.user_id, "online")
        else:
            self._publish_presence_of(app, change.user_id, "offline")

    # ---- the fan-out path -------------------------------------------------------------

    def publish(self, envelope: Envelope) -> None:
        self._broker.publish(envelope)

    def deliver(self, envelope: Envelope) -> None:
        """Called by the broker on every node: encode once, write the same bytes to each."""
        if envelope.target is Target.CHANNEL:
            self._deliver_to_channel(envelope)
        elif envelope.target is Target.WATCHERS:
            self._deliver_to_watchers(envelope)
        else:
            self._terminate_local(envelope)

    def _deliver_to_channel(self, envelope: Envelope) -> None:
        channel = envelope.channel
        if channel.startswith(SERVER_TO_USER_PREFIX):
            user_id = channel[len(SERVER_TO_USER_PREFIX) :]
            subscribers = self.hub.user_sessions(envelope.app_id, user_id)
        else:
            subscribers = self.hub.subscribers(envelope.app_id, channel)
        held = self._held.get((envelope.app_id, channel)) if self._held else None
        if not subscribers and held is None:
            return
        text = codec.channel_event(envelope.event, channel, envelope.data, envelope.user_id)
        frame = self._frame(text)
        excluded = envelope.exclude_socket_id
        if subscribers:
            self._write_each(subscribers, frame, excluded)
        if held is not None:
            for socket_id, frames in held.items():
                if socket_id != excluded:
                    frames.append(frame)

    def _deliver_to_watchers(self, envelope: Envelope) -> None:
        assert envelope.user_id is not None
        watchers = self.hub.watchers(envelope.app_id, envelope.user_id)
        if not watchers:
            return
        frame = self._frame(codec.watchlist_events(envelope.event, [envelope.user_id]))
        for session in watchers.values():
            if session.watch_buffer is not None:
                session.watch_buffer.append((envelope.event, envelope.user_id))
            else:
                session.conn.write(frame)

    def _terminate_local(self, envelope: Envelope) -> None:
        assert envelope.user_id is not None
        sessions = self.hub.user_sessions(envelope.app_id, envelope.user_id)
        # Reference 3.4: 4009, so pusher-js stays disconnected instead of signing in again.
        refused = ConnectionRefused(codes.UNAUTHORIZED, "Connection terminated by the app")
        for session in list(sessions.values()):
            self.report(session, refused)

    # ---- HTTP API queries -------------------------------------------------------------

    async def trigger(
        self, app: App, channels: Iterable[str], event: str, data: str, exclude: SocketId | None
    ) -> None:
        for channel in channels:
            if is_cache_channel(channel):
                # Reference 2.8: kept before it is published, so no subscriber misses both.
                await self._cache.put(app.id, channel, event, data, app.cache_ttl_seconds)
            self.publish(Envelope(app.id, channel, event, data, exclude))

    async def cached(self, app_id: AppId, channel: str) -> CachedEvent | None:
        return await self._cache.get(app_id, channel)

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
        """Liveness check (reference 1.4) and authorization timeout (3.2); run every second.

        Only the sockets whose check may have fallen due are taken out and looked at; each is
        filed again under its next time. One filed for a time already past waits for the next
        sweep, as with a full scan (a socket pinged now is closed for want of auth one sweep
        later, not in this one).
        """
        now = self._clock()
        settings = self.settings
        ping: bytes | None = None
        for session in self._liveness.due(now):
            if session.closed:  # closed by an earlier report in this loop: not filed again
                continue
            state = session.liveness(now, settings.activity_timeout, settings.pong_timeout)
            if state is Liveness.SEND_PING:
                if ping is None:
                    ping = self._frame(codec.PING)
                session.ping_sent_at = now
                session.conn.write(ping)
            elif state is Liveness.DEAD:
                self.report(
                    session,
                    ConnectionRefused(codes.PONG_NOT_RECEIVED, "Pong reply not received in time"),
                )
            elif session.unauthorized_too_long(now):
                self.report(
                    session,
                    ConnectionRefused(
                        codes.UNAUTHORIZED, "Connection not authorized within timeout"
                    ),
                )
            self._file_liveness(session)

    def _file_liveness(self, session: Session) -> None:
        settings = self.settings
        due = session.next_check(settings.activity_timeout, settings.pong_timeout)
        self._liveness.file(session, due)

    def close_all(self, code: int, reason: str) -> None:
        """Tell every client to go (4200: reconnect at once, to another node)."""
        for session in list(self.hub.sessions.values()):
            self.report(session, ConnectionRefused(code, reason))

    async def drain(self) -> None:
        """Wait for every in-flight step (leaving channels, publishing) to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _run_eagerly(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` now, up to its first real suspension; a task drives only the rest.

        With the memory stores a subscribe never suspends, so the common case costs no task
        and no extra loop iteration (Python 3.12's eager tasks, by hand for 3.11).
        """
        try:
            rest = run_eagerly(coro)
        except Exception:
            self._log.exception("node step failed")
            return
        if rest is not None:
            self._spawn(rest)

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
    if protocol in _SUPPORTED_TEXT:
        return
    if protocol is None or protocol == "":
        raise ConnectionRefused(codes.NO_PROTOCOL, "No protocol version supplied")
    if not (protocol.isascii() and protocol.isdigit()):
        raise ConnectionRefused(codes.INVALID_VERSION, f"Invalid version string: {protocol}")
    if int(protocol) not in SUPPORTED_PROTOCOLS:
        raise ConnectionRefused(
            codes.UNSUPPORTED_PROTOCOL, f"Unsupported protocol version: {protocol}"
        )
