-- wrk script for the ingestion benchmark (bench/cache/ingest.sh): every request is an
-- /api/embed batch of BATCH (default 32) chunks never sent before, as a RAG service indexing new
-- documents sends them, so with a cache every request is a miss. MODE=embeddings sends one
-- unique /api/embeddings prompt a request instead; MODE=cached cycles through the same 64
-- batches (2,048 chunks), so after the first pass every request is a cached batch. Prints a
-- RESULT line (latencies in us).
local headers = { ["Content-Type"] = "application/json" }
local batch = tonumber(os.getenv("BATCH") or "32")
local mode = os.getenv("MODE") or "embed"
math.randomseed(os.time() + math.floor(os.clock() * 1e6))
local run = string.format("%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
local n = 0

function request()
  n = n + 1
  if mode == "cached" then
    local items = {}
    for i = 1, batch do
      items[i] = string.format('"cached document %d, chunk %d: re-indexed chunks are answered from the cache"', n % 64, i)
    end
    return wrk.format("POST", "/api/embed", headers, '{"model":"nomic-embed-text","input":[' .. table.concat(items, ",") .. ']}')
  end
  if mode == "embeddings" then
    local body = string.format('{"model":"nomic-embed-text","prompt":"query %s-%d: how is a corpus indexed?"}', run, n)
    return wrk.format("POST", "/api/embeddings", headers, body)
  end
  local items = {}
  for i = 1, batch do
    items[i] = string.format('"document %s-%d, chunk %d: corral caches embeddings of chunks for thirty days"', run, n, i)
  end
  local body = '{"model":"nomic-embed-text","input":[' .. table.concat(items, ",") .. ']}'
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
