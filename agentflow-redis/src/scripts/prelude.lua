-- Shared by every agentflow queue script (prepended by scripts.rs).
-- KEYS are the same nine fixed keys in every script, all under one hash tag; per-job and
-- per-task keys are built from the prefix in ARGV[1], which shares that hash tag.
local K_AVAIL, K_SCHED, K_RETRY, K_RUN = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_DONE, K_FAILED, K_CANCELLED = KEYS[5], KEYS[6], KEYS[7]
local K_UNIQUE, K_NOTIFY = KEYS[8], KEYS[9]
local P = ARGV[1]
local NOTIFY_CAP = 64

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function jkey(id)
  return P .. 'job:' .. id
end

-- Member of the available set: the score is the priority, and members of equal score sort
-- lexicographically, so a fixed-width run_at followed by the (time-ordered) id gives
-- "priority, then run_at, then id" with one ZPOPMIN.
local function amember(run, id)
  return string.format('%013d', run) .. id
end

local function is_live(s)
  return s == 'available' or s == 'scheduled' or s == 'running' or s == 'retryable'
end

-- Wakeup tokens for idle workers blocked on the notify list; capped so it never grows.
local function notify(k)
  if k <= 0 then return end
  local room = NOTIFY_CAP - redis.call('LLEN', K_NOTIFY)
  if k > room then k = room end
  if k <= 0 then return end
  local t = {}
  for i = 1, k do t[i] = '1' end
  redis.call('RPUSH', K_NOTIFY, unpack(t))
end

local function free_unique(u, id)
  if u and u ~= '' and redis.call('HGET', K_UNIQUE, u) == id then
    redis.call('HDEL', K_UNIQUE, u)
  end
end

-- Deletes at most `limit` finished jobs of `key` that finished before `before`.
local function prune(key, before, limit)
  if limit <= 0 then return 0 end
  local ids = redis.call('ZRANGEBYSCORE', key, '-inf', before, 'LIMIT', 0, limit)
  if #ids == 0 then return 0 end
  for _, id in ipairs(ids) do
    local jk = jkey(id)
    local t = redis.call('HGET', jk, 't')
    redis.call('DEL', jk)
    if t then redis.call('SREM', P .. 'task:' .. t, id) end
  end
  redis.call('ZREM', key, unpack(ids))
  return #ids
end

-- Moves at most `limit` due jobs of a delayed set (scheduled or retryable) to available.
local function promote(key, now, limit)
  local ids = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, limit)
  if #ids == 0 then return 0 end
  local z = {}
  for _, id in ipairs(ids) do
    local jk = jkey(id)
    local f = redis.call('HMGET', jk, 'p', 'r')
    if f[1] then
      z[#z + 1] = f[1]
      z[#z + 1] = amember(tonumber(f[2]), id)
      redis.call('HSET', jk, 's', 'available', 'm', now)
    end
  end
  redis.call('ZREM', key, unpack(ids))
  if #z > 0 then redis.call('ZADD', K_AVAIL, unpack(z)) end
  return #z / 2
end

-- Reserve with its arguments at ARGV[o..]: worker, lease ms, max, promote limit, then one
-- token per job. Appends the expiry, then 7 fields per leased job, to `out`.
local function reserve(now, o, out)
  local worker, lease = ARGV[o], tonumber(ARGV[o + 1])
  local n, plimit = tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])
  local promoted = promote(K_SCHED, now, plimit) + promote(K_RETRY, now, plimit)
  local exp = now + lease
  out[#out + 1] = exp
  if n <= 0 then return end
  local popped = redis.call('ZPOPMIN', K_AVAIL, n)
  local z = {}
  local t = 0
  for i = 1, #popped, 2 do
    local id = string.sub(popped[i], 14)
    local jk = jkey(id)
    local f = redis.call('HMGET', jk, 'd', 'a', 'r', 'e', 'c')
    if f[1] then
      t = t + 1
      local tok = ARGV[o + 3 + t]
      local att = tonumber(f[2]) + 1
      redis.call('HSET', jk, 's', 'running', 'a', att, 'k', tok, 'w', worker, 'x', exp, 'm', now)
      z[#z + 1] = exp
      z[#z + 1] = id
      out[#out + 1] = id
      out[#out + 1] = f[1]
      out[#out + 1] = att
      out[#out + 1] = f[3]
      out[#out + 1] = f[4] or ''
      out[#out + 1] = f[5]
      out[#out + 1] = tok
    end
  end
  if #z > 0 then redis.call('ZADD', K_RUN, unpack(z)) end
  -- Promoted jobs nobody took yet: wake other idle workers.
  if promoted > t then notify(promoted - t) end
end

-- Completes `m` leases given as (id, token) pairs at ARGV[o..]; appends 1 (done) or 0 (lease
-- lost) per lease to `out`. Returns how many were completed.
local function complete(now, o, m, out)
  local rm, z = {}, {}
  for i = 0, m - 1 do
    local id, tok = ARGV[o + 2 * i], ARGV[o + 2 * i + 1]
    local jk = jkey(id)
    local f = redis.call('HMGET', jk, 's', 'k', 'u')
    if f[1] == 'running' and f[2] == tok then
      redis.call('HSET', jk, 's', 'completed', 'm', now)
      rm[#rm + 1] = id
      z[#z + 1] = now
      z[#z + 1] = id
      free_unique(f[3], id)
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
  end
  if #rm > 0 then
    redis.call('ZREM', K_RUN, unpack(rm))
    redis.call('ZADD', K_DONE, unpack(z))
  end
  return #rm
end
