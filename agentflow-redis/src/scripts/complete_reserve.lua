-- Completes leases and reserves the next jobs in one atomic call (one round trip).
-- ARGV: prefix, retention ms, prune limit, m, m (id, token) pairs, then the reserve arguments
-- (worker, lease ms, max, promote limit, tokens...).
-- Returns: now, m results (1/0), expiry, then 7 fields per leased job.
local now = now_ms()
local m = tonumber(ARGV[4])
local out = { now }
local done = complete(now, 5, m, out)
prune(K_DONE, now - tonumber(ARGV[2]), tonumber(ARGV[3]) + done)
reserve(now, 5 + 2 * m, out)
return out
