"""The Lua scripts behind the Redis stores: each read-modify-write is one atomic step, so the
answers the node acts on (first member, last subscriber, count after the change) are exact
however many nodes change the same channel at once (architecture: presence subscribe).

Layout of the keys (docs/cluster.md), `P` being the deployment's prefix and `N` a node id:
  P:nodes            ZSET  node id -> lease deadline (ms, Redis clock)
  P:reaping          ZSET  dead node id -> deadline of the node clearing it
  P:chans:<app>      HASH  channel -> subscribers on every node
  P:node:N:chans     HASH  ["app","channel"] -> subscribers on node N
  P:pm:<app>:<ch>    HASH  user id -> user_info JSON (the roster)
  P:pc:<app>:<ch>    HASH  user id -> number of nodes holding a socket of that member
  P:node:N:pres      SET   ["app","channel","user"] held by node N
  P:uc:<app>         HASH  user id -> number of nodes with a socket signed in as that user
  P:node:N:users     SET   ["app","user"] signed in on node N
  P:conns:<app>      HASH  node id -> open connections (only apps with max_connections)
  P:node:N:apps      SET   apps with a P:conns field for node N
  P:cache:<app>:<ch> STRING [event, data, deadline] (reference 2.8)
  P:bus              STREAM envelopes, every node reads them all

Scripts that clear a dead node build key names from ARGV (the prefix and the node's entries),
so they need a single Redis (or a primary with replicas), not Redis Cluster's key slots.
Channel names never contain ':', which keeps `P:pm:<app>:<ch>` unambiguous.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Script:
    name: str
    lua: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.lua.encode()).hexdigest())


# Fencing: a node writes only while its id holds a lease. A command queued before the node
# learned that its lease was lost (and its entries cleared by another node) must not put
# entries back under that id, where nothing would ever clear them. KEYS[1] is P:nodes and
# ARGV[1] the node id in every script that starts with this.
_FENCE = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return redis.error_reply('LEASE_LOST this node id no longer holds a lease')
end
"""
LEASE_LOST = "LEASE_LOST"

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: nodes, node chans, app totals. ARGV: node id, member, channel, this node's subscriber
# count now. Sets the node's count (absolute, so a replay or a repeat is harmless) and moves
# the total by the difference. Returns {total before, total after}.
CHANNEL_SET = Script(
    "channel_set",
    _FENCE
    + """
local old = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
local new = tonumber(ARGV[4])
if new > 0 then redis.call('HSET', KEYS[2], ARGV[2], new)
else redis.call('HDEL', KEYS[2], ARGV[2]) end
local before = tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '0')
local after = before + new - old
if after > 0 then redis.call('HSET', KEYS[3], ARGV[3], after)
else redis.call('HDEL', KEYS[3], ARGV[3]); after = 0 end
return {before, after}
""",
)

# KEYS: nodes, node set, node-count hash, roster hash (for users: the count hash again).
# ARGV: node id, member, user id, user_info JSON ('' for users). 1 when this is the user's
# first node (first member, reference 2.6).
MEMBER_IN = Script(
    "member_in",
    _FENCE
    + """
if redis.call('SADD', KEYS[2], ARGV[2]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
if n == 1 then
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[3], ARGV[4]) end
  return 1
end
return 0
""",
)

# KEYS and ARGV as MEMBER_IN (ARGV[4] unused). 1 when this was the user's last node.
MEMBER_OUT = Script(
    "member_out",
    _FENCE
    + """
if redis.call('SREM', KEYS[2], ARGV[2]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[3], ARGV[3], -1)
if n <= 0 then
  redis.call('HDEL', KEYS[3], ARGV[3])
  if KEYS[4] ~= KEYS[3] then redis.call('HDEL', KEYS[4], ARGV[3]) end
  return 1
end
return 0
""",
)

# KEYS: nodes, app conns hash, node apps set. ARGV: node id, this node's count if admitted,
# limit, app id. 1 (and the count stored) when the app stays within its limit cluster-wide.
CONN_ACQUIRE = Script(
    "conn_acquire",
    _FENCE
    + """
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do total = total + tonumber(v) end
local old = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local new = tonumber(ARGV[2])
if total - old + new > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], new)
redis.call('SADD', KEYS[3], ARGV[4])
return 1
""",
)

# KEYS: nodes, app conns hash, node apps set. ARGV: node id, this node's count, app id.
CONN_SET = Script(
    "conn_set",
    _FENCE
    + """
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('SADD', KEYS[3], ARGV[3])
else
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1
""",
)

# KEYS: nodes. ARGV: node id, lease ms, '1' to register a new id. Renews the lease; 0 when
# it had been lost (the node was presumed dead and is being cleared, or Redis lost
# everything): the node then registers under a new id and replays its state.
HEARTBEAT = Script(
    "heartbeat",
    _NOW_MS
    + """
if ARGV[3] ~= '1' and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
""",
)

# KEYS: nodes, reaping. ARGV: lease ms. Claims one node whose lease ran out (or whose
# clearing was abandoned by a node that died meanwhile) for the caller to clear.
CLAIM_DEAD = Script(
    "claim_dead",
    _NOW_MS
    + """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
if #dead == 0 then
  dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1)
  if #dead == 0 then return false end
end
redis.call('ZREM', KEYS[1], dead[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), dead[1])
return dead[1]
""",
)

# KEYS: the dead node's presence set. ARGV: prefix, batch size. Removes up to a batch of its
# members; returns the entries whose user left the channel with it (member_removed).
REAP_PRESENCE = Script(
    "reap_presence",
    """
local gone = {}
for _, m in ipairs(redis.call('SPOP', KEYS[1], tonumber(ARGV[2]))) do
  local e = cjson.decode(m)
  local nodes = ARGV[1] .. ':pc:' .. e[1] .. ':' .. e[2]
  local n = redis.call('HINCRBY', nodes, e[3], -1)
  if n <= 0 then
    redis.call('HDEL', nodes, e[3])
    redis.call('HDEL', ARGV[1] .. ':pm:' .. e[1] .. ':' .. e[2], e[3])
    table.insert(gone, m)
  end
end
return gone
""",
)

# KEYS: the dead node's users set. ARGV: prefix, batch size. Returns the users now offline.
REAP_USERS = Script(
    "reap_users",
    """
local gone = {}
for _, m in ipairs(redis.call('SPOP', KEYS[1], tonumber(ARGV[2]))) do
  local e = cjson.decode(m)
  local nodes = ARGV[1] .. ':uc:' .. e[1]
  local n = redis.call('HINCRBY', nodes, e[2], -1)
  if n <= 0 then
    redis.call('HDEL', nodes, e[2])
    table.insert(gone, m)
  end
end
return gone
""",
)

# KEYS: the dead node's chans hash. ARGV: prefix, batch size. Returns a flat list of
# member, subscribers removed, total after.
REAP_CHANNELS = Script(
    "reap_channels",
    """
local out = {}
local fv = redis.call('HRANDFIELD', KEYS[1], tonumber(ARGV[2]), 'WITHVALUES')
for i = 1, #fv, 2 do
  local m, c = fv[i], tonumber(fv[i + 1])
  redis.call('HDEL', KEYS[1], m)
  local e = cjson.decode(m)
  local totals = ARGV[1] .. ':chans:' .. e[1]
  local after = tonumber(redis.call('HGET', totals, e[2]) or '0') - c
  if after > 0 then redis.call('HSET', totals, e[2], after)
  else redis.call('HDEL', totals, e[2]); after = 0 end
  table.insert(out, m); table.insert(out, c); table.insert(out, after)
end
return out
""",
)

# KEYS: the dead node's apps set. ARGV: prefix, node id. Gives back its connection places.
REAP_CONNS = Script(
    "reap_conns",
    """
for _, app in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('HDEL', ARGV[1] .. ':conns:' .. app, ARGV[2])
end
redis.call('DEL', KEYS[1])
return 1
""",
)

ALL_SCRIPTS = (
    CHANNEL_SET,
    MEMBER_IN,
    MEMBER_OUT,
    CONN_ACQUIRE,
    CONN_SET,
    HEARTBEAT,
    CLAIM_DEAD,
    REAP_PRESENCE,
    REAP_USERS,
    REAP_CHANNELS,
    REAP_CONNS,
)
