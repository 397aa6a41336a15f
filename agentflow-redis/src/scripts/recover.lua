-- ARGV: prefix, batch, retention ms, prune limit.
-- Expired leases (at most `batch`) become retryable (due now) or failed by attempts left;
-- also prunes finished jobs past retention (bounded). Returns { recovered, more }.
local now = now_ms()
local lim = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', K_RUN, '-inf', now, 'LIMIT', 0, lim)
local n, retry = 0, 0
for _, id in ipairs(ids) do
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 's', 'a', 'ma', 'u')
  if f[1] == 'running' then
    n = n + 1
    if tonumber(f[2]) < tonumber(f[3]) then
      redis.call('HSET', jk, 's', 'retryable', 'r', now, 'k', '', 'e', 'lease expired', 'm', now)
      redis.call('ZADD', K_RETRY, now, id)
      retry = retry + 1
    else
      redis.call('HSET', jk, 's', 'failed', 'k', '', 'e', 'lease expired on the last attempt',
        'm', now)
      redis.call('ZADD', K_FAILED, now, id)
      free_unique(f[4], id)
    end
  end
end
if #ids > 0 then redis.call('ZREM', K_RUN, unpack(ids)) end
notify(retry)
local before, pl = now - tonumber(ARGV[3]), tonumber(ARGV[4])
prune(K_DONE, before, pl)
prune(K_FAILED, before, pl)
prune(K_CANCELLED, before, pl)
local more = 0
if #ids == lim then more = 1 end
return { n, more }
