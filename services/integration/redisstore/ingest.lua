-- Records one event in the integration views, atomically, once (the redelivery guard). Nothing
-- here trims or expires the history: the retention sweep removes entries by age from every index
-- that lists them. A new delivery record gets its expiry once.
-- KEYS[1] the guard marker, KEYS[2] the history entry, KEYS[3] the endpoints' meta hash,
-- KEYS[4] the partition's due queue, KEYS[5] the sequence hash of older versions (fields
-- "<endpoint>|<customer>"), KEYS[6] the merge alias of the event's customer (the timeline goes to
-- the survivor instead), KEYS[7] the partition's tenants with a history, KEYS[8] the erased
-- customer's last numbers (fields: endpoint ids, and '-' marking the erasure), KEYS[9..8+nIdx] the
-- history indexes, then per delivery its record, its endpoint's log and its endpoint's sequence
-- hash (fields: customer ids), then the sequence hashes to drop the customer from (nForget).
-- ARGV[1] marker TTL s, ARGV[2] entry, ARGV[3] event id, ARGV[4] the customer whose count the
-- deliveries take ('' for none), ARGV[5] '1' to register the tenant in KEYS[7], ARGV[6] expected
-- endpoints version, ARGV[7] nIdx, ARGV[8] nDel, ARGV[9] due score, ARGV[10] delivery TTL ms
-- (also how long an erased customer's last numbers are kept), ARGV[11] tenant, ARGV[12] nForget,
-- then per delivery: id, endpoint id, its field in KEYS[5], record, body;
-- then per hash to drop the customer from: its endpoint id, the customer's field in KEYS[5].
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local version = redis.call('HGET', KEYS[3], 'version') or '0'
if version ~= ARGV[6] then return redis.error_reply('STALE_ENDPOINTS ' .. version) end
local survivor = redis.call('GET', KEYS[6])
if survivor then return redis.error_reply('MERGED ' .. survivor) end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
local nIdx, nDel, nForget = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[12])
if ARGV[5] == '1' then redis.call('ZADD', KEYS[7], 0, ARGV[11]) end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[2], 'd', ARGV[2], 'v', '1')
  for i = 9, 8 + nIdx do redis.call('ZADD', KEYS[i], 0, ARGV[3]) end
end
-- An event about a customer erased before it was recorded (a write that raced the erasure) counts
-- on from the erased customer's last numbers, kept aside for a while, not in the endpoint's hash.
local erased = redis.call('EXISTS', KEYS[8]) == 1
local seqs = {}
for d = 0, nDel - 1 do
  local a = 13 + d * 5
  local k = 9 + nIdx + d * 3
  local rec, log, counts = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  local seq
  if erased then
    seq = redis.call('HINCRBY', KEYS[8], ARGV[a + 1], 1)
  else
    seq = redis.call('HINCRBY', counts, ARGV[4], 1)
    if seq == 1 then
      -- A count an older version kept moves here on its first use, and goes on from there.
      local old = redis.call('HGET', KEYS[5], ARGV[a + 2])
      if old then
        seq = tonumber(old) + 1
        redis.call('HSET', counts, ARGV[4], seq)
        redis.call('HDEL', KEYS[5], ARGV[a + 2])
      end
    end
  end
  -- The body is a JSON object; its first member becomes the sequence number.
  local body = '{"sequence":' .. seq .. ',' .. string.sub(ARGV[a + 4], 2)
  redis.call('HSET', rec, 'd', ARGV[a + 3], 'v', '1', 'seq', seq, 'body', body)
  redis.call('PEXPIRE', rec, ARGV[10])
  redis.call('ZADD', log, 0, ARGV[a])
  redis.call('ZADD', KEYS[4], ARGV[9], ARGV[11] .. ' ' .. ARGV[a + 1] .. ' ' .. ARGV[a])
  seqs[#seqs + 1] = seq
end
-- The customer is erased: this event's deliveries were the last numbers of its counts, which
-- leave the endpoints' hashes for KEYS[8], kept only as long as a delivery.
if nForget > 0 then
  local k, a = 9 + nIdx + nDel * 3, 13 + nDel * 5
  for f = 0, nForget - 1 do
    local ep, counts = ARGV[a + f * 2], KEYS[k + f]
    local last = redis.call('HGET', counts, ARGV[4]) or redis.call('HGET', KEYS[5], ARGV[a + f * 2 + 1])
    if last then redis.call('HSET', KEYS[8], ep, last) end
    redis.call('HDEL', counts, ARGV[4])
    redis.call('HDEL', KEYS[5], ARGV[a + f * 2 + 1])
  end
  redis.call('HSET', KEYS[8], '-', '1')
  redis.call('PEXPIRE', KEYS[8], ARGV[10])
end
return seqs
