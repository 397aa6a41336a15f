-- ARGV: prefix, worker, lease ms, max, promote limit, tokens...
-- Returns: now, expiry, then 7 fields per job (id, data, attempt, run_at, error, created, token).
local now = now_ms()
local out = { now }
reserve(now, 2, out)
return out
