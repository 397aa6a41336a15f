-- ARGV: prefix, id, retention ms, prune limit.
-- Returns 1 (cancelled), 0 (already finished) or -1 (no such job).
local now = now_ms()
local id = ARGV[2]
local s = redis.call('HGET', C_STATE, id)
if not s then return -1 end
if not is_live(s) then return 0 end
if s == 'available' then
  redis.call('ZREM', K_AVAIL, amember(tonumber(redis.call('HGET', C_RUN, id)), id))
elseif s == 'scheduled' then
  redis.call('ZREM', K_SCHED, id)
elseif s == 'retryable' then
  redis.call('ZREM', K_RETRY, id)
else
  redis.call('ZREM', K_RUN, id)
end
finish({ id }, 'cancelled', K_CANCELLED, now)
prune(K_CANCELLED, now - tonumber(ARGV[3]), tonumber(ARGV[4]))
return 1
