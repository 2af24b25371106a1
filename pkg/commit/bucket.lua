-- Bucketed sorted sets (see bucket.go). A bucketed index named I is a directory I#d, a sorted set
-- whose members (all of score 0) are the lower bounds of its buckets, and the buckets I#b<hex of
-- the bound>, sorted sets (score 0, ordered by member) that each hold the members from their bound
-- up to the next bucket's. The first bucket's bound is ''. A bucket is split before it would
-- outgrow Redis's default zset-max-listpack-entries, so every bucket stays a listpack: about 20
-- bytes a 16-byte member instead of about 100 in one big skiplist-encoded set.
local BUCKET_MAX = 128

local function bhex(s)
  if s == '' then return '' end
  return string.format(string.rep('%02x', #s), string.byte(s, 1, -1))
end

local function bdir(index) return index .. '#d' end
local function bkey(index, bound) return index .. '#b' .. bhex(bound) end

-- bfind is the bound of the bucket that holds (or would hold) member m: the greatest bound not
-- above m; nil when the index has no directory.
local function bfind(index, m)
  return redis.call('ZRANGE', bdir(index), '[' .. m, '-', 'BYLEX', 'REV', 'LIMIT', 0, 1)[1]
end

local function badd(index, m)
  local b = bfind(index, m)
  if not b then
    redis.call('ZADD', bdir(index), 0, '')
    b = ''
  end
  local key = bkey(index, b)
  if redis.call('ZSCORE', key, m) then return end
  if redis.call('ZCARD', key) >= BUCKET_MAX then
    if redis.call('ZLEXCOUNT', key, '(' .. m, '+') == 0 then
      -- m comes after every member (ids in time order, the common case): it starts a new bucket,
      -- and the full one stays full.
      redis.call('ZADD', bdir(index), 0, m)
      redis.call('ZADD', bkey(index, m), 0, m)
      return
    end
    -- Otherwise the upper half moves to a new bucket that starts at its first member.
    local half = math.floor(BUCKET_MAX / 2)
    local upper = redis.call('ZRANGE', key, half, -1)
    local args = {}
    for i, u in ipairs(upper) do
      args[2 * i - 1], args[2 * i] = 0, u
    end
    redis.call('ZADD', bkey(index, upper[1]), unpack(args))
    redis.call('ZREMRANGEBYRANK', key, half, -1)
    redis.call('ZADD', bdir(index), 0, upper[1])
    key = bkey(index, bfind(index, m))
  end
  redis.call('ZADD', key, 0, m)
end

local function brem(index, m)
  local b = bfind(index, m)
  if not b then return end
  local key = bkey(index, b)
  if redis.call('ZREM', key, m) == 0 or redis.call('EXISTS', key) == 1 then return end
  -- The bucket is empty: it leaves the directory (the first stays while others remain), and an
  -- index without members leaves no key, as an empty sorted set does not exist.
  if b ~= '' then redis.call('ZREM', bdir(index), b) end
  if redis.call('ZCARD', bdir(index)) <= 1 and redis.call('EXISTS', bkey(index, '')) == 0 then
    redis.call('DEL', bdir(index))
  end
end

-- A bucketed unique index maps a value (without NUL bytes) to its owner with one member:
-- value NUL owner. An owner that is a UUID is stored as its 16 bytes (bucket.go packs it).
local function bowner(index, v)
  local b = bfind(index, v .. '\1')
  if not b then return nil end
  local e = redis.call('ZRANGE', bkey(index, b), '[' .. v .. '\0', '(' .. v .. '\1', 'BYLEX', 'LIMIT', 0, 1)[1]
  if not e then return nil end
  return string.sub(e, #v + 2)
end

local function bclaim(index, v, owner)
  local have = bowner(index, v)
  if have == owner then return end
  if have then brem(index, v .. '\0' .. have) end
  badd(index, v .. '\0' .. owner)
end

local function bunclaim(index, v)
  local have = bowner(index, v)
  if have then brem(index, v .. '\0' .. have) end
end

-- bid is an owner as text: a 16-byte owner is a packed UUID.
local function bid(owner)
  if #owner ~= 16 then return owner end
  return string.format('%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x',
    string.byte(owner, 1, 16))
end
