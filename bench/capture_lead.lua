-- wrk script for bench/run.sh: POST /v1/leads with a new e-mail on every request, so each call
-- creates a lead (the path DESIGN.md §10 measures) instead of upserting one lead over and over.
-- Usage: wrk -t2 -c50 -d10s -s bench/capture_lead.lua -H 'Authorization: Bearer KEY' URL -- RUNID
-- The e-mail is w<RUNID>-<thread>-<counter>@example.com: unique across threads and runs.
-- done() prints one line "WRKJSON {...}" with the figures bench/report.py reads.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  run = args[1] or tostring(os.time())
  counter = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"email":"w%s-%d-%d@example.com","givenName":"Ada","channel":"CHANNEL_WEB"}',
    run, tid, counter)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
