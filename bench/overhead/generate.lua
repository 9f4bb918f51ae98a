-- wrk script for the overhead benchmark (bench/README.md).
--
-- Every request is POST /api/generate with a prompt no other request of the run has, so a caching
-- proxy (corral) never answers from its cache and each request really travels to the upstream:
--   {"model":"llama3.2","prompt":"question N","stream":false}
-- N = base + counter * 1024 + thread index (distinct across up to 1024 wrk threads), where `base` is the first script argument
-- (`wrk ... -s generate.lua -- 3000000000`): run.sh gives each wrk run of one session its own base,
-- so warm-up and measured runs against the same proxy process never repeat a prompt either.
--
-- At the end the script prints one machine-readable line for run.sh (latencies in microseconds):
--   RESULT requests=… duration_us=… rps=… p50_us=… p90_us=… p99_us=… max_us=… errors=… non2xx=…
-- next to wrk's own --latency report, which is kept in the log for humans.

local threads = {}
local counter = 0
local base = 0
local tid = 0
local headers = { ["Content-Type"] = "application/json" }
-- BENCH_KEY (set by run.sh): an API key for the corral-auth target; other targets ignore it.
if os.getenv("BENCH_KEY") then headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY") end
-- STREAM=1 asks for the streamed answer (an 8-chunk NDJSON stream) instead of one JSON object.
local stream = os.getenv("STREAM") == "1" and "true" or "false"


function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  base = tonumber(args[1] or "0") or 0
end

function request()
  counter = counter + 1
  local n = base + counter * 1024 + tid -- up to 1024 threads, distinct across threads
  local body = '{"model":"llama3.2","prompt":"question ' .. string.format("%d", n) .. '","stream":' .. stream .. '}'
  return wrk.format("POST", "/api/generate", headers, body)
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
