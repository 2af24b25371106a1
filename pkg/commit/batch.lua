-- A batch of writes (RunBatch), each atomic and all or nothing on its own: ARGV[1] as for one
-- write, ARGV[2] the number of writes, which follow from ARGV[3]. The reply is each write's reply.
-- A write that fails with an error (a Redis error inside it) has its error as its reply, and the
-- others go on, as they would in separate calls.
local out = {}
if ARGV[1] == 'marked' and redis.call('EXISTS', KEYS[#KEYS]) == 0 then
  for w = 1, tonumber(ARGV[2]) do out[w] = { 'uninitialized' } end
  return out
end

-- The merged effects (batch.go marks them: a key that takes only ZADD, only HINCRBY or only HSET
-- in this call, and that no check reads), gathered from the writes that reach their effects and
-- run at the end of the call as one command per key (per field of a counter): the call is atomic,
-- so no reader can tell, and a refused write, which reaches no effect, adds nothing. pending[key]
-- is what a key takes, in order of first use; writes, the writes that gave it.
local pending, order = {}, {}
local current -- the write being applied
merge = function(code, key, a2, a3)
  local p = pending[key]
  if not p then
    p = { code = code, key = key, args = {}, sums = {}, writes = {} }
    pending[key] = p
    order[#order + 1] = p
  end
  if p.writes[#p.writes] ~= current then p.writes[#p.writes + 1] = current end
  local args = p.args
  if code == 'mhincr' then
    -- a counter's increments add up, field by field; each is kept too, for sums a double would
    -- not hold exactly
    if not p.sums[a2] then
      p.sums[a2] = 0
      args[#args + 1] = a2
    end
    p.sums[a2] = p.sums[a2] + tonumber(a3)
    p.each = p.each or {}
    p.each[#p.each + 1] = a2
    p.each[#p.each + 1] = a3
  else
    -- ZADD and HSET take many pairs, applied in order: a member or field given twice ends as the
    -- last write left it, as with separate commands
    args[#args + 1] = a2
    args[#args + 1] = a3
  end
end

local EXACT = 2 ^ 52
local function flush(p)
  if p.code == 'mhincr' then
    local exact = true
    for i = 2, #p.each, 2 do
      if math.abs(tonumber(p.each[i])) >= EXACT then exact = false end
    end
    for _, field in ipairs(p.args) do
      if math.abs(p.sums[field]) >= EXACT then exact = false end
    end
    if not exact then
      for i = 1, #p.each, 2 do redis.call('HINCRBY', p.key, p.each[i], p.each[i + 1]) end
      return
    end
    for _, field in ipairs(p.args) do
      redis.call('HINCRBY', p.key, field, string.format('%d', p.sums[field]))
    end
    return
  end
  local command = p.code == 'mzadd' and 'ZADD' or 'HSET'
  for from = 1, #p.args, 1024 do -- unpack has a bounded stack
    redis.call(command, p.key, unpack(p.args, from, math.min(from + 1023, #p.args)))
  end
end

local i = 3
for w = 1, tonumber(ARGV[2]) do
  local ops
  ops, i = parse(i)
  current = w
  local ok, reply = pcall(apply, ops)
  if not ok then
    reply = { 'error', type(reply) == 'table' and tostring(reply.err) or tostring(reply) }
  end
  out[w] = reply
end
-- A merged command that fails (a key of another type) is the error of every write that gave it.
for _, p in ipairs(order) do
  local ok, err = pcall(flush, p)
  if not ok then
    for _, w in ipairs(p.writes) do
      out[w] = { 'error', type(err) == 'table' and tostring(err.err) or tostring(err) }
    end
  end
end
return out
