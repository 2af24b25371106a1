-- Records events in the integration views: each event atomically, once, several events of one
-- partition per call (one call per event cost Redis more for the call than
-- for the event's own commands). Nothing here trims or expires the history: the retention sweep
-- removes entries by age from every index that lists them. A new delivery record gets its expiry
-- once.
-- ARGV[1] marker TTL s; then each event's keys and arguments, one event after the other.
-- An event's keys: its guard marker, its history entry, the endpoints' meta hash; for an event
-- about a customer, the merge alias of the customer (the timeline goes to the survivor instead);
-- then, to register the
-- tenant, the partition's tenants with a history; then, for an event with deliveries or counts to
-- drop, the partition's due queue, the sequence hash of older versions (fields
-- "<endpoint>|<customer>") and the erased customer's last numbers (fields: endpoint ids, and '-'
-- marking the erasure); then nIdx history indexes, then per delivery its record, its endpoint's
-- log, its endpoint's sequence hash (fields: customer ids) and its lane (the endpoint's pending
-- deliveries of the customer by sequence number), then the nForget sequence hashes to
-- drop the customer from. (Keys an event does not use are left out: every key costs the call's
-- parsing and the script's tables, and most events have no delivery.)
-- An event's arguments: nIdx, nDel, nForget, entry (a record as pkg/commit stores it), event id,
-- the customer whose count the deliveries take ('' for none), '1' to register the tenant,
-- expected endpoints version, due score, tenant, delivery TTL ms (also how long an erased
-- customer's last numbers are kept); then per delivery: id, endpoint id, its field in the older
-- versions' hash, record, body; then per hash to drop the customer from: its endpoint id, the
-- customer's field in the older versions' hash.
-- The redelivery guard is the history entry itself, or for an event without one its guard marker:
-- the retention sweep, removing an entry younger than the marker TTL, leaves the marker in its
-- place (a marker per event cost Redis more than the entry's write).
-- A delivery is due only when it is the first of its lane; a later one waits there until the
-- deliveries before it end (the dispatcher's finish script makes the next one due), so an
-- endpoint gets a customer's deliveries in order, one at a time.
-- Returns per event {0, seq...} recorded (the deliveries' sequence numbers, negative for one held
-- behind an earlier delivery of its lane), {1} recorded before,
-- {2, version} the endpoints changed (nothing written), {3, survivor} the customer was merged
-- (nothing written).
local versions = {} -- endpoints' version by meta hash: no event here changes it
-- The history indexes' new members, by index in the order first named: one ZADD per index and
-- call, after the events (nothing here reads an index). The events of a call share the
-- tenant-wide indexes (the whole log, a type's, an actor's): one call per member was a third of
-- the commands a capture's events cost.
local adds, added = {}, {}
local out = {}
local k, a = 0, 2
while a <= #ARGV do
  local nIdx, nDel, nForget = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local entry, id, customer, register, expected, score, tenant, ttl =
    ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9], ARGV[a + 10]
  local marker, entryKey, meta = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  k = k + 3
  local alias, tenants, due, legacy, erasedKey
  if customer ~= '' then
    alias = KEYS[k + 1]
    k = k + 1
  end
  if register == '1' then
    tenants = KEYS[k + 1]
    k = k + 1
  end
  if nDel + nForget > 0 then
    due, legacy, erasedKey = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
    k = k + 3
  end
  local idx, del, forget = k, k + nIdx, k + nIdx + nDel * 4
  local dargs, fargs = a + 11, a + 11 + nDel * 5
  local nextK, nextA = forget + nForget, fargs + nForget * 2
  local version = versions[meta]
  if not version then
    version = redis.call('HGET', meta, 'version') or '0'
    versions[meta] = version
  end
  -- One EXISTS asks both whether the event was recorded before and whether its customer was
  -- merged: most events are neither, and a GET of the alias first cost a command per event. A
  -- merge answers before a redelivery, as when the alias was read on its own.
  local seen, survivor = 0, false
  if version == expected then
    if alias then
      seen = redis.call('EXISTS', entryKey, marker, alias)
      if seen > 0 then survivor = redis.call('GET', alias) end
    else
      seen = redis.call('EXISTS', entryKey, marker)
    end
  end
  if version ~= expected then
    out[#out + 1] = {2, version}
  elseif survivor then
    out[#out + 1] = {3, survivor}
  elseif seen > 0 then
    out[#out + 1] = {1}
  else
    if tenants then redis.call('ZADD', tenants, 0, tenant) end
    if entry ~= '' then
      redis.call('SET', entryKey, entry)
      for i = idx + 1, idx + nIdx do
        local key = KEYS[i]
        local m = adds[key]
        if not m then
          m = {}
          adds[key] = m
          added[#added + 1] = key
        end
        m[#m + 1] = 0
        m[#m + 1] = id
      end
    else
      redis.call('SET', marker, '1', 'EX', ARGV[1])
    end
    -- An event about a customer erased before it was recorded (a write that raced the erasure)
    -- counts on from the erased customer's last numbers, kept aside for a while, not in the
    -- endpoint's hash.
    local erased = nDel > 0 and redis.call('EXISTS', erasedKey) == 1
    local res = {0}
    for d = 0, nDel - 1 do
      local da, dk = dargs + d * 5, del + d * 4
      local rec, log, counts, lane = KEYS[dk + 1], KEYS[dk + 2], KEYS[dk + 3], KEYS[dk + 4]
      local seq
      if erased then
        seq = redis.call('HINCRBY', erasedKey, ARGV[da + 1], 1)
      else
        seq = redis.call('HINCRBY', counts, customer, 1)
        if seq == 1 then
          -- A count an older version kept moves here on its first use, and goes on from there.
          local old = redis.call('HGET', legacy, ARGV[da + 2])
          if old then
            seq = tonumber(old) + 1
            redis.call('HSET', counts, customer, seq)
            redis.call('HDEL', legacy, ARGV[da + 2])
          end
        end
      end
      -- The body is a JSON object; its first member becomes the sequence number.
      local body = '{"sequence":' .. seq .. ',' .. string.sub(ARGV[da + 4], 2)
      redis.call('HSET', rec, 'd', ARGV[da + 3], 'v', '1', 'seq', seq, 'body', body)
      redis.call('PEXPIRE', rec, ttl)
      redis.call('ZADD', log, 0, ARGV[da])
      redis.call('ZADD', lane, seq, ARGV[da])
      if redis.call('ZRANGE', lane, 0, 0)[1] == ARGV[da] then
        local name = customer
        if name == '' then name = '-' end
        redis.call('ZADD', due, score, tenant .. ' ' .. ARGV[da + 1] .. ' ' .. ARGV[da] .. ' ' .. name)
        res[#res + 1] = seq
      else
        res[#res + 1] = -seq
      end
    end
    -- The customer is erased: this event's deliveries were the last numbers of its counts,
    -- which leave the endpoints' hashes for the erased key, kept only as long as a delivery.
    if nForget > 0 then
      for f = 0, nForget - 1 do
        local ep, field, counts = ARGV[fargs + f * 2], ARGV[fargs + f * 2 + 1], KEYS[forget + f + 1]
        local last = redis.call('HGET', counts, customer) or redis.call('HGET', legacy, field)
        if last then redis.call('HSET', erasedKey, ep, last) end
        redis.call('HDEL', counts, customer)
        redis.call('HDEL', legacy, field)
      end
      redis.call('HSET', erasedKey, '-', '1')
      redis.call('PEXPIRE', erasedKey, ttl)
    end
    out[#out + 1] = res
  end
  k, a = nextK, nextA
end
for _, key in ipairs(added) do redis.call('ZADD', key, unpack(adds[key])) end
return out
