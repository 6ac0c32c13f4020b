-- wrk script for scripts/bench-webhook.sh: every request POSTs the same 50-line order event
-- with its own order id (so each is relayed, none deduplicated), and `done` writes the summary
-- and the latency distribution where the environment says.
--
-- Environment: BENCH_BODY (file with the body; its order id is the text __ORDER_ID__),
-- BENCH_AUTH (Authorization header value), BENCH_SUMMARY (JSON out), BENCH_LATENCY (CSV out).

local body = assert(io.open(os.getenv("BENCH_BODY"), "rb")):read("*a")
local head, tail = body:match("^(.-)__ORDER_ID__(.*)$")
assert(head, "BENCH_BODY holds no __ORDER_ID__")

local threads = {}
local counter = 1

function setup(thread)
  thread:set("thread_id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

local n = 0
local prefix = "bench-" .. string.format("%x", os.time()) .. "-"

function init(args)
  prefix = prefix .. tostring(thread_id) .. "-"
  wrk.method = "POST"
  wrk.path = "/webhook/orders"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
end

function request()
  n = n + 1
  return wrk.format(nil, nil, nil, head .. prefix .. n .. tail)
end

function done(summary, latency, requests)
  local e = summary.errors
  local out = assert(io.open(os.getenv("BENCH_SUMMARY"), "w"))
  out:write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
  out:close()
  -- The latency distribution for a plot: the latency at each percentile, finer in the tail.
  local csv = assert(io.open(os.getenv("BENCH_LATENCY"), "w"))
  csv:write("percentile,latency_us\n")
  local function row(p)
    csv:write(string.format("%g,%d\n", p, latency:percentile(p)))
  end
  for p = 1, 99 do row(p) end
  for p = 99.1, 99.95, 0.1 do row(p) end
  for p = 99.91, 99.995, 0.01 do row(p) end
  csv:write(string.format("100,%d\n", latency.max))
  csv:close()
end
