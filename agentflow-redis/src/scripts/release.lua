-- ARGV: prefix, id, token. Back to available without consuming the attempt.
-- Returns 1, or 0 when the lease is not current.
local now = now_ms()
local id, tok = ARGV[2], ARGV[3]
if redis.call('HGET', C_TOKEN, id) ~= tok then return 0 end
local att = tonumber(redis.call('HGET', C_ATT, id)) - 1
if att < 0 then att = 0 end
redis.call('HDEL', C_TOKEN, id)
redis.call('HSET', C_ATT, id, att)
redis.call('HSET', C_STATE, id, 'available')
redis.call('HSET', C_UPDATED, id, now)
redis.call('ZREM', K_RUN, id)
local prio, run = redis.call('HGET', C_PRIO, id), redis.call('HGET', C_RUN, id)
redis.call('ZADD', K_AVAIL, prio, amember(tonumber(run), id))
notify(1)
return 1
