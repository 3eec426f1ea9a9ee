-- wrk script for bench/load.py: POST the JSON bodies of a mix file in order, count the answers.
--
--   wrk -t1 -c8 -d20s -s bench/loadmix.lua http://127.0.0.1:PORT/PATH -- MIX_FILE
--
-- MIX_FILE holds one JSON body per line (bench/load.py writes it). Each thread walks the list
-- from its own offset and wraps around at the end (counted as "wrapped": a wrapped list turns
-- new subscriptions into repeats, so load.py makes the list longer than any run needs).
-- done() prints one line "BENCH_JSON {...}" with the totals, the answers by status class and the
-- latency percentiles in microseconds, which load.py parses.

local bodies = {}
local position = 0
local headers = { ["Content-Type"] = "application/json" }
local threads = {}
local thread_count = 0

c201, c2xx, c400, c4xx, c429, c5xx, cother, wrapped = 0, 0, 0, 0, 0, 0, 0, 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  -- Threads start far apart in the list so they do not send the same bodies.
  position = math.floor((thread_index or 0) * #bodies / 16)
end

function request()
  position = position + 1
  if position > #bodies then
    position = 1
    wrapped = wrapped + 1
  end
  return wrk.format("POST", nil, headers, bodies[position])
end

function response(status, headers, body)
  if status == 201 then
    c201 = c201 + 1
  elseif status == 400 then
    c400 = c400 + 1
  elseif status == 429 then
    c429 = c429 + 1
  elseif status >= 500 then
    c5xx = c5xx + 1
  elseif status >= 200 and status < 300 then
    c2xx = c2xx + 1
  elseif status >= 400 and status < 500 then
    c4xx = c4xx + 1
  else
    cother = cother + 1
  end
end

function done(summary, latency, requests)
  local totals = { c201 = 0, c2xx = 0, c400 = 0, c4xx = 0, c429 = 0, c5xx = 0, cother = 0, wrapped = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "mean_us": %.1f, "c201": %d, "c2xx": %d, "c400": %d, "c4xx": %d, '
      .. '"c429": %d, "c5xx": %d, "cother": %d, "wrapped": %d}\n',
    summary.requests, summary.duration, errors.connect, errors.read, errors.write,
    errors.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, totals.c201, totals.c2xx, totals.c400, totals.c4xx, totals.c429,
    totals.c5xx, totals.cother, totals.wrapped
  ))
end
