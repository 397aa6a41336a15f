-- ARGV: prefix, batch, retention ms, prune limit.
-- Expired leases (at most `batch`) become retryable (due now) or failed by attempts left;
-- also prunes finished jobs past retention (bounded). Returns { recovered, more }.
local now = now_ms()
local lim = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', K_RUN, '-inf', now, 'LIMIT', 0, lim)
local retry, failed = {}, {}
if #ids > 0 then
  redis.call('ZREM', K_RUN, unpack(ids))
  local states = hmget(C_STATE, ids)
  local att = hmget(C_ATT, ids)
  local maxa = hmget(C_MAXA, ids)
  for i = 1, #ids do
    if states[i] == 'running' then
      if tonumber(att[i]) < tonumber(maxa[i]) then
        retry[#retry + 1] = ids[i]
      else
        failed[#failed + 1] = ids[i]
      end
    end
  end
end
if #retry > 0 then
  local z = {}
  for i = 1, #retry do
    z[2 * i - 1] = now
    z[2 * i] = retry[i]
  end
  redis.call('ZADD', K_RETRY, unpack(z))
  many('HDEL', C_TOKEN, retry)
  hset_same(C_STATE, retry, 'retryable')
  hset_same(C_RUN, retry, now)
  hset_same(C_ERROR, retry, 'lease expired')
  hset_same(C_UPDATED, retry, now)
  notify(#retry)
end
if #failed > 0 then
  hset_same(C_ERROR, failed, 'lease expired on the last attempt')
  finish(failed, 'failed', K_FAILED, now)
end
local before, pl = now - tonumber(ARGV[3]), tonumber(ARGV[4])
prune(K_DONE, before, pl)
prune(K_FAILED, before, pl)
prune(K_CANCELLED, before, pl)
local more = 0
if #ids == lim then more = 1 end
return { #retry + #failed, more }
