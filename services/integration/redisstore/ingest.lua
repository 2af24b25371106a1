-- Records one event in the integration views, atomically, once (the redelivery guard). Nothing
-- here trims or expires the history: the retention sweep removes entries by age from every index
-- that lists them. A new delivery record gets its expiry once.
-- KEYS[1] the guard marker, KEYS[2] the history entry, KEYS[3] the endpoints' meta hash,
-- KEYS[4] the partition's due queue, KEYS[5] the sequence hash, KEYS[6] the merge alias of the
-- event's customer (the timeline goes to the survivor instead), KEYS[7] the partition's tenants
-- with a history, KEYS[8..7+nIdx] the history indexes, then per delivery its record and its
-- endpoint's log.
-- ARGV[1] marker TTL s, ARGV[2] entry, ARGV[3] event id, ARGV[4] unused, ARGV[5] '1' to
-- register the tenant in KEYS[7], ARGV[6] expected endpoints version, ARGV[7] nIdx, ARGV[8] nDel,
-- ARGV[9] due score, ARGV[10] delivery TTL ms, ARGV[11] tenant,
-- then per delivery: id, endpoint id, sequence field, record, body.
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local version = redis.call('HGET', KEYS[3], 'version') or '0'
if version ~= ARGV[6] then return redis.error_reply('STALE_ENDPOINTS ' .. version) end
local survivor = redis.call('GET', KEYS[6])
if survivor then return redis.error_reply('MERGED ' .. survivor) end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
local nIdx, nDel = tonumber(ARGV[7]), tonumber(ARGV[8])
if ARGV[5] == '1' then redis.call('ZADD', KEYS[7], 0, ARGV[11]) end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[2], 'd', ARGV[2], 'v', '1')
  for i = 8, 7 + nIdx do redis.call('ZADD', KEYS[i], 0, ARGV[3]) end
end
local seqs = {}
for d = 0, nDel - 1 do
  local a = 12 + d * 5
  local rec, log = KEYS[8 + nIdx + d * 2], KEYS[9 + nIdx + d * 2]
  local seq = redis.call('HINCRBY', KEYS[5], ARGV[a + 2], 1)
  -- The body is a JSON object; its first member becomes the sequence number.
  local body = '{"sequence":' .. seq .. ',' .. string.sub(ARGV[a + 4], 2)
  redis.call('HSET', rec, 'd', ARGV[a + 3], 'v', '1', 'seq', seq, 'body', body)
  redis.call('PEXPIRE', rec, ARGV[10])
  redis.call('ZADD', log, 0, ARGV[a])
  redis.call('ZADD', KEYS[4], ARGV[9], ARGV[11] .. ' ' .. ARGV[a + 1] .. ' ' .. ARGV[a])
  seqs[#seqs + 1] = seq
end
return seqs
