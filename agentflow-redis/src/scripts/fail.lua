-- ARGV: prefix, id, token, error, retry_at ms ('' = none), retention ms, prune limit.
-- Returns 'retryable', 'failed', or 'lost' when the lease is not current.
local now = now_ms()
local id, tok = ARGV[2], ARGV[3]
if redis.call('HGET', C_TOKEN, id) ~= tok then return 'lost' end
redis.call('ZREM', K_RUN, id)
redis.call('HSET', C_ERROR, id, ARGV[4])
local att, maxa = redis.call('HGET', C_ATT, id), redis.call('HGET', C_MAXA, id)
if ARGV[5] ~= '' and tonumber(att) < tonumber(maxa) then
  local r = tonumber(ARGV[5])
  redis.call('HDEL', C_TOKEN, id)
  redis.call('HSET', C_STATE, id, 'retryable')
  redis.call('HSET', C_RUN, id, r)
  redis.call('HSET', C_UPDATED, id, now)
  redis.call('ZADD', K_RETRY, r, id)
  if r <= now then notify(1) end
  return 'retryable'
end
finish({ id }, 'failed', K_FAILED, now)
prune(K_FAILED, now - tonumber(ARGV[6]), tonumber(ARGV[7]))
return 'failed'
