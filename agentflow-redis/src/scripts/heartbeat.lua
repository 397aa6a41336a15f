-- ARGV: prefix, id, token, lease ms. Returns the new expiry, or -1 when the lease is lost.
local now = now_ms()
local id, tok = ARGV[2], ARGV[3]
if redis.call('HGET', C_TOKEN, id) ~= tok then return -1 end
local exp = now + tonumber(ARGV[4])
redis.call('ZADD', K_RUN, exp, id)
redis.call('HSET', C_UPDATED, id, now)
return exp
