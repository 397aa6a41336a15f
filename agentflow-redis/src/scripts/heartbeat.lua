-- ARGV: prefix, id, token, lease ms. Returns the new expiry, or -1 when the lease is lost.
local now = now_ms()
local id, tok = ARGV[2], ARGV[3]
local jk = jkey(id)
local f = redis.call('HMGET', jk, 's', 'k')
if f[1] ~= 'running' or f[2] ~= tok then return -1 end
local exp = now + tonumber(ARGV[4])
redis.call('HSET', jk, 'x', exp, 'm', now)
redis.call('ZADD', K_RUN, exp, id)
return exp
