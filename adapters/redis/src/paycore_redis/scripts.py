"""The three Lua scripts of the Redis idempotency store: claim, complete, release.

Each runs atomically on the server in one round trip (EVALSHA). A record is one
hash per key:

* ``f``: the request fingerprint;
* ``t``: the holder's random token, while the request runs;
* ``l``: the holder's lease deadline (server clock, milliseconds);
* ``o``: ``1`` when the holder took the key over from an expired lease;
* ``r``: the stored result (JSON text, opaque to the scripts) once completed;
* ``c``: the token that completed it (so a retried ``complete`` is harmless).

The key's own expiry is the lease plus the abandoned-record retention while the
request runs, and the result's TTL once it completed. Lease deadlines use the
server's clock (``TIME``), so the clients' clocks never matter. Every script is
safe to run twice with the same arguments (redis-py retries a command once when
its connection broke): a retried claim finds its own token and keeps it.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CLAIM", "COMPLETE", "RELEASE"]

CLAIM: Final = """
-- KEYS[1] record; ARGV: fingerprint, token, lease_ms, retention_ms
local f, t, l, o, r = unpack(redis.call('HMGET', KEYS[1], 'f', 't', 'l', 'o', 'r'))
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local lease = tonumber(ARGV[3])
local taken_over = 0
if f then
  if f ~= ARGV[1] then
    return {'reused'}
  end
  if r then
    return {'result', r, redis.call('PTTL', KEYS[1])}
  end
  if t == ARGV[2] then
    return {'token', tonumber(o or '0')}
  end
  if tonumber(l) > now then
    return {'busy', tonumber(l) - now}
  end
  taken_over = 1
end
redis.call('HSET', KEYS[1], 'f', ARGV[1], 't', ARGV[2], 'l', string.format('%d', now + lease),
           'o', taken_over)
redis.call('PEXPIRE', KEYS[1], lease + tonumber(ARGV[4]))
return {'token', taken_over}
"""
"""Take the key (new, or from an expired lease), replay its result, or refuse.

Returns ``{'token', taken_over}``, ``{'result', json, milliseconds_kept}``, ``{'reused'}`` or
``{'busy', milliseconds_left}``.
"""

COMPLETE: Final = """
-- KEYS[1] record; ARGV: token, result_json, ttl_ms
local t, c = unpack(redis.call('HMGET', KEYS[1], 't', 'c'))
if t ~= ARGV[1] and c ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'r', ARGV[2], 'c', ARGV[1])
redis.call('HDEL', KEYS[1], 't', 'l', 'o')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
"""Store the result if the token holds the key (compare-and-set); 1 if stored, 0 if not."""

RELEASE: Final = """
-- KEYS[1] record; ARGV: token
if redis.call('HGET', KEYS[1], 't') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""
"""Delete the record if the token holds it (compare-and-delete); 1 if deleted, 0 if not."""
