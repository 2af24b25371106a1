-- Reads of a bucketed index KEYS[1] (bucket.lua comes first). ARGV[1] is what to read:
--   page <min> <max> <'rev' or ''> <count> [<after>]: up to count members of the lexical range
--     (ZRANGE BYLEX bounds), in reading order, after the member <after> when given; it reads the
--     buckets the range crosses one by one, stopping when it has count.
--   count: the number of members.
--   owners <value>...: the owner of each value of a unique index, false for none.
local index, what = KEYS[1], ARGV[1]

if what == 'count' then
  local n = 0
  for _, b in ipairs(redis.call('ZRANGE', bdir(index), 0, -1)) do n = n + redis.call('ZCARD', bkey(index, b)) end
  return n
end

if what == 'owners' then
  local out = {}
  for i = 2, #ARGV do out[i - 1] = bowner(index, ARGV[i]) or false end
  return out
end

local lo, hi, rev, count = ARGV[2], ARGV[3], ARGV[4] == 'rev', tonumber(ARGV[5])
if ARGV[6] then
  if rev then hi = '(' .. ARGV[6] else lo = '(' .. ARGV[6] end
end

-- before is bucket.lua's.
local out = {}
local b
if rev then
  if hi == '+' then
    b = redis.call('ZRANGE', bdir(index), '+', '-', 'BYLEX', 'REV', 'LIMIT', 0, 1)[1]
  else
    b = bfind(index, string.sub(hi, 2))
  end
else
  if lo == '-' then
    b = redis.call('ZRANGE', bdir(index), '-', '+', 'BYLEX', 'LIMIT', 0, 1)[1]
  else
    b = bfind(index, string.sub(lo, 2))
  end
end
while b do
  local got
  if rev then
    got = redis.call('ZRANGE', bkey(index, b), hi, lo, 'BYLEX', 'REV', 'LIMIT', 0, count - #out)
  else
    got = redis.call('ZRANGE', bkey(index, b), lo, hi, 'BYLEX', 'LIMIT', 0, count - #out)
  end
  for _, m in ipairs(got) do out[#out + 1] = m end
  if #out >= count then break end
  if rev then
    -- the buckets before b hold members below b: none is in the range when b is at or below min
    if lo ~= '-' and not before(string.sub(lo, 2), b) then break end
    b = redis.call('ZRANGE', bdir(index), '(' .. b, '-', 'BYLEX', 'REV', 'LIMIT', 0, 1)[1]
  else
    b = redis.call('ZRANGE', bdir(index), '(' .. b, '+', 'BYLEX', 'LIMIT', 0, 1)[1]
    -- the next bucket holds members from its bound up: none is in the range past max
    if b and hi ~= '+' and before(string.sub(hi, 2), b) then break end
  end
end
return out
