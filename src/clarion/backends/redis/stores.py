"""Redis implementations of the state ports, exact across the cluster (docs/cluster.md).

Each store keeps this node's own part in memory (which sockets are in which channel, which
members and users it holds) and writes to Redis only the node's contribution: one entry per
(channel, node) or (member, node), never one per socket. That local part is what lets the node
answer on its own while Redis is unreachable, and replay itself when Redis is back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from redis.exceptions import RedisError

from clarion.backends.memory import MemoryCacheStore
from clarion.backends.redis.cluster import REAP_BATCH, RedisCluster
from clarion.backends.redis.pipeline import CommandPipeline
from clarion.backends.redis.scripts import (
    CHANNEL_SET,
    CONN_ACQUIRE,
    CONN_SET,
    MEMBER_IN,
    MEMBER_OUT,
    REAP_CHANNELS,
    REAP_CONNS,
    REAP_PRESENCE,
    REAP_USERS,
)
from clarion.core.presence import Roster
from clarion.ports import CachedEvent, ChangeKind, ClusterChange
from clarion.types import AppId

_FAILED = object()


def _entry(*parts: str) -> str:
    """A node index member (decoded by the Lua scripts with cjson)."""
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _Shared:
    def __init__(self, cluster: RedisCluster) -> None:
        self._cluster = cluster
        self._pipeline = cluster.pipeline
        self._nodes = cluster.key("nodes")

    def _key(self, *parts: str) -> str:
        return self._cluster.key(*parts)

    async def _ask(self, future: Awaitable[Any]) -> Any:
        """The reply, or `_FAILED` (and the cluster degrades) when Redis did not answer."""
        try:
            return await future
        except (RedisError, OSError) as error:
            self._cluster.failed(error)
            return _FAILED


async def _drain(call: Callable[[], Awaitable[Any]], on_batch: Callable[[Any], int]) -> None:
    """Call a reap script until a batch comes back with nothing in it."""
    while True:
        if on_batch(await call()) == 0:
            return


class RedisChannelStore(_Shared):
    def __init__(self, cluster: RedisCluster) -> None:
        super().__init__(cluster)
        self._local: dict[tuple[AppId, str], set[str]] = {}
        self._replayed: list[tuple[AppId, str]] = []

    async def add(self, app_id: AppId, channel: str, socket_id: str) -> int:
        sockets = self._local.setdefault((app_id, channel), set())
        sockets.add(socket_id)
        return await self._publish(app_id, channel, len(sockets))

    async def remove(self, app_id: AppId, channel: str, socket_id: str) -> int:
        sockets = self._local.get((app_id, channel))
        if sockets is None:
            return await self.count(app_id, channel)
        sockets.discard(socket_id)
        here = len(sockets)
        if not here:
            del self._local[(app_id, channel)]
        return await self._publish(app_id, channel, here)

    async def _publish(self, app_id: AppId, channel: str, here: int) -> int:
        if not self._cluster.healthy:
            return here
        reply = await self._ask(self._set(self._cluster.node_id, app_id, channel, here))
        return here if reply is _FAILED else int(reply[1])

    def _set(self, node_id: str, app_id: AppId, channel: str, here: int) -> asyncio.Future[Any]:
        keys = [self._nodes, self._key("node", node_id, "chans"), self._key("chans", app_id)]
        args = [node_id, _entry(app_id, channel), channel, here]
        return self._pipeline.script(CHANNEL_SET, keys, args)

    async def count(self, app_id: AppId, channel: str) -> int:
        if self._cluster.healthy:
            reply = await self._ask(
                self._pipeline.call("HGET", self._key("chans", app_id), channel)
            )
            if reply is not _FAILED:
                return int(reply or 0)
        return len(self._local.get((app_id, channel), ()))

    async def occupied(self, app_id: AppId, prefix: str) -> dict[str, int]:
        if self._cluster.healthy:
            reply = await self._ask(self._pipeline.call("HGETALL", self._key("chans", app_id)))
            if reply is not _FAILED:
                counts = {_text(k): int(v) for k, v in reply.items()}
                return {name: n for name, n in counts.items() if name.startswith(prefix)}
        return {
            channel: len(sockets)
            for (app, channel), sockets in self._local.items()
            if app == app_id and channel.startswith(prefix)
        }

    # ---- ClusterStore -------------------------------------------------------------------

    def replay(self, node_id: str) -> list[asyncio.Future[Any]]:
        self._replayed = list(self._local)
        return [self._set(node_id, a, c, len(self._local[(a, c)])) for a, c in self._replayed]

    def replayed(self, results: list[Any]) -> list[ClusterChange]:
        return [
            ClusterChange(
                ChangeKind.CHANNEL_COUNT, app, channel, count=int(after), before=int(before)
            )
            for (app, channel), (before, after) in zip(self._replayed, results, strict=True)
            if int(before) == 0
        ]

    async def reap(self, pipeline: CommandPipeline, dead_node: str) -> list[ClusterChange]:
        changes: list[ClusterChange] = []

        def collect(flat: list[Any]) -> int:
            for i in range(0, len(flat), 3):
                app, channel = json.loads(_text(flat[i]))
                removed, after = int(flat[i + 1]), int(flat[i + 2])
                changes.append(
                    ClusterChange(
                        ChangeKind.CHANNEL_COUNT, app, channel, count=after, before=after + removed
                    )
                )
            return len(flat)

        keys = [self._key("node", dead_node, "chans")]
        args = [self._cluster.prefix, REAP_BATCH]
        await _drain(lambda: pipeline.script(REAP_CHANNELS, keys, args), collect)
        return changes


class RedisPresenceStore(_Shared):
    def __init__(self, cluster: RedisCluster) -> None:
        super().__init__(cluster)
        self._rosters: dict[tuple[AppId, str], Roster] = {}
        self._replayed: list[tuple[AppId, str, str, Any]] = []

    async def join(
        self, app_id: AppId, channel: str, user_id: str, socket_id: str, user_info: Any
    ) -> bool:
        roster = self._rosters.setdefault((app_id, channel), Roster())
        if not roster.join(user_id, socket_id, user_info):
            return False  # the user is on this node already, so in the channel already
        if not self._cluster.healthy:
            return True
        reply = await self._ask(self._in(self._cluster.node_id, app_id, channel, user_id))
        return True if reply is _FAILED else bool(reply)

    async def leave(self, app_id: AppId, channel: str, user_id: str, socket_id: str) -> bool:
        roster = self._rosters.get((app_id, channel))
        if roster is None:
            return False
        last_here = roster.leave(user_id, socket_id)
        if not len(roster):
            del self._rosters[(app_id, channel)]
        if not last_here:
            return False
        if not self._cluster.healthy:
            return True
        node_id = self._cluster.node_id
        args = [node_id, _entry(app_id, channel, user_id), user_id, ""]
        reply = await self._ask(
            self._pipeline.script(MEMBER_OUT, self._keys(node_id, app_id, channel), args)
        )
        return True if reply is _FAILED else bool(reply)

    def _keys(self, node_id: str, app_id: AppId, channel: str) -> list[str]:
        return [
            self._nodes,
            self._key("node", node_id, "pres"),
            self._key("pc", app_id, channel),
            self._key("pm", app_id, channel),
        ]

    def _in(self, node_id: str, app_id: AppId, channel: str, user_id: str) -> asyncio.Future[Any]:
        info = self._rosters[(app_id, channel)].members().get(user_id)
        info_json = json.dumps(info, ensure_ascii=False)
        args = [node_id, _entry(app_id, channel, user_id), user_id, info_json]
        return self._pipeline.script(MEMBER_IN, self._keys(node_id, app_id, channel), args)

    async def members(self, app_id: AppId, channel: str) -> dict[str, Any]:
        if self._cluster.healthy:
            reply = await self._ask(
                self._pipeline.call("HGETALL", self._key("pm", app_id, channel))
            )
            if reply is not _FAILED:
                return {_text(k): json.loads(v) for k, v in reply.items()}
        roster = self._rosters.get((app_id, channel))
        return roster.members() if roster is not None else {}

    async def count(self, app_id: AppId, channel: str) -> int:
        if self._cluster.healthy:
            reply = await self._ask(self._pipeline.call("HLEN", self._key("pm", app_id, channel)))
            if reply is not _FAILED:
                return int(reply)
        roster = self._rosters.get((app_id, channel))
        return len(roster) if roster is not None else 0

    # ---- ClusterStore -------------------------------------------------------------------

    def replay(self, node_id: str) -> list[asyncio.Future[Any]]:
        self._replayed = [
            (app, channel, user_id, info)
            for (app, channel), roster in self._rosters.items()
            for user_id, info in roster.members().items()
        ]
        return [self._in(node_id, app, channel, user) for app, channel, user, _ in self._replayed]

    def replayed(self, results: list[Any]) -> list[ClusterChange]:
        return [
            ClusterChange(ChangeKind.MEMBER_ADDED, app, channel, user_id=user, user_info=info)
            for (app, channel, user, info), first in zip(self._replayed, results, strict=True)
            if first
        ]

    async def reap(self, pipeline: CommandPipeline, dead_node: str) -> list[ClusterChange]:
        changes: list[ClusterChange] = []

        def collect(gone: list[Any]) -> int:
            for member in gone:
                app, channel, user_id = json.loads(_text(member))
                changes.append(ClusterChange(ChangeKind.MEMBER_REMOVED, app, channel, user_id))
            return len(gone)

        keys = [self._key("node", dead_node, "pres")]
        args = [self._cluster.prefix, REAP_BATCH]
        await _drain(lambda: pipeline.script(REAP_PRESENCE, keys, args), collect)
        return changes


class RedisUserStore(_Shared):
    def __init__(self, cluster: RedisCluster) -> None:
        super().__init__(cluster)
        self._local: dict[tuple[AppId, str], set[str]] = {}
        self._replayed: list[tuple[AppId, str]] = []

    async def sign_in(self, app_id: AppId, user_id: str, socket_id: str) -> bool:
        sockets = self._local.setdefault((app_id, user_id), set())
        first_here = not sockets
        sockets.add(socket_id)
        if not first_here:
            return False
        if not self._cluster.healthy:
            return True
        reply = await self._ask(self._in(self._cluster.node_id, app_id, user_id))
        return True if reply is _FAILED else bool(reply)

    async def sign_out(self, app_id: AppId, user_id: str, socket_id: str) -> bool:
        sockets = self._local.get((app_id, user_id))
        if sockets is None or socket_id not in sockets:
            return False
        sockets.discard(socket_id)
        if sockets:
            return False
        del self._local[(app_id, user_id)]
        if not self._cluster.healthy:
            return True
        node_id = self._cluster.node_id
        args = [node_id, _entry(app_id, user_id), user_id, ""]
        reply = await self._ask(
            self._pipeline.script(MEMBER_OUT, self._keys(node_id, app_id), args)
        )
        return True if reply is _FAILED else bool(reply)

    def _keys(self, node_id: str, app_id: AppId) -> list[str]:
        users = self._key("uc", app_id)
        # The last key is the roster for presence; users have none (the count hash again).
        return [self._nodes, self._key("node", node_id, "users"), users, users]

    def _in(self, node_id: str, app_id: AppId, user_id: str) -> asyncio.Future[Any]:
        args = [node_id, _entry(app_id, user_id), user_id, ""]
        return self._pipeline.script(MEMBER_IN, self._keys(node_id, app_id), args)

    async def online(self, app_id: AppId, user_ids: Iterable[str]) -> list[str]:
        wanted = list(user_ids)
        if not wanted:
            return []
        if self._cluster.healthy:
            reply = await self._ask(self._pipeline.call("HMGET", self._key("uc", app_id), *wanted))
            if reply is not _FAILED:
                return [uid for uid, n in zip(wanted, reply, strict=True) if n and int(n) > 0]
        return [uid for uid in wanted if (app_id, uid) in self._local]

    # ---- ClusterStore -------------------------------------------------------------------

    def replay(self, node_id: str) -> list[asyncio.Future[Any]]:
        self._replayed = list(self._local)
        return [self._in(node_id, app, user) for app, user in self._replayed]

    def replayed(self, results: list[Any]) -> list[ClusterChange]:
        return [
            ClusterChange(ChangeKind.USER_ONLINE, app, user_id=user)
            for (app, user), first in zip(self._replayed, results, strict=True)
            if first
        ]

    async def reap(self, pipeline: CommandPipeline, dead_node: str) -> list[ClusterChange]:
        changes: list[ClusterChange] = []

        def collect(gone: list[Any]) -> int:
            for member in gone:
                app, user_id = json.loads(_text(member))
                changes.append(ClusterChange(ChangeKind.USER_OFFLINE, app, user_id=user_id))
            return len(gone)

        keys = [self._key("node", dead_node, "users")]
        args = [self._cluster.prefix, REAP_BATCH]
        await _drain(lambda: pipeline.script(REAP_USERS, keys, args), collect)
        return changes


class RedisConnectionQuota(_Shared):
    """`max_connections` across the cluster: each node's count per app, summed atomically."""

    def __init__(self, cluster: RedisCluster) -> None:
        super().__init__(cluster)
        self._local: dict[AppId, int] = {}

    async def acquire(self, app_id: AppId, limit: int) -> bool:
        here = self._local.get(app_id, 0)
        if here >= limit:
            return False
        self._local[app_id] = here + 1  # held while the question is in flight
        if not self._cluster.healthy:
            return True  # Redis away: this node's own count is all it knows
        node_id = self._cluster.node_id
        keys = [self._nodes, self._key("conns", app_id), self._key("node", node_id, "apps")]
        args = [node_id, here + 1, limit, app_id]
        reply = await self._ask(self._pipeline.script(CONN_ACQUIRE, keys, args))
        if reply is _FAILED or reply:
            return True
        self._give_back(app_id)
        return False

    def _give_back(self, app_id: AppId) -> int:
        here = self._local.get(app_id, 0) - 1
        if here > 0:
            self._local[app_id] = here
        else:
            self._local.pop(app_id, None)
        return max(here, 0)

    async def release(self, app_id: AppId) -> None:
        here = self._give_back(app_id)
        if self._cluster.healthy:
            await self._ask(self._set(self._cluster.node_id, app_id, here))

    def _set(self, node_id: str, app_id: AppId, here: int) -> asyncio.Future[Any]:
        keys = [self._nodes, self._key("conns", app_id), self._key("node", node_id, "apps")]
        return self._pipeline.script(CONN_SET, keys, [node_id, here, app_id])

    # ---- ClusterStore -------------------------------------------------------------------

    def replay(self, node_id: str) -> list[asyncio.Future[Any]]:
        return [self._set(node_id, app, n) for app, n in self._local.items()]

    def replayed(self, results: list[Any]) -> list[ClusterChange]:
        return []

    async def reap(self, pipeline: CommandPipeline, dead_node: str) -> list[ClusterChange]:
        keys = [self._key("node", dead_node, "apps")]
        await pipeline.script(REAP_CONNS, keys, [self._cluster.prefix, dead_node])
        return []


class RedisCacheStore(_Shared):
    """The last event of each cache channel (reference 2.8), shared by every node.

    The deadline is stored next to the value from `clock` (wall-clock seconds: every node must
    agree on it); Redis's own expiry, with slack, only collects what nobody reads again.
    """

    # Seconds Redis keeps a value past its deadline before deleting it.
    EXPIRY_SLACK_S = 60

    def __init__(self, cluster: RedisCluster, clock: Callable[[], float]) -> None:
        super().__init__(cluster)
        self._clock = clock
        self._local = MemoryCacheStore(clock)

    async def put(self, app_id: AppId, channel: str, event: str, data: str, ttl: int) -> None:
        await self._local.put(app_id, channel, event, data, ttl)
        if not self._cluster.healthy:
            return
        value = json.dumps([event, data, self._clock() + ttl], ensure_ascii=False)
        px = (ttl + self.EXPIRY_SLACK_S) * 1000
        await self._ask(
            self._pipeline.call("SET", self._key("cache", app_id, channel), value, "PX", px)
        )

    async def get(self, app_id: AppId, channel: str) -> CachedEvent | None:
        if not self._cluster.healthy:
            return await self._local.get(app_id, channel)
        reply = await self._ask(self._pipeline.call("GET", self._key("cache", app_id, channel)))
        if reply is _FAILED:
            return await self._local.get(app_id, channel)
        if reply is None:
            return None
        event, data, deadline = json.loads(reply)
        left = float(deadline) - self._clock()
        if left <= 0:
            return None
        return CachedEvent(event, data, max(1, round(left)))
