-- ARGV: prefix, id, token. Back to available without consuming the attempt.
-- Returns 1, or 0 when the lease is not current.
local now = now_ms()
local id, tok = ARGV[2], ARGV[3]
local jk = jkey(id)
local f = redis.call('HMGET', jk, 's', 'k', 'a', 'p', 'r')
if f[1] ~= 'running' or f[2] ~= tok then return 0 end
local att = tonumber(f[3]) - 1
if att < 0 then att = 0 end
redis.call('HSET', jk, 's', 'available', 'a', att, 'k', '', 'm', now)
redis.call('ZREM', K_RUN, id)
redis.call('ZADD', K_AVAIL, f[4], amember(tonumber(f[5]), id))
notify(1)
return 1
