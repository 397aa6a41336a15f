-- Shared by every agentflow queue script (prepended by scripts.rs).
--
-- Layout: a job's fields live in one hash per field ("columns": data, state, attempt, ...),
-- keyed by job id, so a script touching n jobs issues a fixed number of variadic commands
-- (HMGET/HSET/ZADD over all n) instead of a few per job. KEYS are the same 21 fixed keys in
-- every script, all under one hash tag; per-task keys are built from the prefix in ARGV[1].
local K_AVAIL, K_SCHED, K_RETRY, K_RUN = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_DONE, K_FAILED, K_CANCELLED = KEYS[5], KEYS[6], KEYS[7]
local K_UNIQUE, K_NOTIFY = KEYS[8], KEYS[9]
local C_DATA, C_TASK, C_PRIO, C_MAXA, C_UKEY = KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14]
local C_STATE, C_ATT, C_RUN, C_CREATED = KEYS[15], KEYS[16], KEYS[17], KEYS[18]
local C_UPDATED, C_ERROR, C_TOKEN = KEYS[19], KEYS[20], KEYS[21]
local COLUMNS = { C_DATA, C_TASK, C_PRIO, C_MAXA, C_UKEY, C_STATE, C_ATT, C_RUN, C_CREATED,
  C_UPDATED, C_ERROR, C_TOKEN }
local P = ARGV[1]
local NOTIFY_CAP = 64

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
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

local function hmget(key, ids)
  if #ids == 0 then return {} end
  return redis.call('HMGET', key, unpack(ids))
end

-- HSET key id1 v id2 v ... (one value for all).
local function hset_same(key, ids, v)
  if #ids == 0 then return end
  local t = {}
  for i = 1, #ids do
    t[2 * i - 1] = ids[i]
    t[2 * i] = v
  end
  redis.call('HSET', key, unpack(t))
end

-- Runs a variadic command when the argument list is not empty.
local function many(cmd, key, args)
  if #args > 0 then redis.call(cmd, key, unpack(args)) end
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

-- Frees the unique keys held by `ids` (jobs that just finished), where they still hold them.
local function free_unique(ids)
  if #ids == 0 then return end
  local ukeys = hmget(C_UKEY, ids)
  local keys, owners = {}, {}
  for i = 1, #ids do
    if ukeys[i] then
      keys[#keys + 1] = ukeys[i]
      owners[#owners + 1] = ids[i]
    end
  end
  if #keys == 0 then return end
  local holders = hmget(K_UNIQUE, keys)
  local gone = {}
  for i = 1, #keys do
    if holders[i] == owners[i] then gone[#gone + 1] = keys[i] end
  end
  many('HDEL', K_UNIQUE, gone)
end

-- Marks `ids` finished in `state` (completed, failed, cancelled) at `now`.
local function finish(ids, state, set, now)
  if #ids == 0 then return end
  hset_same(C_STATE, ids, state)
  hset_same(C_UPDATED, ids, now)
  many('HDEL', C_TOKEN, ids)
  local z = {}
  for i = 1, #ids do
    z[2 * i - 1] = now
    z[2 * i] = ids[i]
  end
  redis.call('ZADD', set, unpack(z))
  free_unique(ids)
end

-- Deletes at most `limit` finished jobs of `set` that finished before `before`.
local function prune(set, before, limit)
  if limit <= 0 then return 0 end
  local ids = redis.call('ZRANGEBYSCORE', set, '-inf', before, 'LIMIT', 0, limit)
  if #ids == 0 then return 0 end
  local tasks = hmget(C_TASK, ids)
  local by_task = {}
  for i = 1, #ids do
    local t = tasks[i]
    if t then
      by_task[t] = by_task[t] or {}
      table.insert(by_task[t], ids[i])
    end
  end
  for t, members in pairs(by_task) do
    redis.call('SREM', P .. 'task:' .. t, unpack(members))
  end
  for _, c in ipairs(COLUMNS) do
    redis.call('HDEL', c, unpack(ids))
  end
  redis.call('ZREM', set, unpack(ids))
  return #ids
end

-- Moves at most `limit` due jobs of a delayed set (scheduled or retryable) to available.
local function promote(set, now, limit)
  local ids = redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, limit)
  if #ids == 0 then return 0 end
  local prio = hmget(C_PRIO, ids)
  local run = hmget(C_RUN, ids)
  local z, moved = {}, {}
  for i = 1, #ids do
    if prio[i] then
      z[#z + 1] = prio[i]
      z[#z + 1] = amember(tonumber(run[i]), ids[i])
      moved[#moved + 1] = ids[i]
    end
  end
  redis.call('ZREM', set, unpack(ids))
  many('ZADD', K_AVAIL, z)
  hset_same(C_STATE, moved, 'available')
  hset_same(C_UPDATED, moved, now)
  return #moved
end

-- Reserve with its arguments at ARGV[o..]: lease ms, max, promote limit, then one token per
-- job. Appends the expiry, then 7 fields per leased job, to `out`.
local function reserve(now, o, out)
  local lease, n, plimit = tonumber(ARGV[o]), tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2])
  local promoted = promote(K_SCHED, now, plimit) + promote(K_RETRY, now, plimit)
  local exp = now + lease
  out[#out + 1] = exp
  if n <= 0 then return end
  local popped = redis.call('ZPOPMIN', K_AVAIL, n)
  if #popped == 0 then return end
  local ids = {}
  for i = 1, #popped, 2 do
    ids[#ids + 1] = string.sub(popped[i], 14)
  end
  local data = hmget(C_DATA, ids)
  local att = hmget(C_ATT, ids)
  local run = hmget(C_RUN, ids)
  local err = hmget(C_ERROR, ids)
  local created = hmget(C_CREATED, ids)
  local taken, zrun, atts, toks = {}, {}, {}, {}
  for i = 1, #ids do
    if data[i] then
      local id = ids[i]
      local t = #taken + 1
      local tok = ARGV[o + 2 + t]
      local a = tonumber(att[i]) + 1
      taken[t] = id
      zrun[2 * t - 1] = exp
      zrun[2 * t] = id
      atts[2 * t - 1] = id
      atts[2 * t] = a
      toks[2 * t - 1] = id
      toks[2 * t] = tok
      out[#out + 1] = id
      out[#out + 1] = data[i]
      out[#out + 1] = a
      out[#out + 1] = run[i]
      out[#out + 1] = err[i] or ''
      out[#out + 1] = created[i]
      out[#out + 1] = tok
    end
  end
  if #taken == 0 then return end
  redis.call('ZADD', K_RUN, unpack(zrun))
  redis.call('HSET', C_ATT, unpack(atts))
  redis.call('HSET', C_TOKEN, unpack(toks))
  hset_same(C_STATE, taken, 'running')
  hset_same(C_UPDATED, taken, now)
  -- Promoted jobs nobody took yet: wake other idle workers.
  if promoted > #taken then notify(promoted - #taken) end
end

-- Completes `m` leases given as (id, token) pairs at ARGV[o..]; appends 1 (done) or 0 (lease
-- lost) per lease to `out`. Returns how many were completed.
local function complete(now, o, m, out)
  if m <= 0 then return 0 end
  local ids = {}
  for i = 0, m - 1 do ids[i + 1] = ARGV[o + 2 * i] end
  local toks = hmget(C_TOKEN, ids)
  local done = {}
  for i = 1, m do
    if toks[i] and toks[i] == ARGV[o + 2 * i - 1] then
      done[#done + 1] = ids[i]
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
  end
  if #done > 0 then
    redis.call('ZREM', K_RUN, unpack(done))
    finish(done, 'completed', K_DONE, now)
  end
  return #done
end
