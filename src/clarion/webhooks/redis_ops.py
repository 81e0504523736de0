"""The Redis side of the webhook queue: its keys and the few atomic steps taken on them.

Keys, all under the deployment's prefix:

* `<prefix>:webhooks:queue`: entries (record.py) waiting for the leader, oldest at the head;
* `<prefix>:webhooks:inflight`: entries the leader took and has not settled, in taking order;
* `<prefix>:webhooks:leader`: who delivers, on a lease (`SET NX PX`, renewed by its holder);
* `<prefix>:webhooks:pushed:<pusher>`: "<batch> <count>", the last batch a pusher appended.

Every step that moves entries checks, inside Redis, that the caller still holds the lease: a
leader that stalled past its lease cannot take entries its successor will never see, nor hand
back entries that are no longer its own. Acknowledging (removing a settled entry from inflight)
is not fenced: an entry is only removed once delivered, whoever removes it.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from clarion.backends.redis.client import key

# Appends a pusher's batch once, however often it is retried: a reply lost to a timeout after the
# entries went in would otherwise append them twice. Batches of one pusher are numbered and sent
# one at a time, so "not above the last one" means "already in". Past `cap` entries waiting,
# the rest of the batch is refused (the caller counts and logs it): Redis memory stays bounded
# when no leader can deliver.
_PUSH = """
local mark = redis.call('GET', KEYS[2])
if mark then
  local last, count = string.match(mark, '^(%d+) (%d+)$')
  if last and tonumber(last) >= tonumber(ARGV[1]) then return tonumber(count) end
end
local room = tonumber(ARGV[2]) - redis.call('LLEN', KEYS[1])
local n = math.min(#ARGV - 3, math.max(room, 0))
if n > 0 then redis.call('RPUSH', KEYS[1], unpack(ARGV, 4, 3 + n)) end
redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. n, 'PX', ARGV[3])
return n
"""

# Becomes leader, and puts back at the head of the queue, in order, whatever a leader that died
# had taken and not settled (hence at-least-once: it may have delivered some of it).
_ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return -1 end
local n = 0
while redis.call('LMOVE', KEYS[3], KEYS[2], 'RIGHT', 'LEFT') do n = n + 1 end
return n
"""

_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# nil: not the leader (any more). Else up to ARGV[2] entries, moved from the queue's head to the
# in-flight list's tail.
_TAKE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local items = redis.call('LRANGE', KEYS[2], 0, tonumber(ARGV[2]) - 1)
if #items > 0 then
  redis.call('LTRIM', KEYS[2], #items, -1)
  redis.call('RPUSH', KEYS[3], unpack(items))
end
return items
"""

_ACK = """
local n = 0
for i = 1, #ARGV do n = n + redis.call('LREM', KEYS[1], 1, ARGV[i]) end
return n
"""

# A leader stepping down: what it has not settled goes back to the queue's head, in order, and
# the next leader need not wait for the lease to run out.
_HAND_BACK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local n = 0
while redis.call('LMOVE', KEYS[3], KEYS[2], 'RIGHT', 'LEFT') do n = n + 1 end
redis.call('DEL', KEYS[1])
return n
"""

# A pusher's batch mark outlives any retry of that batch by far; then it goes.
_MARK_TTL_MS = 24 * 3600 * 1000


class QueueOps:
    """The queue's keys under `prefix`, for one process (`me`: its node id and incarnation)."""

    def __init__(self, client: aioredis.Redis, prefix: str, me: str) -> None:
        self.client = client
        self.me = me
        self.queue = key(prefix, "webhooks", "queue")
        self.inflight = key(prefix, "webhooks", "inflight")
        self.leader = key(prefix, "webhooks", "leader")
        self._mark = key(prefix, "webhooks", "pushed", me)
        self._push = client.register_script(_PUSH)
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._take = client.register_script(_TAKE)
        self._ack = client.register_script(_ACK)
        self._hand_back = client.register_script(_HAND_BACK)

    async def push(self, batch: int, entries: list[bytes], cap: int) -> int:
        """Append `entries` (batch number `batch`, above every earlier one) unless already in;
        how many went in: fewer than given once `cap` entries are waiting."""
        args: list[Any] = [batch, cap, _MARK_TTL_MS, *entries]
        return int(await self._push(keys=[self.queue, self._mark], args=args))

    async def acquire(self, lease_s: float) -> int | None:
        """Become leader for `lease_s`: None if another process is, else how many entries a
        previous leader left in flight (now back in the queue)."""
        moved = int(await self._acquire(keys=self._lists(), args=[self.me, _ms(lease_s)]))
        return None if moved < 0 else moved

    async def renew(self, lease_s: float) -> bool:
        """Extend the lease by `lease_s` from now; False if it is no longer ours."""
        return bool(await self._renew(keys=[self.leader], args=[self.me, _ms(lease_s)]))

    async def take(self, count: int) -> list[bytes] | None:
        """Up to `count` entries from the queue's head into flight; None if not the leader."""
        items = await self._take(keys=self._lists(), args=[self.me, count])
        return None if items is None else list(items)

    async def wait(self, block_s: float) -> None:
        """Return when the queue has an entry, or after `block_s`: a rotation of the head onto
        itself, which changes nothing, but blocks while the list is empty."""
        # Redis 6+ takes a decimal timeout; redis-py's annotation says int.
        await self.client.blmove(self.queue, self.queue, block_s, "LEFT", "LEFT")  # type: ignore[arg-type]

    async def ack(self, entries: list[bytes]) -> int:
        """Remove settled entries from flight; how many were still there."""
        return int(await self._ack(keys=[self.inflight], args=entries))

    async def hand_back(self) -> int | None:
        """Step down: entries in flight back to the queue's head, lease released. None if the
        lease was not ours (any more)."""
        moved = int(await self._hand_back(keys=self._lists(), args=[self.me]))
        return None if moved < 0 else moved

    def _lists(self) -> list[str]:
        return [self.leader, self.queue, self.inflight]


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
