-- A batch of writes (RunBatch), each atomic and all or nothing on its own: ARGV[1] as for one
-- write, ARGV[2] the number of writes, which follow from ARGV[3]. The reply is each write's reply.
-- A write that fails with an error (a Redis error inside it) has its error as its reply, and the
-- others go on, as they would in separate calls.
local out = {}
if ARGV[1] == 'marked' and redis.call('EXISTS', KEYS[#KEYS]) == 0 then
  for w = 1, tonumber(ARGV[2]) do out[w] = { 'uninitialized' } end
  return out
end
local i = 3
for w = 1, tonumber(ARGV[2]) do
  local ops
  ops, i = parse(i)
  local ok, reply = pcall(apply, ops)
  if not ok then
    reply = { 'error', type(reply) == 'table' and tostring(reply.err) or tostring(reply) }
  end
  out[w] = reply
end
return out
