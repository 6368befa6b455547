"""The gateway's Redis store: the same Store protocol as the SQLite file, so several
gateway nodes can share one service (docs/gateway.md, "Redis store and clusters").

Layout (every key under one prefix, ``up:`` by default; ``{a}`` appid, ``{c}`` cid):

- ``seq``: the one counter every message seq comes from (SQLite's AUTOINCREMENT),
  taken inside the script that stores the message, so seqs follow commit order.
- ``c:{a}:{c}`` hash: acked, issued, created_at, last_seen, secret_hash, reg (how many
  registrations: the newest connection is the one with the highest);
  ``seen:{a}`` sorted set cid -> last_seen (all cids of an app, and the unseen purge).
- ``m:{a}:{c}`` sorted set seq -> seq and ``b:{a}:{c}`` hash seq -> [id, taskid, body,
  expires_at]: a cid's undelivered messages in seq order (a range read by score is the
  resume; a stream would need its ids in commit order across nodes, which a seq taken
  before the commit does not give). Both keys carry Redis' own expiry, as long as their
  newest message's ttl, so a cid nobody reads costs nothing once its messages are stale.
- ``due`` sorted set "{a} newline {c}" -> the earliest expires_at among the cid's
  messages: the expiry purge visits the cids whose first message is due, not every
  cid with messages (the ``queued`` set of earlier versions is folded into it).
- ``d:{a}:{c}`` hash msg id -> [taskid, at, displayed, clicked], expiring with the
  receipt window; ``t:{taskid}`` hash of a task's counters, ``tg:{a}:{group}`` set and
  ``tt:{a}`` sorted set (by creation) its report indexes.
- ``al:{a}`` hash cid -> alias with ``ali:{a}:{alias}`` sets; ``tag:{a}:{c}`` sets with
  ``tagi:{a}:{tag}`` sets; ``u:{a}`` hash cid -> [user_id, device_id] with ``uu``/``ud``
  sets, ``ut:{a}:{user}`` user tags with ``uti:{a}:{tag}`` sets; ``r:{a}:{request_id}``
  request_id answers, expiring after REQUEST_ANSWER_TTL_S.
- ``on:{a}:{c}``: the node holding the cid's connection, expiring after HOLD_TTL_S
  unless that node renews it; ``node:{id}``: that node is alive, expiring after
  PRESENCE_TTL_S unless it renews it (cluster.py). A cid is "online" for every node
  while its presence names a node that is alive.
- ``epoch``: a random value the nodes read with every liveness SET and set when it is
  missing: another value than before means Redis lost its data (``_beat``). ``seq``
  is read there too: below a seq this node saw committed, Redis went back to older
  data (an older snapshot, a replica that lagged), which keeps the epoch.

Writes inside ``transaction()`` are queued on one MULTI/EXEC pipeline, and those that
read before they write are Lua scripts in it: the whole step is applied at once or not
at all, as one SQLite transaction is. Reads see what is committed.

Every call is a round trip on redis-py's asyncio client, so requests interleave while
they wait: each task's transaction is its own (a context variable holds it), and the
seqs of two requests' EXECs may be answered out of order, which committed() reports
with the seq before each message (server.Connection reads the store across a gap).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .store import (
    BROADCAST_TASK,
    COUNTERS,
    DAY,
    RECEIPT_WINDOW_S,
    REQUEST_ANSWER_TTL_S,
    ClientRecord,
    resume_cursor,
)
from .storeapi import CidTaken, ClaimLost, Refuse

log = structlog.get_logger(__name__)

#: A node renews its own liveness key every third of this; a node that dies leaves
#: its cids "online" this long at most (docs/gateway.md).
PRESENCE_TTL_S = 15
#: A node renews the presence keys of the cids it holds every third of this. Their
#: liveness is the node's key: renewing every cid's key every 5 s cost Redis a GET and
#: a SET per connected desktop (a million: 400,000 commands a second, for nothing).
#: This ttl only clears the keys of a node that died, for cids that never came back.
HOLD_TTL_S = 3600

#: A store call that takes longer fails (redis.TimeoutError): its request is answered
#: with an error and its session reconnects, instead of waiting on a Redis that hangs;
#: a whole broadcast's MULTI of 20,000 messages takes well under a second.
STORE_TIMEOUT_S = 10

#: A message body up to this long rides in its cluster notice, once per notice, so the
#: node holding the cid sends it without reading the store (a broadcast to 20,000: no
#: read per cid). Longer ones are read. A notice names up to ADD_BATCH messages at about
#: 90 bytes each, so a 20,000 broadcast is under 2 MB of notices in all, inside Redis'
#: pub/sub output buffer limits (client-output-buffer-limit pubsub: 32 MB at once, 8 MB
#: for a minute); with the body in every per-cid notice it was up to 40 MB.
NOTICE_BODY_MAX = 2048

#: What a request_id's key holds while a call makes its answer (never JSON), and for
#: how long past the last renewal: the node making the answer renews it every third
#: of this while the call runs (a slow Redis, a broadcast's reads: the claim once
#: lapsed under a call still running, and the sender's retry made a second answer),
#: so a retry of a call whose node died holding the claim waits this long at most.
CLAIMED = "claimed"
CLAIM_TTL_S = 5

_ADD_MESSAGES = """
-- KEYS: due, cluster, seq, and the request_id's key when the call claimed one; ARGV:
-- prefix, appid, taskid, body, expires_at, now, ttl_s, receipt ttl, node ('' no
-- cluster notice), '1' to carry the body in the notice, the call's claim marker (''
-- none), then (cid, id) pairs: one message, or a broadcast's 20,000 with the body sent
-- once. A claim another call holds now (this one's lapsed) or answered: nothing is
-- stored (-1), that call stores the messages (the same ids) and makes the answer.
-- Each seq is taken here, in the commit that stores the message: seqs follow commit
-- order on every node, so no message lands behind a cursor that moved on.
-- What is the same for every cid (the body row after its id, the delivery row) is
-- encoded once: a broadcast's EXEC spent most of its time re-encoding the body.
local p, a, taskid, body = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ttl, rttl = math.ceil(tonumber(ARGV[7])), math.ceil(tonumber(ARGV[8]))
local node = ARGV[9]
if ARGV[11] ~= '' then
  local claim = redis.call('GET', KEYS[4])
  if claim and claim ~= ARGV[11] then return -1 end
end
local tail = string.sub(cjson.encode({'', taskid, body, ARGV[5]}), 4)
local delivery = cjson.encode({taskid, ARGV[6], 0, 0})
local count = (#ARGV - 11) / 2
local seq = redis.call('INCRBY', KEYS[3], count) - count
local notes, due, out = {}, {}, {}
for i = 12, #ARGV, 2 do
  local cid, id = ARGV[i], ARGV[i + 1]
  local at = a .. ':' .. cid
  local m, b, c, d = p .. 'm:' .. at, p .. 'b:' .. at, p .. 'c:' .. at, p .. 'd:' .. at
  seq = seq + 1
  redis.call('ZADD', m, seq, seq)
  local member = a .. '\\n' .. cid
  if not due[member] then
    due[member] = true
    due[#due + 1] = member
  end
  redis.call('HSET', b, seq, '[' .. cjson.encode(id) .. tail)
  local issued = redis.call('HGET', c, 'issued')
  if issued then
    issued = tonumber(issued)
    if seq > issued then redis.call('HSET', c, 'issued', seq) end
  else
    issued = 0
    if redis.call('EXISTS', c) == 1 then redis.call('HSET', c, 'issued', seq) end
  end
  redis.call('HSETNX', d, id, delivery)
  -- Redis' expiry is relative (a ttl, on Redis' clock), so a gateway clock that
  -- differs from Redis' cannot expire a key early: it lives as long as its newest
  -- message (NX: a new key; GT: a longer ttl than the key has).
  for _, k in ipairs({m, b}) do
    if redis.call('EXPIRE', k, ttl, 'NX') == 0 then redis.call('EXPIRE', k, ttl, 'GT') end
  end
  redis.call('EXPIRE', d, rttl)
  -- The notice goes to the node whose presence holds the cid (to every node when none
  -- does: a presence lost with a Redis restart, not renewed yet), and to none when
  -- that is this node. A node registering the cid sets its presence before it reads
  -- the store, so a message committed in between is read or noticed, never neither.
  -- It names the cid's seq before this one: a node that has sent that one hands this
  -- over as it is (the body rides along when it is short), one that has not reads the
  -- store first, so no message falls behind its cursor (cluster.py). One notice per
  -- node for the whole call, not one per cid.
  if node ~= '' then
    local holder = redis.call('GET', p .. 'on:' .. at)
    if holder ~= node then
      local channel = KEYS[2]
      if holder then channel = channel .. ':' .. holder end
      local items = notes[channel]
      if not items then
        items = {}
        notes[channel] = items
      end
      items[#items + 1] = {cid, seq, id, issued}
    end
  end
  out[#out + 1] = seq
  out[#out + 1] = issued
end
-- LT: a cid's entry keeps its earliest expiry (new entries are added); 1,000 per
-- ZADD, under Lua's limit for unpack()
for from = 1, #due, 1000 do
  local args = {}
  for j = from, math.min(from + 999, #due) do
    args[#args + 1] = ARGV[5]
    args[#args + 1] = due[j]
  end
  redis.call('ZADD', KEYS[1], 'LT', unpack(args))
end
for channel, items in pairs(notes) do
  local note = {kind = 'pushes', node = node, appid = a, items = items}
  if ARGV[10] == '1' then note.body = body end
  redis.call('PUBLISH', channel, cjson.encode(note))
end
return out
"""

_ADD_TASK = """
-- KEYS: t, tt, the group's tg (or t again: none), the request_id's key the call
-- claimed; ARGV: the call's claim marker, taskid, created_at, then the task's
-- field/value pairs. Not written when the claim is another call's (_ADD_MESSAGES).
local claim = redis.call('GET', KEYS[4])
if claim and claim ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
if KEYS[3] ~= KEYS[1] then redis.call('SADD', KEYS[3], ARGV[2]) end
return 1
"""

_REGISTER = """
-- KEYS: c, seen, apps; ARGV: appid, cid, now, the hello's secret hash ('' none), the
-- cursor to pull the cid's own back to ('' none). The read of the cid, the secret's
-- check and the write in one step, as in one SQLite transaction: a hello on another
-- node may have registered the cid since this node read it. 0: bound to another
-- secret meanwhile (nothing written).
local row = redis.call('HMGET', KEYS[1], 'acked', 'secret_hash')
local now, h = ARGV[3], ARGV[4]
if not row[1] then
  redis.call('HSET', KEYS[1], 'acked', 0, 'issued', 0, 'created_at', now, 'last_seen', now,
    'secret_hash', h)
  redis.call('SADD', KEYS[3], ARGV[1])
else
  local bound = row[2] or ''
  if bound ~= '' and bound ~= h then return 0 end
  redis.call('HSET', KEYS[1], 'last_seen', now)
  if bound == '' and h ~= '' then redis.call('HSET', KEYS[1], 'secret_hash', h) end
  if ARGV[5] ~= '' and tonumber(ARGV[5]) < tonumber(row[1]) then
    redis.call('HSET', KEYS[1], 'acked', ARGV[5])
  end
end
redis.call('ZADD', KEYS[2], now, ARGV[2])
return 1
"""

_CLAIM = """
-- KEYS: c, on, cluster; ARGV: node, appid, cid, presence ttl, the hello's secret hash.
-- A registration on this node: its number (the newest wins on every node), the cid's
-- presence, the notice; none (0) for a hello _REGISTER refused.
local bound = redis.call('HGET', KEYS[1], 'secret_hash')
if bound and bound ~= '' and bound ~= ARGV[5] then return 0 end
local reg = redis.call('HINCRBY', KEYS[1], 'reg', 1)
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[4])
local note = {kind = 'took', node = ARGV[1], appid = ARGV[2], cid = ARGV[3], reg = reg}
redis.call('PUBLISH', KEYS[3], cjson.encode(note))
return reg
"""

_REFRESH = """
-- KEYS: the presence keys of cids this node holds; ARGV: node, presence ttl. Renew
-- each, unless a newer registration on another node holds that cid now.
local renewed = 0
for _, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if not v or v == ARGV[1] then
    redis.call('SET', k, ARGV[1], 'EX', ARGV[2])
    renewed = renewed + 1
  end
end
return renewed
"""

_LEAVE = """
-- KEYS: on; ARGV: node. The cid's connection on this node is gone: drop its presence,
-- unless another node's registration holds it.
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

_ACK = """#!lua flags=allow-oom
-- allow-oom: acks free room; a full Redis refused a batch whose first ack removed
-- nothing (its first write the cursor's HSET).
-- ARGV: prefix, task key prefix, then (appid, cid, seq) triples: one ack, or a 5 ms
-- window's acks of 20,000 daemons in one call. For each: count what the ack removes,
-- remove it, move the cursor (never past issued). The task counters are added once
-- per task at the end: a broadcast's 20,000 acks are one HINCRBY, not 20,000.
local p, tp = ARGV[1], ARGV[2]
local removed = 0
local received = {}
for i = 3, #ARGV, 3 do
  local at = ARGV[i] .. ':' .. ARGV[i + 1]
  local m, b, c = p .. 'm:' .. at, p .. 'b:' .. at, p .. 'c:' .. at
  local seq = ARGV[i + 2]
  local seqs = redis.call('ZRANGEBYSCORE', m, '-inf', seq)
  if #seqs > 0 then
    for _, s in ipairs(seqs) do
      local row = redis.call('HGET', b, s)
      if row then
        -- [id, taskid, ...]: ids and task ids are ours (no quote, no escape), so the
        -- task id is read without decoding the body behind it
        local taskid = string.match(row, '^%["[^"\\\\]*","([^"\\\\]*)"')
        if not taskid then taskid = cjson.decode(row)[2] end
        received[taskid] = (received[taskid] or 0) + 1
        redis.call('HDEL', b, s)
      end
    end
    redis.call('ZREMRANGEBYSCORE', m, '-inf', seq)
  end
  local cursor = redis.call('HMGET', c, 'acked', 'issued')
  if cursor[2] then
    local want = math.min(tonumber(seq), tonumber(cursor[2]))
    if want > tonumber(cursor[1] or '0') then redis.call('HSET', c, 'acked', want) end
  end
  removed = removed + #seqs
end
for taskid, n in pairs(received) do
  local task = tp .. taskid
  if redis.call('EXISTS', task) == 1 then redis.call('HINCRBY', task, 'receive_num', n) end
end
return removed
"""

_RECEIPT = """
-- KEYS: d, t; ARGV: id, taskid, appid, flag index (3 display, 4 click), counter
local row = redis.call('HGET', KEYS[1], ARGV[1])
if not row then return 0 end
local d = cjson.decode(row)
local i = tonumber(ARGV[4])
if d[1] ~= ARGV[2] or tonumber(d[i]) ~= 0 then return 0 end
d[i] = 1
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(d))
if redis.call('HGET', KEYS[2], 'appid') == ARGV[3] then
  redis.call('HINCRBY', KEYS[2], ARGV[5], 1)
end
return 1
"""

_BIND_ALIAS = """
-- KEYS: al, alias index prefix; ARGV: cid, alias
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then redis.call('SREM', KEYS[2] .. old, ARGV[1]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2] .. ARGV[2], ARGV[1])
return 1
"""

_BIND_ALIASES = """
-- KEYS: al, alias index prefix; ARGV: cap, then cid, alias, cid, alias, ... A whole
-- bind list in one step: every pair is checked against the state as it stands plus
-- the list's earlier pairs (a cid moved away makes room, a cid already on its alias
-- takes none), and all are written or, at the first alias past the cap, none:
-- {alias, its cids} is returned then, 0 once all are bound.
local cap = tonumber(ARGV[1])
local counts, now = {}, {}
local function count(alias)
  if counts[alias] == nil then counts[alias] = redis.call('SCARD', KEYS[2] .. alias) end
  return counts[alias]
end
for i = 2, #ARGV, 2 do
  local cid, alias = ARGV[i], ARGV[i + 1]
  local old = now[cid]
  if old == nil then old = redis.call('HGET', KEYS[1], cid) end
  if old ~= alias then
    if count(alias) >= cap then return {alias, counts[alias]} end
    if old then counts[old] = count(old) - 1 end
    counts[alias] = counts[alias] + 1
  end
  now[cid] = alias
end
for i = 2, #ARGV, 2 do
  local cid, alias = ARGV[i], ARGV[i + 1]
  local old = redis.call('HGET', KEYS[1], cid)
  if old then redis.call('SREM', KEYS[2] .. old, cid) end
  redis.call('HSET', KEYS[1], cid, alias)
  redis.call('SADD', KEYS[2] .. alias, cid)
end
return 0
"""

_ADD_TAG = """
-- KEYS: tag set prefix, the tag's index; ARGV: cap, tag, cids... One tag onto every
-- cid in one step, or onto none if one would pass the cap of tags a cid has: {cid,
-- its tags} is returned then, 0 once all are tagged.
local cap, tag = tonumber(ARGV[1]), ARGV[2]
for i = 3, #ARGV do
  local k = KEYS[1] .. ARGV[i]
  if redis.call('SISMEMBER', k, tag) == 0 then
    local n = redis.call('SCARD', k)
    if n >= cap then return {ARGV[i], n} end
  end
end
for i = 3, #ARGV do
  redis.call('SADD', KEYS[1] .. ARGV[i], tag)
  redis.call('SADD', KEYS[2], ARGV[i])
end
return 0
"""

_UNBIND_ALIAS = """
-- KEYS: al, ali; ARGV: cid, alias. Only while the cid's alias is still that one (a
-- rebind on another node since the caller read it stays whole).
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""

_UNBIND_ALL_ALIAS = """
-- KEYS: al, ali; ARGV: none
for _, cid in ipairs(redis.call('SMEMBERS', KEYS[2])) do redis.call('HDEL', KEYS[1], cid) end
redis.call('DEL', KEYS[2])
return 1
"""

_SET_TAGS = """
-- KEYS: a set, its index prefix; ARGV: owner, members... (a cid's custom tags, a
-- user's uni-id tags): the set becomes the members, the index follows.
for _, t in ipairs(redis.call('SMEMBERS', KEYS[1])) do redis.call('SREM', KEYS[2] .. t, ARGV[1]) end
redis.call('DEL', KEYS[1])
for i = 2, #ARGV do
  redis.call('SADD', KEYS[1], ARGV[i])
  redis.call('SADD', KEYS[2] .. ARGV[i], ARGV[1])
end
return 1
"""

_BIND_UNIID = """
-- KEYS: u, user index prefix, device index prefix; ARGV: cid, user_id, device_id ('' none)
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local o = cjson.decode(old)
  if o[1] ~= '' then redis.call('SREM', KEYS[2] .. o[1], ARGV[1]) end
  if o[2] ~= '' then redis.call('SREM', KEYS[3] .. o[2], ARGV[1]) end
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({ARGV[2], ARGV[3]}))
if ARGV[2] ~= '' then redis.call('SADD', KEYS[2] .. ARGV[2], ARGV[1]) end
if ARGV[3] ~= '' then redis.call('SADD', KEYS[3] .. ARGV[3], ARGV[1]) end
return 1
"""

_FORGET = """
-- KEYS: c, m, b, d, tag, al, u, seen; ARGV: cid, prefix, appid, cutoff. A cid seen
-- since the cutoff (a hello on some node after the purge chose it) stays.
local p, a, cid = ARGV[2], ARGV[3], ARGV[1]
local seen = redis.call('ZSCORE', KEYS[8], cid)
if seen and tonumber(seen) > tonumber(ARGV[4]) then return 0 end
local alias = redis.call('HGET', KEYS[6], cid)
if alias then redis.call('SREM', p .. 'ali:' .. a .. ':' .. alias, cid) end
redis.call('HDEL', KEYS[6], cid)
for _, t in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  redis.call('SREM', p .. 'tagi:' .. a .. ':' .. t, cid)
end
local u = redis.call('HGET', KEYS[7], cid)
if u then
  local o = cjson.decode(u)
  if o[1] ~= '' then redis.call('SREM', p .. 'uu:' .. a .. ':' .. o[1], cid) end
  if o[2] ~= '' then redis.call('SREM', p .. 'ud:' .. a .. ':' .. o[2], cid) end
end
redis.call('HDEL', KEYS[7], cid)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('ZREM', KEYS[8], cid)
return 1
"""

_PURGE_EXPIRED = """#!lua flags=allow-oom
-- allow-oom: a full Redis (noeviction) refused a script whose first write may grow
-- memory, and this one's first is the ZADD of a cid whose earliest message was acked:
-- the purge that frees room failed. It removes more than it adds.
-- KEYS: due; ARGV: prefix, now, then members of due ("{a} newline {c}") whose earliest
-- message has expired. Drop each one's expired messages and move it to its next
-- expiry (out of due when none is left); how many messages went. The expiry is read
-- from the row's end without decoding the body before it.
local p, now = ARGV[1], tonumber(ARGV[2])
local gone = 0
for i = 3, #ARGV do
  local member = ARGV[i]
  local at = string.gsub(member, '\\n', ':', 1)
  local m, b = p .. 'm:' .. at, p .. 'b:' .. at
  local all = redis.call('HGETALL', b)
  local soonest = nil
  for j = 1, #all, 2 do
    local row = all[j + 1]
    local expires = tonumber(string.match(row, '"([^"\\\\]*)"%]$') or '')
    if not expires then expires = tonumber(cjson.decode(row)[4]) end
    if expires <= now then
      redis.call('HDEL', b, all[j])
      redis.call('ZREM', m, all[j])
      gone = gone + 1
    elseif not soonest or expires < soonest then
      soonest = expires
    end
  end
  if soonest then
    redis.call('ZADD', KEYS[1], soonest, member)
  else
    redis.call('ZREM', KEYS[1], member)
  end
end
return gone
"""

_REMEMBER = """
-- KEYS: r; ARGV: answer, the claim marker, ttl. The first answer stays (NX), but the
-- claim of the call that made this one gives way to it.
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""

_RELEASE = """
-- KEYS: r; ARGV: the claim marker. A failed call's claim goes; an answer stays.
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

_RENEW_CLAIM = """
-- KEYS: r; ARGV: the claim marker, its ttl. The claim lasts while its call runs; an
-- answer (or nothing: released) ends the renewals.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

_FOLD_QUEUED = """
-- KEYS: queued (the set earlier versions kept of the cids with messages), due. Move
-- up to 1,000 of its members into due, to be visited at the next purge; how many.
local members = redis.call('SPOP', KEYS[1], 1000)
for _, member in ipairs(members) do redis.call('ZADD', KEYS[2], 'NX', 0, member) end
return #members
"""


T = TypeVar("T")

#: Cids per ZMSCORE or MGET of a lookup for many.
LOOKUP_CHUNK = 5000
#: Cids per call of the expiry purge's script, and per MULTI of the unseen purge.
PURGE_BATCH = 500
#: At most this many messages per script call: Redis runs one call without a break.
ADD_BATCH = 5000


def _refused_by(refuse: Refuse) -> Callable[[Any], None]:
    """A capped script's answer at the commit: 0, or {name, count} to refuse."""

    def then(result: Any) -> None:
        if isinstance(result, list):
            name, count = result
            raise refuse(str(name), int(count))

    return then


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class _Adds:
    """add_message calls in a row with one (appid, taskid, body, ttl)."""

    shared: tuple[str, str, str, float]
    now: float
    items: list[tuple[str, str, int]] = field(default_factory=list)  # cid, id, placeholder


@dataclass
class _Tx:
    """One task's transaction() in progress: its MULTI, and what waits for its EXEC."""

    pipe: Any
    #: A task made inside the transaction inherits the context variable, not the
    #: transaction: its writes are its own.
    owner: asyncio.Task[Any] | None
    depth: int = 0
    #: add_message calls not on the MULTI yet: those in a row with one body go as
    #: one script call (a broadcast's 20,000 cost one, not 20,000).
    adds: _Adds | None = None
    #: Run with the EXEC's results once the transaction commits.
    on_commit: list[Callable[[list[Any]], None]] = field(default_factory=list)
    #: The highest seq this node had seen committed when the EXEC was sent: every seq
    #: the EXEC takes is above it, unless Redis went back to older data.
    high: int = 0
    #: add_message's placeholders -> (seq, the cid's seq before), filled at the commit.
    committed: dict[int, tuple[int, int]] = field(default_factory=dict)


class RedisStore:
    """The Store protocol (storeapi.py) on a Redis 7 server at ``url``."""

    def __init__(
        self,
        url: str,
        clock: Callable[[], float],
        prefix: str = "up:",
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        """``clock``: the wall clock, for timestamps; ``monotonic``: what measures the
        time since Redis' clock was read (``clock`` when not given, as in tests that
        move one clock)."""
        #: Measured once, then carried on by a clock no step of the wall clock moves.
        self._elapsed = monotonic or clock
        # A wrong url fails at start, not at the first push: one synchronous PING
        # (the asyncio client's pool connects on its first call, inside the loop).
        with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as probe:
            seconds, micros = probe.time()
            #: Redis' clock less this node's monotonic one: messages' expiries are
            #: stamped and judged on Redis' clock (_expiry_now), one for every node. On
            #: each node's own, a node two minutes ahead read a message another had just
            #: stored with a 60 s ttl as expired (never sent, answered successed_online)
            #: and purged it; on its wall clock as read at start, a node whose clock
            #: was then stepped (NTP, a restored VM) did the same from that moment.
            self._skew: float = seconds + micros / 1e6 - self._elapsed()
        # Any: redis-py types its calls loosely ("T | Awaitable[T]").
        # A timeout: a Redis that hangs must not hold a request or a session for ever.
        # No retries: redis-py sends a whole MULTI again after a connection error or a
        # timeout, and one that Redis had applied before the link broke would be applied
        # twice (every message of a sendMessage stored again, under new seqs). The call
        # fails instead and the sender retries with its request_id, answered once.
        self._r: Any = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=STORE_TIMEOUT_S,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 0),
        )
        self._clock = clock
        self._p = prefix
        #: Set by the cluster link (cluster.py): this node's id in the notices it publishes.
        self.node: str | None = None
        #: This node's registration number of each cid it registered (cluster.py
        #: ignores a "took" notice older than its own connection).
        self.regs: dict[tuple[str, str], int] = {}
        #: Called by touch() (a connection closed); set by the cluster link.
        self.on_touch: Callable[[str, str], None] | None = None
        #: Called when Redis is found to have lost its data (_beat); set by the
        #: cluster link.
        self.on_lost: Callable[[], None] | None = None
        #: Called with (appid, cid, seq, the cid's seq before) once a message is
        #: committed; set by the cluster link.
        self.on_added: Callable[[str, str, int, int], None] | None = None
        #: This task's transaction() in progress, and its last one committed.
        self._tx: contextvars.ContextVar[_Tx | None] = contextvars.ContextVar(
            f"redis_tx_{id(self)}", default=None
        )
        self._last: contextvars.ContextVar[_Tx | None] = contextvars.ContextVar(
            f"redis_last_{id(self)}", default=None
        )
        #: The request_id claim this task's call holds (its key and marker): its writes
        #: are stored only while that claim is still its own (ClaimLost).
        self._guard: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
            f"redis_guard_{id(self)}", default=None
        )
        scripts = {
            "add": _ADD_MESSAGES,
            "task": _ADD_TASK,
            "ack": _ACK,
            "receipt": _RECEIPT,
            "alias": _BIND_ALIAS,
            "aliases": _BIND_ALIASES,
            "add_tag": _ADD_TAG,
            "unbind": _UNBIND_ALIAS,
            "unalias": _UNBIND_ALL_ALIAS,
            "tags": _SET_TAGS,
            "uniid": _BIND_UNIID,
            "forget": _FORGET,
            "expire": _PURGE_EXPIRED,
            "fold": _FOLD_QUEUED,
            "remember": _REMEMBER,
            "release": _RELEASE,
            "renew_claim": _RENEW_CLAIM,
            "register": _REGISTER,
            "claim": _CLAIM,
            "refresh": _REFRESH,
            "leave": _LEAVE,
        }
        self._texts = scripts
        #: The store's epoch as this node last saw it (_beat).
        self.epoch: str | None = None
        #: The highest seq this node has seen committed (saw_seq): a seq counter below
        #: it means Redis went back to older data under the connections (_rolled_back).
        self.high = 0
        #: Each request_id claim this store holds (claim_answer): its marker (the value
        #: its key holds while the call runs) and the task that renews it.
        self._claims: dict[str, tuple[str, asyncio.Task[None]]] = {}

    async def close(self) -> None:
        for key in list(self._claims):
            self._let_go(key)
        await self._r.aclose()

    async def synced(self) -> None:
        """Nothing to wait for: each transaction() is committed by its own EXEC."""

    def before_commit(self, hook: Callable[[], None]) -> None:
        """No group commit: each EXEC is done before its pushes are handed over."""

    # plumbing ------------------------------------------------------------------

    def now(self) -> float:
        """Redis' clock (see _expiry_now): what every node stamps a push's hold_until
        and its welcome's ``now`` with, so a daemon on one node judges a push another
        node took by the sender's ttl, whatever their own clocks say."""
        return self._expiry_now()

    def _expiry_now(self) -> float:
        """Redis' clock as read at start, carried on by this node's monotonic clock:
        what a message's expires_at is stamped and compared with, the same on every
        node, whatever is done to this node's wall clock."""
        return self._elapsed() + self._skew

    def _k(self, kind: str, *parts: str) -> str:
        return self._p + kind + ":" + ":".join(parts)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Writes inside are queued on one MULTI and sent at the end: all or none."""
        tx = self._open_tx()
        if tx is None:
            tx = _Tx(self._r.pipeline(transaction=True), asyncio.current_task())
            self._tx.set(tx)
        tx.depth += 1
        try:
            yield
            if tx.depth == 1:
                self._flush_adds(tx)
                tx.high = self.high
                results = await tx.pipe.execute()
                for then in tx.on_commit:
                    then(results)
                self._last.set(tx)
        except BaseException:
            if tx.depth == 1:
                tx.adds = None
                await tx.pipe.reset()
            raise
        finally:
            tx.depth -= 1
            if tx.depth == 0:
                self._tx.set(None)

    @contextlib.asynccontextmanager
    async def _writes(self) -> AsyncIterator[Any]:
        """The pipeline a write goes on: the transaction's, or its own one-step MULTI."""
        tx = self._open_tx()
        if tx is not None:
            self._flush_adds(tx)  # writes reach the MULTI in the order they were made
            yield tx.pipe
            return
        async with self.transaction():
            yield self._current().pipe

    def _open_tx(self) -> _Tx | None:
        tx = self._tx.get()
        return tx if tx is not None and tx.owner is asyncio.current_task() else None

    def _current(self) -> _Tx:
        tx = self._open_tx()
        assert tx is not None, "inside transaction()"
        return tx

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> None:
        async with self._writes() as pipe:
            self._eval(pipe, name, keys, args)

    def _eval(self, client: Any, name: str, keys: list[str], args: list[Any]) -> Any:
        """A script by EVAL with its text, on the MULTI or (``self._r``, awaited) on its
        own; not EVALSHA: redis-py sends SCRIPT EXISTS before every pipeline that holds
        an EVALSHA (one more round trip per sendMessage), and an EVALSHA that Redis does
        not know (restarted, flushed) fails alone at EXEC while the rest of the MULTI
        is applied. Redis caches the compiled script by its hash, so EVAL costs the
        text's bytes, not a compile."""
        return client.eval(self._texts[name], len(keys), *keys, *args)

    def _queue(
        self, name: str, keys: list[str], args: list[Any], then: Callable[[Any], None]
    ) -> None:
        """A script on the transaction's MULTI; ``then`` gets its result at the commit."""
        tx = self._current()
        self._flush_adds(tx)
        at = len(tx.pipe)
        self._eval(tx.pipe, name, keys, args)
        tx.on_commit.append(lambda results: then(results[at]))

    def committed(self, seq: int) -> tuple[int, int]:
        """(seq, the cid's seq before) of a message of this task's last transaction:
        inside a transaction add_message can only return a placeholder (below zero),
        since the seq is taken by the commit itself."""
        if seq >= 0:
            return seq, 0
        last = self._last.get()
        assert last is not None, "committed() after the transaction's commit"
        return last.committed[seq]

    # clients -------------------------------------------------------------------

    async def known(self, appid: str, cid: str) -> bool:
        return bool(await self._r.exists(self._k("c", appid, cid)))

    async def known_many(self, appid: str, cids: list[str]) -> set[str]:
        """One ZMSCORE on the app's ``seen`` set per few thousand cids (every registered
        cid is in it), not an EXISTS per cid: a broadcast to 20,000 spent most of its
        time in those."""
        key = self._k("seen", appid)
        return await self._found(cids, lambda chunk: self._r.zmscore(key, chunk))

    async def _found(
        self, cids: list[str], read: Callable[[list[str]], Awaitable[list[Any]]]
    ) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(cids, LOOKUP_CHUNK):
            values = await read(chunk)
            found.update(cid for cid, v in zip(chunk, values, strict=True) if v is not None)
        return found

    async def client(self, appid: str, cid: str) -> ClientRecord | None:
        row = await self._r.hmget(self._k("c", appid, cid), ["secret_hash", "acked", "issued"])
        if row[1] is None:
            return None
        return ClientRecord(row[0] or None, int(row[1]), int(row[2] or 0))

    async def register(
        self, appid: str, cid: str, acked: int, secret_hash: str | None = None
    ) -> int:
        """As GatewayStore.register: the cursor the session resumes from. Raises
        CidTaken when a hello on another node bound the cid to another secret since
        ``secret_hash`` was checked (service.register)."""
        now = self._clock()
        key = self._k("c", appid, cid)
        row = await self.client(appid, cid)
        pull = ""
        if row is None:
            cursor = 0
        else:
            cursor = resume_cursor(row, acked)
            if cursor < row.acked:  # our own cursor was past what we issued
                pull = str(cursor)
        h = secret_hash or ""

        def registered(made: Any) -> None:
            if not int(made):
                raise CidTaken(cid)

        async with self._writes():
            keys = [key, self._k("seen", appid), self._p + "apps"]
            self._queue("register", keys, [appid, cid, now, h, pull], registered)
            self._acks_on(self._current().pipe, [(appid, cid, cursor)])
            if (node := self.node) is not None:  # presence, and the older connection drops
                keys = [key, self._k("on", appid, cid), self._p + "cluster"]
                args = [node, appid, cid, HOLD_TTL_S, h]
                self._queue("claim", keys, args, lambda reg: self._took(appid, cid, reg))
        return cursor

    def _took(self, appid: str, cid: str, reg: Any) -> None:
        self.regs[(appid, cid)] = int(reg)

    async def touch(self, appid: str, cid: str) -> None:
        if await self.known(appid, cid):
            now = self._clock()
            async with self._writes() as pipe:
                pipe.hset(self._k("c", appid, cid), "last_seen", now)
                pipe.zadd(self._k("seen", appid), {cid: now})
        if self.on_touch is not None:
            self.on_touch(appid, cid)

    # presence (cluster.py) -------------------------------------------------------

    async def present_many(self, appid: str, cids: list[str]) -> set[str]:
        """The cids a live node holds a connection of: their presence keys, then the
        liveness keys of the nodes those name (a few, whatever the cids' number)."""
        holders: dict[str, str] = {}
        for chunk in _chunks(cids, LOOKUP_CHUNK):
            values = await self._r.mget([self._k("on", appid, c) for c in chunk])
            holders.update((c, v) for c, v in zip(chunk, values, strict=True) if v is not None)
        nodes = list(set(holders.values()))
        if not nodes:
            return set()
        alive = await self._r.mget([self._k("node", n) for n in nodes])
        live = {n for n, up in zip(nodes, alive, strict=True) if up is not None}
        found = {c for c, n in holders.items() if n in live}
        # A node of an earlier version keeps no liveness key: its presence keys live
        # PRESENCE_TTL_S and it renews them while it lives (a rolling upgrade). A
        # newer node's keys live HOLD_TTL_S, so a dead one's cids stay offline.
        unsure = [c for c in holders if c not in found]
        limit = PRESENCE_TTL_S * 1000
        for chunk in _chunks(unsure, LOOKUP_CHUNK):
            pipe = self._r.pipeline(transaction=False)
            for c in chunk:
                pipe.pttl(self._k("on", appid, c))
            ttls = await pipe.execute()
            found.update(c for c, ms in zip(chunk, ttls, strict=True) if 0 < ms <= limit)
        return found

    async def heartbeat(self) -> None:
        """This node is alive for another PRESENCE_TTL_S: every cid it holds counts as
        online on every node (one SET, however many it holds)."""
        pipe = self._r.pipeline(transaction=False)
        token, high = self._beat(pipe)
        self._saw_epoch(await pipe.execute(), token, high)

    def _beat(self, pipe: Any) -> tuple[str, int]:
        """The liveness SET, the store's epoch and its seq counter on a pipeline. The
        epoch is a key no one deletes, set by the first node to find it missing (NX
        GET answers what it held). Another value than the one this node saw before
        means Redis lost its data (FLUSHALL, a restart without persistence) under
        connections that stayed up: their registrations went with it. The token, and
        the highest seq seen before the pipeline is sent (the counter is not below it)."""
        pipe.set(self._k("node", str(self.node)), 1, ex=PRESENCE_TTL_S)
        token = secrets.token_hex(8)  # a new one each time: never the lost one
        pipe.set(self._p + "epoch", token, nx=True, get=True)
        # Heard by this node's own subscriber: a link that hears nothing, not even
        # this, is dead (cluster.SILENT_S).
        pipe.publish(f"{self._p}cluster:{self.node}", json.dumps({"node": self.node}))
        pipe.get(self._p + "seq")
        return token, self.high

    def _saw_epoch(self, results: list[Any], token: str, high: int) -> None:
        """What _beat's pipeline answered: on_lost is called when the epoch changed,
        or the seq counter is below a seq seen committed before it was read."""
        before, counter = results[1], int(results[3] or 0)
        current = token if before is None else before
        lost = self.epoch is not None and current != self.epoch
        self.epoch = current
        if lost:
            self.high = counter
            if self.on_lost is not None:
                self.on_lost()
        elif counter < high:
            self._rolled_back(counter)
        else:
            self.saw_seq(counter)

    def saw_seq(self, seq: int) -> None:
        """``seq`` is committed (a commit's answer, a notice, a read of the store)."""
        self.high = max(self.high, seq)

    def _rolled_back(self, counter: int) -> None:
        """Redis answers with older data than it had (restarted from an older snapshot
        or after a power cut under everysec, a replica that lagged took over): the
        epoch is the same, but new seqs repeat ones the connections here have sent,
        which they skipped as sent (answered successed_online). Each connection is
        closed, as when the data is lost, and its daemon adopts the store's cursor."""
        log.warning("the store went back to older data", seq=counter, seen=self.high)
        self.high = counter
        if self.on_lost is not None:
            self.on_lost()

    async def flatline(self) -> None:
        """This node stops: its cids are offline for the others at once."""
        await self._r.delete(self._k("node", str(self.node)))

    async def leave(self, appid: str, cid: str) -> None:
        """This node holds the cid no more. Its registration number stays in ``regs``
        (the cluster's renewal prunes it): a hello to this node while the delete is on
        its way has replaced it with its own, which must not be dropped."""
        if self.node is not None:
            await self._eval(self._r, "leave", [self._k("on", appid, cid)], [self.node])

    async def renew_presence(self, held: list[tuple[str, str]]) -> None:
        """This node holds these cids: their presence keys name it for another
        HOLD_TTL_S, and it is alive. By EVAL, one call per LOOKUP_CHUNK cids: a Redis
        that restarted has no scripts, and an EVALSHA failed with NoScriptError on every
        round (the cids went "offline" for the other nodes after a Redis restart)."""
        keys = [self._k("on", a, c) for a, c in held]
        pipe = self._r.pipeline(transaction=False)
        token, high = self._beat(pipe)
        for chunk in _chunks(keys, LOOKUP_CHUNK):
            self._eval(pipe, "refresh", chunk, [self.node, HOLD_TTL_S])
        self._saw_epoch(await pipe.execute(), token, high)

    async def all_cids(self, appid: str) -> list[str]:
        return list(await self._r.zrange(self._k("seen", appid), 0, -1))

    async def clients(self, appid: str, cids: list[str]) -> dict[str, tuple[float, float]]:
        pipe = self._r.pipeline(transaction=False)
        for cid in cids:
            pipe.hmget(self._k("c", appid, cid), ["created_at", "last_seen"])
        found: dict[str, tuple[float, float]] = {}
        for cid, (created, seen) in zip(cids, await pipe.execute(), strict=True):
            if created is not None:
                found[cid] = (float(created), float(seen))
        return found

    # messages ------------------------------------------------------------------

    async def add_message(
        self,
        appid: str,
        cid: str,
        msg_id: str,
        taskid: str,
        body: dict[str, Any] | str,
        ttl_s: float,
    ) -> int:
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        tx = self._open_tx()
        if tx is None:  # a commit of its own: the seq is known at once
            async with self.transaction():
                placeholder = await self.add_message(appid, cid, msg_id, taskid, text, ttl_s)
            return self.committed(placeholder)[0]
        shared = (appid, taskid, text, ttl_s)
        adds = tx.adds
        if adds is None or adds.shared != shared or len(adds.items) >= ADD_BATCH:
            self._flush_adds(tx)
            adds = tx.adds = _Adds(shared, self._expiry_now())
        placeholder = -1 - len(tx.committed)
        tx.committed[placeholder] = (0, 0)
        adds.items.append((cid, msg_id, placeholder))
        return placeholder

    def _flush_adds(self, tx: _Tx) -> None:
        """The pending add_message calls onto the MULTI, as one script call."""
        adds, tx.adds = tx.adds, None
        if adds is None:
            return
        appid, taskid, text, ttl_s = adds.shared
        now = adds.now
        keys = [self._p + "due", self._p + "cluster", self._p + "seq"]
        args: list[Any] = [self._p, appid, taskid, text, repr(now + ttl_s), repr(now), ttl_s]
        args += [RECEIPT_WINDOW_S, self.node or ""]
        args.append("1" if len(text) <= NOTICE_BODY_MAX else "0")
        guard = self._guard.get()
        args.append("" if guard is None else guard[1])
        if guard is not None:
            keys.append(guard[0])
        for cid, msg_id, _ in adds.items:
            args += [cid, msg_id]

        def then(result: list[Any] | int) -> None:
            if not isinstance(result, list):
                return  # the claim is another call's: nothing stored (remember_answer)
            if result and int(result[0]) <= tx.high:  # seqs follow on from the first
                self._rolled_back(int(result[-2]))
            else:
                self.saw_seq(int(result[-2]))
            for n, (cid, _, placeholder) in enumerate(adds.items):
                tx.committed[placeholder] = self._added(appid, cid, result[2 * n : 2 * n + 2])

        self._queue("add", keys, args, then)

    def _added(self, appid: str, cid: str, result: list[Any]) -> tuple[int, int]:
        seq, before = int(result[0]), int(result[1])
        if self.on_added is not None:
            self.on_added(appid, cid, seq, before)
        return seq, before

    async def after(
        self, appid: str, cid: str, seq: int, limit: int = 500
    ) -> list[tuple[int, str, dict[str, Any]]]:
        return [(s, i, json.loads(b)) for s, i, b in await self.after_raw(appid, cid, seq, limit)]

    async def after_raw(
        self, appid: str, cid: str, seq: int, limit: int = 500
    ) -> list[tuple[int, str, str]]:
        """Unexpired messages after ``seq`` in order, each body as its JSON text."""
        now = self._expiry_now()
        found: list[tuple[int, str, str]] = []
        start = f"({seq}"
        while len(found) < limit:
            seqs = await self._r.zrangebyscore(
                self._k("m", appid, cid), start, "+inf", start=0, num=limit
            )
            if not seqs:
                break
            rows = await self._r.hmget(self._k("b", appid, cid), seqs)
            for s, row in zip(seqs, rows, strict=True):
                if row is None:
                    continue  # acked or purged between the two reads
                msg_id, _taskid, text, expires_at = json.loads(row)
                if float(expires_at) > now:
                    found.append((int(s), msg_id, text))
            start = f"({seqs[-1]}"
            self.saw_seq(int(seqs[-1]))
        return found[:limit]

    async def ack(self, appid: str, cid: str, seq: int) -> None:
        await self.ack_many([(appid, cid, seq)])

    async def ack_many(self, acks: Iterable[tuple[str, str, int]]) -> None:
        """Outside a transaction, not on a MULTI: each script call is atomic and an ack
        is idempotent, and a full Redis (noeviction) refuses every command queued on a
        MULTI, so the acks that would free its room were refused."""
        if self._open_tx() is not None:
            async with self._writes() as pipe:
                self._acks_on(pipe, list(acks))
            return
        pipe = self._r.pipeline(transaction=False)
        self._acks_on(pipe, list(acks))
        await pipe.execute()

    def _acks_on(self, pipe: Any, acks: list[tuple[str, str, int]]) -> None:
        """One script call per ADD_BATCH acks (not one each: 20,000 daemons acking a
        broadcast sent the script's text 20,000 times)."""
        for chunk in _chunks(acks, ADD_BATCH):
            args: list[Any] = [self._p, self._p + "t:"]
            for appid, cid, seq in chunk:
                args += [appid, cid, seq]
            self._eval(pipe, "ack", [], args)

    async def purge_expired(self) -> int:
        """Expired messages (Redis' own expiry takes whole stale keys; this takes the
        stale rows of keys with fresher ones), visiting only the cids whose earliest
        message is due: every node once read every cid with messages, one script call
        each, every minute. Deliveries expire by themselves with the receipt window."""
        due = self._p + "due"
        while await self._eval(self._r, "fold", [self._p + "queued", due], []):
            pass
        now = repr(self._expiry_now())
        gone = 0
        while members := await self._r.zrangebyscore(due, "-inf", now, start=0, num=PURGE_BATCH):
            gone += int(await self._eval(self._r, "expire", [due], [self._p, now, *members]))
            if len(members) < PURGE_BATCH:
                break
        return gone

    async def purge_unseen(self, max_age_s: float, keep: Iterable[tuple[str, str]] = ()) -> int:
        online = set(keep)
        cutoff = self._clock() - max_age_s
        stale: list[tuple[str, str]] = []
        for appid in await self._r.smembers(self._p + "apps"):
            old = await self._r.zrangebyscore(self._k("seen", appid), "-inf", cutoff)
            old = [cid for cid in old if (appid, cid) not in online]
            held = await self.present_many(appid, old)  # on another node
            stale += [(appid, cid) for cid in old if cid not in held]
        forgotten = 0
        # PURGE_BATCH cids per MULTI: a day that leaves 100,000 cids unseen must not
        # become one transaction that holds Redis for seconds.
        for chunk in _chunks(stale, PURGE_BATCH):
            pipe = self._r.pipeline(transaction=True)
            for appid, cid in chunk:
                kinds = ("c", "m", "b", "d", "tag")
                keys = [self._k(k, appid, cid) for k in kinds]
                keys += [self._k("al", appid), self._k("u", appid), self._k("seen", appid)]
                self._eval(pipe, "forget", keys, [cid, self._p, appid, repr(cutoff)])
            forgotten += sum(int(n) for n in await pipe.execute())
        return forgotten

    async def pending_count(self, appid: str, cid: str) -> int:
        now = self._expiry_now()
        rows = await self._r.hvals(self._k("b", appid, cid))
        return sum(float(json.loads(r)[3]) > now for r in rows)

    # request_id deduplication ----------------------------------------------------

    async def answer_for(self, appid: str, request_id: str) -> dict[str, Any] | None:
        text = await self._r.get(self._k("r", appid, request_id))
        if text is None or text.startswith(CLAIMED):  # an answer is a JSON object
            return None
        answer: dict[str, Any] = json.loads(text)
        return answer

    async def remember_answer(self, appid: str, request_id: str, answer: dict[str, Any]) -> None:
        """The first answer stays; a claim (its own call's) gives way to it. A call
        whose claim was taken from it meanwhile raises ClaimLost at the commit."""
        key = self._k("r", appid, request_id)
        guard = self._guard.get()
        if guard is not None and guard[0] != key:
            guard = None
        marker = CLAIMED if guard is None else guard[1]
        args = [json.dumps(answer), marker, REQUEST_ANSWER_TTL_S]

        def answered(made: Any) -> None:
            self._let_go(key)
            self._guard.set(None)
            if guard is not None and not int(made):
                # The claim this call held is another call's (or answered) now: its
                # commit stored nothing, and that call's answer is the request_id's.
                raise ClaimLost(request_id)

        async with self.transaction():  # the claim is renewed until the answer commits
            self._queue("remember", [key], args, answered)

    async def claim_answer(self, appid: str, request_id: str) -> bool:
        """A marker in the answer's key, renewed while this call runs and CLAIM_TTL_S
        past that at most (a node that died holding it lets it go then)."""
        key = self._k("r", appid, request_id)
        # This call's own marker: a claim that lapsed (Redis away past CLAIM_TTL_S)
        # and was taken by a retry must not be renewed, released or answered over by
        # the call that lost it, as one shared marker let it.
        marker = f"{CLAIMED}:{secrets.token_hex(8)}"
        self._guard.set(None)
        if not await self._r.set(key, marker, nx=True, ex=CLAIM_TTL_S):
            return False
        self._let_go(key)
        # The call's writes are stored only while this claim is its own: one lapsed and
        # taken by a retry stored the messages twice and made a second answer.
        self._guard.set((key, marker))
        renewal = asyncio.get_running_loop().create_task(self._renew_claim(key, marker))
        self._claims[key] = (marker, renewal)
        return True

    async def _renew_claim(self, key: str, marker: str) -> None:
        """Every third of CLAIM_TTL_S until the answer or the release: a renewal that
        fails (Redis away) is tried again at the next."""
        while True:
            await asyncio.sleep(CLAIM_TTL_S / 3)
            with contextlib.suppress(redis.RedisError):
                if not await self._eval(self._r, "renew_claim", [key], [marker, CLAIM_TTL_S]):
                    if self._claims.get(key, ("", None))[1] is asyncio.current_task():
                        del self._claims[key]
                    return

    def _let_go(self, key: str) -> str:
        """Nothing of the claim is kept here any more (the answer committed, or the
        release is on its way): its renewals end. Its marker, CLAIMED if none."""
        marker, renewal = self._claims.pop(key, (CLAIMED, None))
        if renewal is not None:
            renewal.cancel()
        return marker

    async def release_answer(self, appid: str, request_id: str) -> None:
        key = self._k("r", appid, request_id)
        self._guard.set(None)
        await self._eval(self._r, "release", [key], [self._let_go(key)])

    # aliases ---------------------------------------------------------------------

    async def alias_of(self, appid: str, cid: str) -> str | None:
        alias = await self._r.hget(self._k("al", appid), cid)
        return None if alias is None else str(alias)

    async def cids_of_alias(self, appid: str, alias: str) -> list[str]:
        return sorted(await self._r.smembers(self._k("ali", appid, alias)))

    async def bind_alias(self, appid: str, cid: str, alias: str) -> None:
        await self._run("alias", [self._k("al", appid), self._k("ali", appid, "")], [cid, alias])

    async def bind_aliases(
        self, appid: str, pairs: list[tuple[str, str]], cap: int, refuse: Refuse
    ) -> None:
        """One script for the whole list, on the MULTI: the cap is checked against what
        is there at the commit, so two calls (two nodes, or two requests here awaiting
        between their reads and their EXECs) cannot pass it together. A refused list
        writes none of its pairs, and the commit raises ``refuse(alias, its cids)``: the
        script's own writes are all or none, but other writes on the same MULTI are
        committed with it (the server methods' transactions hold nothing else)."""
        keys = [self._k("al", appid), self._k("ali", appid, "")]
        args = [cap, *(x for pair in pairs for x in pair)]
        async with self.transaction():
            self._queue("aliases", keys, args, _refused_by(refuse))

    async def unbind_alias(self, appid: str, cid: str, alias: str) -> None:
        """The check that the cid's alias is ``alias`` is the script's, at the commit:
        made here before it, another node's rebind in between was undone by half."""
        keys = [self._k("al", appid), self._k("ali", appid, alias)]
        await self._run("unbind", keys, [cid, alias])

    async def unbind_all_alias(self, appid: str, alias: str) -> None:
        await self._run("unalias", [self._k("al", appid), self._k("ali", appid, alias)], [])

    # custom tags -------------------------------------------------------------------

    async def tags_of(self, appid: str, cid: str) -> list[str]:
        return sorted(await self._r.smembers(self._k("tag", appid, cid)))

    async def set_tags(self, appid: str, cid: str, tags: list[str]) -> None:
        keys = [self._k("tag", appid, cid), self._k("tagi", appid, "")]
        await self._run("tags", keys, [cid, *tags])

    async def add_tag(self, appid: str, cid: str, tag: str) -> None:
        async with self._writes() as pipe:
            pipe.sadd(self._k("tag", appid, cid), tag)
            pipe.sadd(self._k("tagi", appid, tag), cid)

    async def add_tag_to(
        self, appid: str, cids: list[str], tag: str, cap: int, refuse: Refuse
    ) -> None:
        """As bind_aliases: one script checks each cid's cap at the commit and adds the
        tag to all or none; a refusal raises ``refuse(cid, its tags)`` at the commit."""
        if not cids:
            return
        keys = [self._k("tag", appid, ""), self._k("tagi", appid, tag)]
        async with self.transaction():
            self._queue("add_tag", keys, [cap, tag, *cids], _refused_by(refuse))

    async def remove_tag(self, appid: str, cid: str, tag: str) -> None:
        async with self._writes() as pipe:
            pipe.srem(self._k("tag", appid, cid), tag)
            pipe.srem(self._k("tagi", appid, tag), cid)

    async def cids_with_tag(self, appid: str, tag: str) -> list[str]:
        return sorted(await self._r.smembers(self._k("tagi", appid, tag)))

    # uni-id mapping ----------------------------------------------------------------

    async def bind_uniid(
        self, appid: str, cid: str, user_id: str | None, device_id: str | None
    ) -> None:
        keys = [self._k("u", appid), self._k("uu", appid, ""), self._k("ud", appid, "")]
        await self._run("uniid", keys, [cid, user_id or "", device_id or ""])

    async def set_user_tags(self, appid: str, user_id: str, tags: list[str]) -> None:
        keys = [self._k("ut", appid, user_id), self._k("uti", appid, "")]
        await self._run("tags", keys, [user_id, *tags])

    async def has_uniid(self, appid: str) -> bool:
        return bool(await self._r.hlen(self._k("u", appid)))

    async def cids_for_users(self, appid: str, user_ids: list[str]) -> list[str]:
        return await self._union([self._k("uu", appid, u) for u in user_ids])

    async def cids_for_devices(self, appid: str, device_ids: list[str]) -> list[str]:
        return await self._union([self._k("ud", appid, d) for d in device_ids])

    async def cids_for_user_tags(self, appid: str, tags: list[str]) -> list[str]:
        users = await self._r.sunion([self._k("uti", appid, t) for t in tags]) if tags else set()
        return await self.cids_for_users(appid, sorted(users))

    async def _union(self, keys: list[str]) -> list[str]:
        return sorted(await self._r.sunion(keys)) if keys else []

    # tasks and their counters ------------------------------------------------------

    async def add_task(
        self, appid: str, taskid: str, group_name: str | None, target_num: int, msg_num: int
    ) -> None:
        now = self._clock()
        task = {
            "appid": appid,
            "group_name": group_name or "",
            "created_at": now,
            "target_num": target_num,
            "msg_num": msg_num,
            "receive_num": 0,
            "display_num": 0,
            "click_num": 0,
        }
        guard = self._guard.get()
        if guard is None:
            async with self._writes() as pipe:
                pipe.hset(self._k("t", taskid), mapping=task)
                pipe.zadd(self._k("tt", appid), {taskid: now})
                if group_name is not None:
                    pipe.sadd(self._k("tg", appid, group_name), taskid)
            return
        # A claimed call's task is written only while the claim is its own (ClaimLost).
        t = self._k("t", taskid)
        group = t if group_name is None else self._k("tg", appid, group_name)
        args: list[Any] = [guard[1], taskid, now]
        for k, v in task.items():
            args += [k, v]
        await self._run("task", [t, self._k("tt", appid), group, guard[0]], args)

    async def count_receipt(
        self, appid: str, cid: str, msg_id: str, taskid: str, event: str
    ) -> bool:
        index, column = {"display": (3, "display_num"), "click": (4, "click_num")}[event]
        keys = [self._k("d", appid, cid), self._k("t", taskid)]
        return bool(
            await self._eval(self._r, "receipt", keys, [msg_id, taskid, appid, index, column])
        )

    async def tasks_made(self, appid: str, start: float, end: float) -> tuple[int, int]:
        taskids = await self._tasks_between(appid, start, end)
        broadcasts = sum(t.startswith(BROADCAST_TASK) for t in taskids)
        return broadcasts, len(taskids) - broadcasts

    async def _tasks_between(self, appid: str, start: float, end: float) -> list[str]:
        """The app's task ids made from ``start`` to before ``end`` (its time index)."""
        return list(await self._r.zrangebyscore(self._k("tt", appid), start, f"({end}"))

    async def report(self, appid: str, where: str, args: tuple[Any, ...]) -> dict[str, int] | None:
        """The SQLite store's three report filters (methods.py), on the task indexes."""
        if where == "taskid=?":
            taskids = [str(args[0])]
        elif where == "group_name=?":
            taskids = list(await self._r.smembers(self._k("tg", appid, str(args[0]))))
        elif where == DAY:
            taskids = await self._tasks_between(appid, args[0], args[1])
        else:
            raise ValueError(f"report: where {where!r} is not one of the store's filters")
        pipe = self._r.pipeline(transaction=False)
        for taskid in taskids:
            pipe.hmget(self._k("t", taskid), ["appid", *COUNTERS])
        sums = dict.fromkeys(COUNTERS, 0)
        found = 0
        for row in await pipe.execute():
            if row[0] != appid:
                continue
            found += 1
            for k, v in zip(COUNTERS, row[1:], strict=True):
                sums[k] += int(v or 0)
        return sums if found else None
