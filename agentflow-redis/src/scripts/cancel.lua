-- ARGV: prefix, id, retention ms, prune limit.
-- Returns 1 (cancelled), 0 (already finished) or -1 (no such job).
local now = now_ms()
local id = ARGV[2]
local jk = jkey(id)
local f = redis.call('HMGET', jk, 's', 'r', 'u')
if not f[1] then return -1 end
local s = f[1]
if not is_live(s) then return 0 end
if s == 'available' then
  redis.call('ZREM', K_AVAIL, amember(tonumber(f[2]), id))
elseif s == 'scheduled' then
  redis.call('ZREM', K_SCHED, id)
elseif s == 'retryable' then
  redis.call('ZREM', K_RETRY, id)
else
  redis.call('ZREM', K_RUN, id)
end
redis.call('HSET', jk, 's', 'cancelled', 'k', '', 'm', now)
redis.call('ZADD', K_CANCELLED, now, id)
free_unique(f[3], id)
prune(K_CANCELLED, now - tonumber(ARGV[3]), tonumber(ARGV[4]))
return 1
