-- One page of a sorted set in score order, read by rank so that it costs O(log n + page) however
-- many members share a score. KEYS[1] is the index. ARGV: start and stop bounds in reading order
-- (ZRANGE BYSCORE syntax: "1.5", "(1.5", "-inf", "+inf"), "rev" or "", how many to read, and the
-- cursor's score and member (absent on the first page). Returns members and scores in reading order.
local key, start, stop, rev, count = KEYS[1], ARGV[1], ARGV[2], ARGV[3] == 'rev', tonumber(ARGV[4])

local function flip(bound)
  if string.sub(bound, 1, 1) == '(' then return string.sub(bound, 2) end
  return '(' .. bound
end

-- ahead is the number of members before bound in reading order.
local function ahead(bound)
  if rev then return redis.call('ZCOUNT', key, flip(bound), '+inf') end
  return redis.call('ZCOUNT', key, '-inf', flip(bound))
end

local function range(from, to, ...)
  if rev then return redis.call('ZRANGE', key, from, to, 'REV', ...) end
  return redis.call('ZRANGE', key, from, to, ...)
end

-- follows tells whether member a comes after b in reading order among equal scores: Redis orders
-- them bytewise, and Lua's own comparison follows the locale.
local function follows(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return (x > y) ~= rev end
  end
  if #a == #b then return false end
  return (#a > #b) ~= rev
end

local first = ahead(start)
if ARGV[5] then
  local score, member = ARGV[5], ARGV[6]
  local rank = redis.call(rev and 'ZREVRANK' or 'ZRANK', key, member)
  local now = redis.call('ZSCORE', key, member)
  if rank and tonumber(now) == tonumber(score) then
    first = math.max(first, rank + 1)
  else
    -- The cursor's member is gone or has moved: find its place among the members of its score.
    local lo, hi = ahead(score), ahead(flip(score))
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if follows(range(mid, mid)[1], member) then hi = mid else lo = mid + 1 end
    end
    first = math.max(first, lo)
  end
end
local last = math.min(ahead(flip(stop)), first + count) - 1
if last < first then return {} end
return range(first, last, 'WITHSCORES')
