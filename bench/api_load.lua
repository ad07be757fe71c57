-- wrk script of bench/api_load.py: one endpoint per run (BENCH_MODE = list | get | create),
-- optional bearer token, and p50/p95/p99 printed as one JSON line at the end.
local mode = os.getenv("BENCH_MODE") or "list"
local path = os.getenv("BENCH_PATH") or "/api/v1/tasks"
local max_id = tonumber(os.getenv("BENCH_MAX_ID") or "1")
local token = os.getenv("BENCH_TOKEN") or ""
local body = '{"prompt": "benchmark task: say hi [scenario:text]"}'

wrk.headers["Accept"] = "application/json"
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

request = function()
  if mode == "get" then
    return wrk.format("GET", path .. "/" .. math.random(1, max_id))
  elseif mode == "create" then
    local headers = {["Content-Type"] = "application/json"}
    for k, v in pairs(wrk.headers) do headers[k] = v end  -- format() replaces, not merges
    return wrk.format("POST", path, headers, body)
  end
  return wrk.format("GET", path .. "?limit=50")
end

local shown = false
response = function(status, headers, body)
  if status >= 300 and not shown then
    shown = true
    io.write(string.format("FIRST-ERROR %d %s\n", status, string.sub(body or "", 1, 300)))
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, ' ..
    '"p50": %d, "p95": %d, "p99": %d, "max": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
