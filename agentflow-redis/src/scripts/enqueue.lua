-- ARGV: prefix, n, then per job: id, task, data, priority, max attempts, unique key ('' none),
-- run_at ms ('' = now). Returns per job: 1 (new) or 0 (existing), then the id.
local now = now_ms()
local n = tonumber(ARGV[2])
local out, zavail, zsched = {}, {}, {}
for i = 0, n - 1 do
  local b = 3 + i * 7
  local id, task, d, prio = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local maxa, u, runat = ARGV[b + 4], ARGV[b + 5], ARGV[b + 6]
  local existing = false
  if u ~= '' then
    local cur = redis.call('HGET', K_UNIQUE, u)
    if cur and is_live(redis.call('HGET', jkey(cur), 's')) then existing = cur end
  end
  if existing then
    out[#out + 1] = 0
    out[#out + 1] = existing
  else
    if u ~= '' then redis.call('HSET', K_UNIQUE, u, id) end
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
    redis.call('HSET', jkey(id), 'd', d, 't', task, 'p', prio, 'ma', maxa, 'u', u, 's', s,
      'a', 0, 'r', r, 'c', now, 'm', now)
    redis.call('SADD', P .. 'task:' .. task, id)
    out[#out + 1] = 1
    out[#out + 1] = id
  end
end
if #zsched > 0 then redis.call('ZADD', K_SCHED, unpack(zsched)) end
if #zavail > 0 then
  redis.call('ZADD', K_AVAIL, unpack(zavail))
  notify(#zavail / 2)
end
return out
