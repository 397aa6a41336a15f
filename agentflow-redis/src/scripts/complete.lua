-- ARGV: prefix, retention ms, prune limit, m, then m (id, token) pairs.
-- Returns 1 (completed) or 0 (lease lost) per lease.
local now = now_ms()
local m = tonumber(ARGV[4])
local out = {}
local done = complete(now, 5, m, out)
prune(K_DONE, now - tonumber(ARGV[2]), tonumber(ARGV[3]) + done)
return out
