-- wrk script of the web benchmark (bench/bench_web.py runs it; see docs/benchmarks.md).
--
--   wrk -t2 -c10 -d20s --latency -s bench/web_load.lua http://127.0.0.1:PORT -- COOKIE PATHS
--
-- COOKIE: the session cookie header value ("trdnav_session=..."); PATHS: a file with one request
-- path per line. Each thread walks the paths from its own offset, so consecutive requests go to
-- different patients. done() prints one machine-readable line:
--   RESULT requests=N seconds=S p50_us=… p95_us=… p99_us=… max_us=… non200=N socket_errors=N

local cookie, paths_file = nil, nil
local paths = {}
local threads = {}
local next_thread = 0
local position = 1
local non200 = 0

local function read_paths(name)
  local out = {}
  for line in io.lines(name) do
    if line ~= "" then out[#out + 1] = line end
  end
  return out
end

function setup(thread)
  thread:set("thread_index", next_thread)
  next_thread = next_thread + 1
  threads[#threads + 1] = thread
end

function init(args)
  cookie, paths_file = args[1], args[2]
  paths = read_paths(paths_file)
  if #paths == 0 then error("no paths in " .. paths_file) end
  -- threads start far apart in the list
  position = (thread_index * math.floor(#paths / 2)) % #paths + 1
  wrk.headers["Cookie"] = cookie
  wrk.headers["Accept"] = "text/html"
end

function request()
  local path = paths[position]
  position = position % #paths + 1
  return wrk.format("GET", path)
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + (thread:get("non200") or 0) end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f p50_us=%d p95_us=%d p99_us=%d max_us=%d non200=%d socket_errors=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, bad, e.connect + e.read + e.write + e.timeout))
end
