-- The records at KEYS, in order: each as stored in a string (one byte the version's length, the
-- version, the data), false when there is none. An old-layout record, a hash {d, v, ...}, is
-- returned in the same form, so a read is one command whatever the layout.
local out = {}
for i, key in ipairs(KEYS) do
  local r = redis.pcall('GET', key)
  if type(r) == 'table' then
    local h = redis.call('HMGET', key, 'd', 'v')
    r = false
    if h[1] then
      local v = h[2] or ''
      r = string.char(#v) .. v .. h[1]
    end
  end
  out[i] = r
end
return out
