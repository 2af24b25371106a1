-- Bucketed sorted sets (see bucket.go). A bucketed index named I is a directory I#d, a sorted set
-- whose members (all of score 0) are the lower bounds of its buckets, and the buckets I#b<hex of
-- the bound>, sorted sets (score 0, ordered by member) that each hold the members from their bound
-- up to the next bucket's. The first bucket's bound is ''. A bucket is split before it passes
-- BUCKET_MAX members, half Redis's default zset-max-listpack-entries (128), so every bucket stays a
-- listpack: about 20 bytes a 16-byte member instead of about 100 in one big skiplist-encoded set.
-- Why half: ZADD and ZRANGE BYLEX walk a listpack from its head, so their cost grows with the
-- bucket; at 64 an import's adds and e-mail lookups cost Redis about 8 % fewer instructions per
-- lead than at 128, for about 8 bytes more memory per lead (more bucket keys and bounds). Buckets of
-- up to 128 members written before stay valid: an add into one splits it.
local BUCKET_MAX = 64

-- bhex is the hex of a bound, 8 bytes per string.byte and one concatenation each: a call of
-- string.format per bound ran sprintf once per byte, about a tenth of a capture's script. HEX is
-- built on the first use in a call, from constants, so a call that needs no bucket key pays nothing
-- (the script's body runs on every call).
local byte = string.byte
local HEX
local function bhex(s)
  if not HEX then
    HEX = {
    [0] = '00', '01', '02', '03', '04', '05', '06', '07', '08', '09', '0a', '0b', '0c', '0d', '0e',
    '0f', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '1a', '1b', '1c', '1d', '1e',
    '1f', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '2a', '2b', '2c', '2d', '2e',
    '2f', '30', '31', '32', '33', '34', '35', '36', '37', '38', '39', '3a', '3b', '3c', '3d', '3e',
    '3f', '40', '41', '42', '43', '44', '45', '46', '47', '48', '49', '4a', '4b', '4c', '4d', '4e',
    '4f', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '5a', '5b', '5c', '5d', '5e',
    '5f', '60', '61', '62', '63', '64', '65', '66', '67', '68', '69', '6a', '6b', '6c', '6d', '6e',
    '6f', '70', '71', '72', '73', '74', '75', '76', '77', '78', '79', '7a', '7b', '7c', '7d', '7e',
    '7f', '80', '81', '82', '83', '84', '85', '86', '87', '88', '89', '8a', '8b', '8c', '8d', '8e',
    '8f', '90', '91', '92', '93', '94', '95', '96', '97', '98', '99', '9a', '9b', '9c', '9d', '9e',
    '9f', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 'a8', 'a9', 'aa', 'ab', 'ac', 'ad', 'ae',
    'af', 'b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7', 'b8', 'b9', 'ba', 'bb', 'bc', 'bd', 'be',
    'bf', 'c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9', 'ca', 'cb', 'cc', 'cd', 'ce',
    'cf', 'd0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'd8', 'd9', 'da', 'db', 'dc', 'dd', 'de',
    'df', 'e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9', 'ea', 'eb', 'ec', 'ed', 'ee',
    'ef', 'f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8', 'f9', 'fa', 'fb', 'fc', 'fd', 'fe',
    'ff'
    }
  end
  local out = ''
  for i = 1, #s, 8 do
    local a1, a2, a3, a4, a5, a6, a7, a8 = byte(s, i, i + 7)
    out = out .. HEX[a1] .. (HEX[a2] or '') .. (HEX[a3] or '') .. (HEX[a4] or '') .. (HEX[a5] or '')
      .. (HEX[a6] or '') .. (HEX[a7] or '') .. (HEX[a8] or '')
  end
  return out
end

local function bdir(index) return index .. '#d' end
local function bkey(index, bound) return index .. '#b' .. bhex(bound) end

-- before tells whether a comes before b bytewise (Lua's own comparison follows the locale). It
-- reads 8 bytes per string.byte: members share long prefixes (ids of one millisecond), and a call
-- per byte cost more than a directory lookup.
local function before(a, b)
  for i = 1, math.min(#a, #b), 8 do
    local a1, a2, a3, a4, a5, a6, a7, a8 = byte(a, i, i + 7)
    local b1, b2, b3, b4, b5, b6, b7, b8 = byte(b, i, i + 7)
    if a1 ~= b1 then return (a1 or -1) < (b1 or -1) end
    if a2 ~= b2 then return (a2 or -1) < (b2 or -1) end
    if a3 ~= b3 then return (a3 or -1) < (b3 or -1) end
    if a4 ~= b4 then return (a4 or -1) < (b4 or -1) end
    if a5 ~= b5 then return (a5 or -1) < (b5 or -1) end
    if a6 ~= b6 then return (a6 or -1) < (b6 or -1) end
    if a7 ~= b7 then return (a7 or -1) < (b7 or -1) end
    if a8 ~= b8 then return (a8 or -1) < (b8 or -1) end
  end
  return #a < #b
end

-- bmemo is what this call learnt of each index's buckets, so that the writes of a batch (RunBatch)
-- adding to one bucket do not look it up again: keys[bound] is a bucket's key, n[key] its size,
-- last the greatest bound (false: no directory; nil: not looked up). It is looked up on an index's
-- second add in the call, so a single write pays nothing for it; members from last up (ids in time
-- order, the common case) then need no directory lookup. Buckets change only through badd and
-- brem, which keep it current.
local bmemo = {}
-- bgen counts the directory changes of this call: a bound found before one may no longer be the
-- greatest below a member.
local bgen = 0
local function bstate(index)
  local s = bmemo[index]
  if not s then
    s = { keys = {}, n = {}, adds = 0 }
    bmemo[index] = s
  end
  return s
end

local function bkeyof(s, index, bound)
  local key = s.keys[bound]
  if not key then
    key = bkey(index, bound)
    s.keys[bound] = key
  end
  return key
end

-- bfind is the bound of the bucket that holds (or would hold) member m: the greatest bound not
-- above m; nil when the index has no directory. (Numbers given to redis.call as strings: Redis
-- formats a Lua number with sprintf.)
local function bfind(index, m)
  return redis.call('ZRANGE', bdir(index), '[' .. m, '-', 'BYLEX', 'REV', 'LIMIT', '0', '1')[1]
end

-- badd adds m to the index. hint, when given, is a bound found since the last directory change
-- (bgen) that is the greatest not above some member at or after m: if it is not above m, it is m's.
local function badd(index, m, hint)
  local s = bstate(index)
  s.adds = s.adds + 1
  if s.adds == 2 and s.last == nil then
    s.last = redis.call('ZRANGE', bdir(index), '-1', '-1')[1] or false
  end
  local b
  if s.last and not before(m, s.last) then
    b = s.last
  elseif hint and not before(m, hint) then
    b = hint
  else
    b = bfind(index, m)
  end
  if not b then
    redis.call('ZADD', bdir(index), '0', '')
    b = ''
    s.last = ''
    bgen = bgen + 1
  end
  local key = bkeyof(s, index, b)
  local n = s.n[key] or redis.call('ZCARD', key)
  if n >= BUCKET_MAX and not redis.call('ZSCORE', key, m) then
    if redis.call('ZLEXCOUNT', key, '(' .. m, '+') == 0 then
      -- m comes after every member (ids in time order, the common case): it starts a new bucket,
      -- and the full one stays full.
      redis.call('ZADD', bdir(index), '0', m)
      redis.call('ZADD', bkeyof(s, index, m), '0', m)
      s.n[key], s.n[s.keys[m]] = n, 1
      if s.last == b then s.last = m end
      bgen = bgen + 1
      return
    end
    -- Otherwise the upper half moves to a new bucket that starts at its first member.
    local half = math.floor(BUCKET_MAX / 2)
    local upper = redis.call('ZRANGE', key, half, -1)
    local args = {}
    for i, u in ipairs(upper) do
      args[2 * i - 1], args[2 * i] = 0, u
    end
    local ukey = bkeyof(s, index, upper[1])
    redis.call('ZADD', ukey, unpack(args))
    redis.call('ZREMRANGEBYRANK', key, half, -1)
    redis.call('ZADD', bdir(index), '0', upper[1])
    s.n[key], s.n[ukey] = half, #upper
    if s.last == b then s.last = upper[1] end
    bgen = bgen + 1
    -- m is in the old bucket's range: the lower half's or, from upper[1] on, the upper half's
    if not before(m, upper[1]) then key = ukey end
    n = s.n[key]
  end
  s.n[key] = n + redis.call('ZADD', key, '0', m)
end

local function brem(index, m)
  local b = bfind(index, m)
  if not b then return end
  local s = bstate(index)
  local key = bkeyof(s, index, b)
  local removed = redis.call('ZREM', key, m)
  if s.n[key] then s.n[key] = s.n[key] - removed end
  if removed == 0 or redis.call('EXISTS', key) == 1 then return end
  -- The bucket is empty: it leaves the directory (the first stays while others remain), and an
  -- index without members leaves no key, as an empty sorted set does not exist. What this call
  -- knew of the directory is looked up again.
  bmemo[index] = nil
  bgen = bgen + 1
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
-- bwhere is the bucket bowner looked a value up in, and bgen then: a claim adds to it without a
-- lookup of its own when no directory changed since.
local bwhere = {}

local function bowner(index, h)
  local known = bowned[index .. h]
  if known ~= nil then return known or nil end
  local s = bstate(index)
  local b = bfind(index, h .. BUCKET_HIGH)
  local at, e = b, nil
  while at do
    e = redis.call('ZRANGE', bkeyof(s, index, at), '[' .. h, '(' .. h .. BUCKET_HIGH, 'BYLEX', 'LIMIT', '0', '1')[1]
    -- A bucket that starts within the value's members (at a member of an earlier owner, or a
    -- bound that outlived it) may follow the one holding the member: the value passed to an
    -- owner ordered before the old one (a merge's older survivor).
    if e or before(at, h) then break end
    at = redis.call('ZRANGE', bdir(index), '(' .. at, '-', 'BYLEX', 'REV', 'LIMIT', '0', '1')[1]
  end
  local owner = e and string.sub(e, #h + 1)
  bowned[index .. h] = owner or false
  if b then bwhere[index .. h] = { b, bgen } end
  return owner
end

local function bclaim(index, h, owner)
  local have = bowner(index, h)
  if have == owner then return end
  if have then brem(index, h .. have) end
  local where = bwhere[index .. h]
  badd(index, h .. owner, where and where[2] == bgen and where[1] or nil)
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
