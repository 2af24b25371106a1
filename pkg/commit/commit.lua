-- One atomic write: its checks, then, when all pass, its effects, so a failed check writes
-- nothing. A write is <operation count> and per operation <code> <argument count> <arguments...>,
-- where key arguments are indexes into KEYS. The scripts that run writes (write.lua, batch.lua)
-- follow this one.

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

-- parse reads the write whose operation count is ARGV[i]: its operations, and where the next write
-- starts.
local function parse(i)
  local ops = {}
  for n = 1, tonumber(ARGV[i]) do
    local argc = tonumber(ARGV[i + 2])
    ops[n] = { ARGV[i + 1], { unpack(ARGV, i + 3, i + 2 + argc) } }
    i = i + 2 + argc
  end
  return ops, i + 1
end

-- apply runs one write's checks, then, when all pass, its effects; it returns the write's reply.
local function apply(ops)
  -- plain holds the keys a version check found a string or nothing at.
  local plain = {}
  for _, op in ipairs(ops) do
    local code, a = op[1], op[2]
    if code == 'ver' then
      local current, isplain = version(KEYS[tonumber(a[1])])
      if current ~= a[2] then return { 'version', KEYS[tonumber(a[1])], current } end
      plain[a[1]] = isplain
    elseif code == 'uniq' then
      local owner = redis.call('HGET', KEYS[tonumber(a[1])], a[2])
      if owner and owner ~= a[3] then
        -- a[4], when given, is the prefix of the owners' record keys: the conflict carries the
        -- owner's record (UniqueOrRead). It shares the index's hash tag, so the same node has it.
        if a[4] then return { 'uniq', KEYS[tonumber(a[1])], a[2], owner, record(a[4] .. owner) } end
        return { 'uniq', KEYS[tonumber(a[1])], a[2], owner }
      end
    elseif code == 'buniq' then
      -- a[2] is the value's key, a[5] the value itself (for the reply)
      local owner = bowner(KEYS[tonumber(a[1])], a[2])
      if owner and owner ~= a[3] then
        if a[4] ~= '' then return { 'uniq', KEYS[tonumber(a[1])], a[5], bid(owner), record(a[4] .. bid(owner)) } end
        return { 'uniq', KEYS[tonumber(a[1])], a[5], bid(owner) }
      end
    elseif code == 'once' then
      if redis.call('EXISTS', KEYS[tonumber(a[1])]) == 1 then return { 'once' } end
    elseif code == 'covers' then
      local have = tonumber(redis.call('HGET', KEYS[tonumber(a[1])], a[2]) or '0')
      if have < tonumber(a[3]) then return { 'insufficient', KEYS[tonumber(a[1])], tostring(have) } end
    elseif code == 'exists' then
      if redis.call('EXISTS', KEYS[tonumber(a[1])]) == 0 then return { 'missing', KEYS[tonumber(a[1])] } end
    elseif code == 'absent' then
      if redis.call('EXISTS', KEYS[tonumber(a[1])]) == 1 then return { 'present', KEYS[tonumber(a[1])] } end
    elseif code == 'unset' then
      -- a record stored as a string has no fields: the field is unset
      local value = redis.pcall('HGET', KEYS[tonumber(a[1])], a[2])
      if type(value) == 'string' then return { 'set', KEYS[tonumber(a[1])], a[2], value } end
    end
  end

  -- shared holds the keys this write also sets hash fields of: a record there shares its hash.
  local shared = {}
  for _, op in ipairs(ops) do
    if op[1] == 'hset' or op[1] == 'hincr' or op[1] == 'hdel' then shared[op[2][1]] = true end
  end

  for _, op in ipairs(ops) do
    local code, a = op[1], op[2]
    local key = KEYS[tonumber(a[1])]
    if code == 'put' then
      -- a[2] is the record: one byte the version's length, the version, the data. A hash with other
      -- fields than d and v, or one this write sets fields of, shares its key with other state
      -- (integration's deliveries, a referral code's customer): it stays a hash. Anything else
      -- (nothing, a string, an old-layout {d, v} hash) becomes the string, which keeps the key's
      -- expiry if it had one. A key the write's version check found plain needs no HLEN.
      local n = not shared[a[1]] and not plain[a[1]] and redis.pcall('HLEN', key)
      if shared[a[1]] or type(n) == 'number' and n > 0 and not (n == 2 and redis.call('HEXISTS', key, 'd') == 1) then
        local l = string.byte(a[2], 1)
        redis.call('HSET', key, 'd', string.sub(a[2], 2 + l), 'v', string.sub(a[2], 2, 1 + l))
      else
        redis.call('SET', key, a[2], 'KEEPTTL')
      end
    elseif code == 'del' then
      redis.call('DEL', key)
    elseif code == 'hset' then
      redis.call('HSET', key, a[2], a[3])
    elseif code == 'hdel' then
      redis.call('HDEL', key, a[2])
    elseif code == 'hincr' then
      redis.call('HINCRBY', key, a[2], a[3])
    elseif code == 'zadd' then
      redis.call('ZADD', key, a[2], a[3])
    elseif code == 'zrem' then
      redis.call('ZREM', key, a[2])
    elseif code == 'badd' then
      badd(key, a[2])
    elseif code == 'brem' then
      brem(key, a[2])
    elseif code == 'bclaim' then
      bclaim(key, a[2], a[3])
    elseif code == 'bunclaim' then
      bunclaim(key, a[2])
    elseif code == 'mark' then
      if tonumber(a[2]) > 0 then
        redis.call('SET', key, '1', 'EX', a[2])
      else
        redis.call('SET', key, '1')
      end
    elseif code == 'xadd' then
      redis.call('XADD', key, '*', 'e', a[2])
    elseif code == 'pub' then
      redis.call('PUBLISH', a[1], a[2])
    end
  end
  return { 'ok' }
end
