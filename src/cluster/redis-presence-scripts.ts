// The Lua scripts behind RedisPresence. Every write that touches more than one key runs as
// one script, so a reader never sees a session in its uid's hash but not in its node's hash,
// and an exclusive add cannot interleave with another add for the same uid.
// Times are on Redis's clock (TIME): the one clock every node shares.
//
// Keys (see redis-presence.ts): LEASES zset node -> lease expiry (ms), USER hash per uid and
// NODE hash per node, both sessionId -> JSON entry. Node and user hash keys are built from
// prefixes passed in ARGV, so these scripts assume one Redis, not Redis Cluster.

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

/** Renews `node`'s lease; returns 1 when it had lapsed or was missing (its sessions may be gone). */
const RENEW = `
local function renew(leases, node, leaseMs)
  local old = redis.call('ZSCORE', leases, node)
  redis.call('ZADD', leases, 'GT', string.format('%.0f', now + leaseMs), node)
  if old and tonumber(old) > now then return 0 end
  return 1
end
`

/** Forgets every session of `node` and its lease. */
const DROP_NODE = `
local function dropNode(leases, nodeKey, node, userPrefix)
  local all = redis.call('HGETALL', nodeKey)
  for i = 1, #all, 2 do
    redis.call('HDEL', userPrefix .. cjson.decode(all[i + 1]).uid, all[i])
  end
  redis.call('DEL', nodeKey)
  redis.call('ZREM', leases, node)
end
`

export interface ScriptSpec {
  keys: number
  lua: string
}

/**
 * KEYS leases, user hash, own node hash; ARGV node, leaseMs, nodePrefix, id, json, exclusive.
 * Returns { lapsed, displaced entries as JSON }.
 */
export const ADD: ScriptSpec = {
  keys: 3,
  lua: `${NOW}${RENEW}
local lapsed = renew(KEYS[1], ARGV[1], tonumber(ARGV[2]))
local displaced = {}
if ARGV[6] == '1' then
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    if all[i] ~= ARGV[4] then
      displaced[#displaced + 1] = all[i + 1]
      redis.call('HDEL', ARGV[3] .. cjson.decode(all[i + 1]).node, all[i])
    end
  end
  redis.call('DEL', KEYS[2])
end
redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
return { lapsed, displaced }
`,
}

/** KEYS user hash; ARGV id, joined as JSON (a string or null), nodePrefix. Never recreates a session. */
export const SET_JOINED: ScriptSpec = {
  keys: 1,
  lua: `
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if not stored then return 0 end
local entry = cjson.decode(stored)
entry.joined = cjson.decode(ARGV[2])
local json = cjson.encode(entry)
redis.call('HSET', KEYS[1], ARGV[1], json)
redis.call('HSET', ARGV[3] .. entry.node, ARGV[1], json)
return 1
`,
}

/** KEYS user hash, node hash; ARGV id. */
export const REMOVE: ScriptSpec = {
  keys: 2,
  lua: `
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`,
}

/**
 * KEYS leases; ARGV node, leaseMs, nodePrefix, userPrefix. Renews the lease, collects the
 * sessions of nodes whose lease ran out, returns { lapsed, now, node, expiry, node, expiry... }.
 */
export const HEARTBEAT: ScriptSpec = {
  keys: 1,
  lua: `${NOW}${RENEW}${DROP_NODE}
local lapsed = renew(KEYS[1], ARGV[1], tonumber(ARGV[2]))
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))) do
  dropNode(KEYS[1], ARGV[3] .. node, node, ARGV[4])
end
return { lapsed, now, redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES') }
`,
}

/** KEYS leases. Returns { now, node, expiry, ... }: refreshes a reader's lease cache. */
export const LEASES: ScriptSpec = {
  keys: 1,
  lua: `${NOW}
return { now, redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES') }
`,
}

/**
 * Makes Redis hold exactly this node's own sessions again (after Redis lost them, or our
 * lease lapsed and another node collected them). KEYS leases, own node hash; ARGV node,
 * leaseMs, userPrefix, then (id, uid, json, exclusive) per session. An exclusive session
 * whose uid meanwhile bound on another live node is not restored: its id is returned, and
 * the hub's missing() reconciliation closes it.
 */
export const REREGISTER: ScriptSpec = {
  keys: 2,
  lua: `${NOW}${RENEW}
renew(KEYS[1], ARGV[1], tonumber(ARGV[2]))
local keep = {}
for i = 4, #ARGV, 4 do keep[ARGV[i]] = true end
local stale = redis.call('HGETALL', KEYS[2])
for i = 1, #stale, 2 do
  if not keep[stale[i]] then redis.call('HDEL', ARGV[3] .. cjson.decode(stale[i + 1]).uid, stale[i]) end
end
redis.call('DEL', KEYS[2])
local lost = {}
for i = 4, #ARGV, 4 do
  local id, userKey, json = ARGV[i], ARGV[3] .. ARGV[i + 1], ARGV[i + 2]
  local taken = false
  if ARGV[i + 3] == '1' then
    local others = redis.call('HGETALL', userKey)
    for j = 1, #others, 2 do
      local node = cjson.decode(others[j + 1]).node
      if others[j] ~= id and node ~= ARGV[1] then
        local expiry = redis.call('ZSCORE', KEYS[1], node)
        if expiry and tonumber(expiry) > now then taken = true end
      end
    end
  end
  if taken then
    lost[#lost + 1] = id
    redis.call('HDEL', userKey, id)
  else
    redis.call('HSET', userKey, id, json)
    redis.call('HSET', KEYS[2], id, json)
  end
end
return lost
`,
}

/** KEYS leases, own node hash; ARGV node, userPrefix. A graceful leave: sessions and lease go now. */
export const DEREGISTER: ScriptSpec = {
  keys: 2,
  lua: `${DROP_NODE}
dropNode(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return 1
`,
}
