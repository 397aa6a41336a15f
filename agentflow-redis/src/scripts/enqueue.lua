-- ARGV: prefix, n, then per job: id, task, data, priority, max attempts, unique key ('' none),
-- run_at ms ('' = now). Returns per job: 1 (new) or 0 (existing), then the id.
local now = now_ms()
local n = tonumber(ARGV[2])
-- Live holders of the unique keys asked for (one look-up for the batch).
local ukeys = {}
for i = 0, n - 1 do
  local u = ARGV[3 + i * 7 + 5]
  if u ~= '' then ukeys[#ukeys + 1] = u end
end
local holder = {}
if #ukeys > 0 then
  local ids = hmget(K_UNIQUE, ukeys)
  local found, fkeys = {}, {}
  for i = 1, #ukeys do
    if ids[i] then
      found[#found + 1] = ids[i]
      fkeys[#fkeys + 1] = ukeys[i]
    end
  end
  local states = hmget(C_STATE, found)
  for i = 1, #found do
    if is_live(states[i]) then holder[fkeys[i]] = found[i] end
  end
end
local out, zavail, zsched = {}, {}, {}
local new, c_data, c_task, c_prio, c_maxa, c_ukey, c_state, c_run, uniq = {}, {}, {}, {}, {}, {}, {}, {}, {}
for i = 0, n - 1 do
  local b = 3 + i * 7
  local id, task, d, prio = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local maxa, u, runat = ARGV[b + 4], ARGV[b + 5], ARGV[b + 6]
  local existing = u ~= '' and holder[u]
  if existing then
    out[#out + 1] = 0
    out[#out + 1] = existing
  else
    if u ~= '' then
      holder[u] = id
      uniq[#uniq + 1] = u
      uniq[#uniq + 1] = id
      c_ukey[#c_ukey + 1] = id
      c_ukey[#c_ukey + 1] = u
    end
    local r = now
    if runat ~= '' then r = tonumber(runat) end
    local s = 'available'
    if r > now then
      s = 'scheduled'
      zsched[#zsched + 1] = r
      zsched[#zsched + 1] = id
    else
      zavail[#zavail + 1] = prio
      zavail[#zavail + 1] = amember(r, id)
    end
    new[#new + 1] = id
    local k = #new * 2
    c_data[k - 1], c_data[k] = id, d
    c_task[k - 1], c_task[k] = id, task
    c_prio[k - 1], c_prio[k] = id, prio
    c_maxa[k - 1], c_maxa[k] = id, maxa
    c_state[k - 1], c_state[k] = id, s
    c_run[k - 1], c_run[k] = id, r
    redis.call('SADD', P .. 'task:' .. task, id)
    out[#out + 1] = 1
    out[#out + 1] = id
  end
end
if #new > 0 then
  redis.call('HSET', C_DATA, unpack(c_data))
  redis.call('HSET', C_TASK, unpack(c_task))
  redis.call('HSET', C_PRIO, unpack(c_prio))
  redis.call('HSET', C_MAXA, unpack(c_maxa))
  redis.call('HSET', C_STATE, unpack(c_state))
  redis.call('HSET', C_RUN, unpack(c_run))
  hset_same(C_ATT, new, 0)
  hset_same(C_CREATED, new, now)
  hset_same(C_UPDATED, new, now)
  many('HSET', C_UKEY, c_ukey)
  many('HSET', K_UNIQUE, uniq)
end
many('ZADD', K_SCHED, zsched)
if #zavail > 0 then
  redis.call('ZADD', K_AVAIL, unpack(zavail))
  notify(#zavail / 2)
end
return out
