-- One atomic write: its checks, then, when all pass, its effects, so a failed check writes
-- nothing. A write is <operation count> and per operation <code> <argument count> <arguments...>,
-- where key arguments are indexes into KEYS. The scripts that run writes (write.lua, batch.lua)
-- follow this one.

-- KEYS and ARGV as locals: a write reads them a few hundred times per row, and a global is a
-- table lookup each time. (The script's body runs on every call, so these are this call's.)
local KEYS, ARGV = KEYS, ARGV

-- version is the version of the record at key: '' when there is none. A record is a string (one
-- byte the version's length, the version, the data) or, in the old layout and where a record shares
-- its key with other fields, a hash {d: data, v: version, ...}.
-- The second result is true when the key is a string or nothing: a put there needs no look at
-- its type.
local function version(key)
  local r = redis.pcall('GET', key)
  if type(r) == 'table' then return redis.call('HGET', key, 'v') or '', false end
  if not r then return '', true end
  return string.sub(r, 2, 1 + string.byte(r, 1)), true
end

-- record is the record at key in its stored form (see read.lua), '' when there is none.
local function record(key)
  local r = redis.pcall('GET', key)
  if type(r) == 'table' then
    local h = redis.call('HMGET', key, 'd', 'v')
    if not h[1] then return '' end
    local v = h[2] or ''
    return string.char(#v) .. v .. h[1]
  end
  return r or ''
end

-- merge, which batch.lua sets, takes the effects RunBatch marked to be merged across a call's
-- writes (mzadd, mhincr, mhset): batch.lua runs them once per key at the end of the call.
local merge

-- count is a count argument: one digit (nearly all) without tonumber, whose strtod cost more than
-- the rest of reading an operation.
local function count(s)
  if #s == 1 then return byte(s) - 48 end
  return tonumber(s)
end

-- keyat memoizes KEYS[tonumber(i)] per key argument i (a write names its keys many times).
local keyat = {}
local function keyof(i)
  local key = keyat[i]
  if not key then
    key = KEYS[tonumber(i)]
    keyat[i] = key
  end
  return key
end

-- parse reads the write whose operation count is ARGV[i]: where each operation starts in ARGV (its
-- code; its argument count, then its arguments, follow), and where the next write starts. It builds
-- no table per operation: a write of a capture has about 45.
local function parse(i)
  local ops = {}
  for n = 1, count(ARGV[i]) do
    ops[n] = i + 1
    i = i + 2 + count(ARGV[i + 2])
  end
  return ops, i + 1
end

-- apply runs one write's checks, then, when all pass, its effects; it returns the write's reply.
-- An operation at p has its code at ARGV[p], its arguments from ARGV[p + 2] (the first, but for
-- pub, the index of its key in KEYS).
local function apply(ops)
  -- plain holds the keys a version check found a string or nothing at; fresh the keys of the
  -- records the write creates ('new'), checked together after the other checks.
  local plain, fresh = {}, nil
  for _, p in ipairs(ops) do
    local code, a1 = ARGV[p], ARGV[p + 2]
    if code == 'new' then
      fresh = fresh or {}
      fresh[#fresh + 1] = keyof(a1)
    elseif code == 'ver' then
      local current, isplain = version(keyof(a1))
      if current ~= ARGV[p + 3] then return { 'version', keyof(a1), current } end
      plain[a1] = isplain
    elseif code == 'uniq' then
      local owner = redis.call('HGET', keyof(a1), ARGV[p + 3])
      if owner and owner ~= ARGV[p + 4] then
        -- ARGV[p + 5], when given, is the prefix of the owners' record keys: the conflict carries
        -- the owner's record (UniqueOrRead). It shares the index's hash tag, so the same node has it.
        if count(ARGV[p + 1]) == 4 then
          return { 'uniq', keyof(a1), ARGV[p + 3], owner, record(ARGV[p + 5] .. owner) }
        end
        return { 'uniq', keyof(a1), ARGV[p + 3], owner }
      end
    elseif code == 'buniq' then
      -- ARGV[p + 3] is the value's key, ARGV[p + 6] the value itself (for the reply)
      local owner = bowner(keyof(a1), ARGV[p + 3])
      if owner and owner ~= ARGV[p + 4] then
        if ARGV[p + 5] ~= '' then return { 'uniq', keyof(a1), ARGV[p + 6], bid(owner), record(ARGV[p + 5] .. bid(owner)) } end
        return { 'uniq', keyof(a1), ARGV[p + 6], bid(owner) }
      end
    elseif code == 'once' then
      if redis.call('EXISTS', keyof(a1)) == 1 then return { 'once' } end
    elseif code == 'covers' then
      local have = tonumber(redis.call('HGET', keyof(a1), ARGV[p + 3]) or '0')
      if have < tonumber(ARGV[p + 4]) then return { 'insufficient', keyof(a1), tostring(have) } end
    elseif code == 'exists' then
      if redis.call('EXISTS', keyof(a1)) == 0 then return { 'missing', keyof(a1) } end
    elseif code == 'absent' then
      if redis.call('EXISTS', keyof(a1)) == 1 then return { 'present', keyof(a1) } end
    elseif code == 'unset' then
      -- a record stored as a string has no fields: the field is unset
      local value = redis.pcall('HGET', keyof(a1), ARGV[p + 3])
      if type(value) == 'string' then return { 'set', keyof(a1), ARGV[p + 3], value } end
    end
  end
  if fresh and redis.call('EXISTS', unpack(fresh)) > 0 then
    for _, key in ipairs(fresh) do
      if redis.call('EXISTS', key) == 1 then return { 'version', key, (version(key)) } end
    end
  end

  -- shared holds the keys this write also sets hash fields of: a record there shares its hash.
  local shared = {}
  for _, p in ipairs(ops) do
    local code = ARGV[p]
    if code == 'hset' or code == 'hincr' or code == 'hdel' then shared[ARGV[p + 2]] = true end
  end

  for _, p in ipairs(ops) do
    local code, a1, a2, a3 = ARGV[p], ARGV[p + 2], ARGV[p + 3], ARGV[p + 4]
    local key = code ~= 'pub' and keyof(a1)
    -- an import row's codes first (merged effects, bucketed adds, records, events): each code
    -- tested before an operation's own is a few VM instructions more
    if code == 'mzadd' or code == 'mhincr' or code == 'mhset' then
      merge(code, key, a2, a3)
    elseif code == 'badd' then
      badd(key, a2)
    elseif code == 'new' then
      redis.call('SET', key, a2)
    elseif code == 'xadd' then
      redis.call('XADD', key, '*', 'e', a2)
    elseif code == 'put' then
      -- a2 is the record: one byte the version's length, the version, the data. A hash with other
      -- fields than d and v, or one this write sets fields of, shares its key with other state
      -- (integration's deliveries, a referral code's customer): it stays a hash. Anything else
      -- (nothing, a string, an old-layout {d, v} hash) becomes the string, which keeps the key's
      -- expiry if it had one. A key the write's version check found plain needs no HLEN.
      local n = not shared[a1] and not plain[a1] and redis.pcall('HLEN', key)
      if shared[a1] or type(n) == 'number' and n > 0 and not (n == 2 and redis.call('HEXISTS', key, 'd') == 1) then
        local l = byte(a2, 1)
        redis.call('HSET', key, 'd', string.sub(a2, 2 + l), 'v', string.sub(a2, 2, 1 + l))
      else
        redis.call('SET', key, a2, 'KEEPTTL')
      end
    elseif code == 'del' then
      redis.call('DEL', key)
    elseif code == 'hset' then
      redis.call('HSET', key, a2, a3)
    elseif code == 'hdel' then
      redis.call('HDEL', key, a2)
    elseif code == 'hincr' then
      redis.call('HINCRBY', key, a2, a3)
    elseif code == 'zadd' then
      redis.call('ZADD', key, a2, a3)
    elseif code == 'zrem' then
      redis.call('ZREM', key, a2)
    elseif code == 'brem' then
      brem(key, a2)
    elseif code == 'bclaim' then
      bclaim(key, a2, a3)
    elseif code == 'bunclaim' then
      bunclaim(key, a2)
    elseif code == 'setpx' then
      redis.call('SET', key, a2, 'PX', a3)
    elseif code == 'mark' then
      if tonumber(a2) > 0 then
        redis.call('SET', key, '1', 'EX', a2)
      else
        redis.call('SET', key, '1')
      end
    elseif code == 'pub' then
      redis.call('PUBLISH', a1, a2)
    end
  end
  return { 'ok' }
end
