-- wrk script for bench/cases/marketing.sh: POST /v1/leads/<id>/engagements, round robin over the
-- lead ids given after --, so the calls spread over many leads instead of queueing on one etag.
-- Usage: wrk -t2 -c50 -d10s -s bench/engagement.lua -H 'Authorization: Bearer KEY' URL -- ID...

function init(args)
  ids = args
  counter = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local path = "/v1/leads/" .. ids[(counter % #ids) + 1] .. "/engagements"
  return wrk.format(nil, path, nil, '{"type":"ENGAGEMENT_TYPE_PAGE_VIEW"}')
end

dofile("bench/wrkjson.lua")
