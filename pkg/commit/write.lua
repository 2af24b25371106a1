-- A single write: ARGV[1] "marked" says the last key is the partition's marker (without it, Redis
-- lost its data and nothing is written); the write follows from ARGV[2].
if ARGV[1] == 'marked' and redis.call('EXISTS', KEYS[#KEYS]) == 0 then return { 'uninitialized' } end
return apply((parse(2)))
