-- wrk script for the cache benchmark's hit runs (bench/README.md): every request is the same
-- POST /api/embed for one input, so after the first request every answer is a cache hit:
--   {"model":"nomic-embed-text","input":"what does corral cache?"}
-- Prints a RESULT line for run.sh (latencies in microseconds), like overhead/generate.lua.
local headers = { ["Content-Type"] = "application/json" }
local body = '{"model":"nomic-embed-text","input":"what does corral cache?"}'

function request()
  return wrk.format("POST", "/api/embed", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    errors, e.status))
end
