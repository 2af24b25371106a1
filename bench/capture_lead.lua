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


-- done(): the WRKJSON line, shared with the other wrk scripts (wrk runs from the repository root).
dofile("bench/wrkjson.lua")
