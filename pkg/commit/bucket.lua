-- Bucketed sorted sets (see bucket.go). A bucketed index named I is a directory I#d, a sorted set
-- whose members (all of score 0) are the lower bounds of its buckets, and the buckets I#b<hex of
-- the bound>, sorted sets (score 0, ordered by member) that each hold the members from their bound
-- up to the next bucket's. The first bucket's bound is ''. A bucket is split before it would
-- outgrow Redis's default zset-max-listpack-entries, so every bucket stays a listpack: about 20
-- bytes a 16-byte member instead of about 100 in one big skiplist-encoded set.
local BUCKET_MAX = 128

-- bhexf caches the format of a bound's length: building it per call cost as much as the rest.
local bhexf = {}
local function bhex(s)
  local f = bhexf[#s]
  if not f then
    f = string.rep('%02x', #s)
    bhexf[#s] = f
  end
  return string.format(f, string.byte(s, 1, -1))
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
  if redis.call('ZCARD', key) >= BUCKET_MAX and not redis.call('ZSCORE', key, m) then
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

-- A bucketed unique index maps a value to its owner with one member: the value's 16-byte key (a
-- hash of it, bucket.go) followed by the owner, a UUID packed to 16 bytes. No value is stored, so
-- a bucket bound (which outlives its member) never keeps personal data such as an e-mail.
local BUCKET_HIGH = string.rep('\255', 17) -- after every owner (text or packed UUID)

-- bowned remembers each value's owner as this call found or made it (false: none), so that a
-- claim after its check does not look the value up again. Only bclaim and bunclaim change owners.
local bowned = {}

local function bowner(index, h)
  local known = bowned[index .. h]
  if known ~= nil then return known or nil end
  local b = bfind(index, h .. BUCKET_HIGH)
  local e = b and redis.call('ZRANGE', bkey(index, b), '[' .. h, '(' .. h .. BUCKET_HIGH, 'BYLEX', 'LIMIT', 0, 1)[1]
  local owner = e and string.sub(e, #h + 1)
  bowned[index .. h] = owner or false
  return owner
end

local function bclaim(index, h, owner)
  local have = bowner(index, h)
  if have == owner then return end
  if have then brem(index, h .. have) end
  badd(index, h .. owner)
  bowned[index .. h] = owner
end

local function bunclaim(index, h)
  local have = bowner(index, h)
  if have then brem(index, h .. have) end
  bowned[index .. h] = false
end

-- bid is an owner as text: a 16-byte owner is a packed UUID.
local function bid(owner)
  if #owner ~= 16 then return owner end
  return string.format('%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x',
    string.byte(owner, 1, 16))
end
