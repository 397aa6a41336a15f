-- ARGV: prefix, id, token, error, retry_at ms ('' = none), retention ms, prune limit.
-- Returns 'retryable', 'failed', or 'lost' when the lease is not current.
local now = now_ms()
local id, tok = ARGV[2], ARGV[3]
local jk = jkey(id)
local f = redis.call('HMGET', jk, 's', 'k', 'u', 'a', 'ma')
if f[1] ~= 'running' or f[2] ~= tok then return 'lost' end
redis.call('ZREM', K_RUN, id)
if ARGV[5] ~= '' and tonumber(f[4]) < tonumber(f[5]) then
  local r = tonumber(ARGV[5])
  redis.call('HSET', jk, 's', 'retryable', 'r', r, 'e', ARGV[4], 'm', now)
  redis.call('ZADD', K_RETRY, r, id)
  if r <= now then notify(1) end
  return 'retryable'
end
redis.call('HSET', jk, 's', 'failed', 'e', ARGV[4], 'm', now)
redis.call('ZADD', K_FAILED, now, id)
free_unique(f[3], id)
prune(K_FAILED, now - tonumber(ARGV[6]), tonumber(ARGV[7]))
return 'failed'
