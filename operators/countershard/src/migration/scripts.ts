/**
 * Lua run by the mover. Counter hashes are additive, so they are MOVED exactly once: the old shard
 * gives the hash up atomically (renamed to a move record), the new shard adds it in a script that
 * also writes a done-marker, and only then the old record is deleted. A crash anywhere leaves
 * either the record (redone, skipped by the done-marker if the add happened) or nothing.
 * Set-like keys (unique sets, HyperLogLogs, presence) are dual-written by the pods during the
 * migration, so they are COPIED with a union: repeating it changes nothing.
 */

const NOW_MS = `
local now_parts = redis.call('TIME')
local now_ms = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
`;

/**
 * Old shard. KEYS: value, pending, record, movedValue, movedPending. ARGV: original key name.
 * Renames the counter's hash (+ pending set) to the move keys and writes the record
 * `{key, pttl}`; the moved keys lose their TTL so they cannot expire mid-move. Returns {0} when
 * there is no counter hash to take, else {1, hash fields and values..., '|', pending members and
 * deadlines...} (what the new shard needs, without another round trip).
 */
export const TAKE_COUNTER = `
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return {0} end
local pttl = redis.call('PTTL', KEYS[1])
redis.call('RENAME', KEYS[1], KEYS[4])
redis.call('PERSIST', KEYS[4])
local reply = redis.call('HGETALL', KEYS[4])
table.insert(reply, 1, 1)
table.insert(reply, '|')
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[5])
  redis.call('PERSIST', KEYS[5])
  local pending = redis.call('ZRANGE', KEYS[5], 0, -1, 'WITHSCORES')
  for i = 1, #pending do table.insert(reply, pending[i]) end
end
redis.call('SET', KEYS[3], cjson.encode({key = ARGV[1], pttl = pttl}))
table.insert(reply, 2, pttl)
return reply
`;

/**
 * New shard. KEYS: value, pending, done, partial marker. ARGV: v, g, m, pttl, doneTtlMs, then
 * pending pairs (member, deadline)... Adds the moved value exactly once (the done-marker). The
 * result is cold (deleted, re-warmed from MySQL by the next access) when the old hash was itself
 * stale — a leftover migration partial or an expired pending entry — or when the new shard holds a
 * full hash that no pod wrote during this migration (pods write only partials, m = '1', to a
 * migrating slot), or when a partial of this migration lost deltas: the pods' marker
 * (`ctrt:{slot}:<name>`, written with the first partial) exists but the partial is gone, or the
 * partial is flagged x = '1' (made again after one was deleted). The marker is dropped.
 * Otherwise: partial + old value, partial flag cleared, the partial's generation kept (in-flight
 * increments compare it after their Kafka ack); no partial → the old hash as it was.
 * Returns 1 merged, 2 made cold, 0 already done.
 */
export const MERGE_COUNTER = `${NOW_MS}
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local stale = ARGV[3] == '1' or ARGV[1] == ''
for i = 6, #ARGV, 2 do
  if tonumber(ARGV[i + 1]) <= now_ms then stale = true end
end
local existing = redis.call('EXISTS', KEYS[1]) == 1
local partial = existing and redis.call('HGET', KEYS[1], 'm') == '1'
if redis.call('EXISTS', KEYS[4]) == 1 then
  if not partial or redis.call('HGET', KEYS[1], 'x') == '1' then stale = true end
  redis.call('DEL', KEYS[4])
end
local result = 1
if stale or (existing and not partial) then
  redis.call('DEL', KEYS[1], KEYS[2])
  result = 2
else
  if partial then
    redis.call('HINCRBY', KEYS[1], 'v', ARGV[1])
    redis.call('HDEL', KEYS[1], 'm')
  else
    redis.call('HSET', KEYS[1], 'v', ARGV[1], 'g', ARGV[2])
  end
  local max_deadline = 0
  for i = 6, #ARGV, 2 do
    local deadline = tonumber(ARGV[i + 1])
    redis.call('ZADD', KEYS[2], deadline, ARGV[i])
    if deadline > max_deadline then max_deadline = deadline end
  end
  if max_deadline > 0 then
    local keep = max_deadline - now_ms
    if keep < 1000 then keep = 1000 end
    local current = redis.call('PTTL', KEYS[2])
    if current < keep * 4 then redis.call('PEXPIRE', KEYS[2], keep * 4) end
  end
  local pttl = tonumber(ARGV[4])
  if pttl > 0 then
    local current = redis.call('PTTL', KEYS[1])
    if current < 0 or current < pttl then redis.call('PEXPIRE', KEYS[1], pttl) end
  end
end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[5])
return result
`;

/**
 * New shard. KEYS: destination, staged copy (RESTOREd from the old shard's DUMP). ARGV: kind
 * ('set' | 'hll' | 'zset'), pttl of the old key. Unions the copy into the destination (sets:
 * SUNIONSTORE; HyperLogLogs: PFMERGE; presence: ZUNIONSTORE keeping the latest sighting), keeps the
 * longer TTL, drops the staged copy. Idempotent. Returns 1.
 */
export const UNION_COPY = `
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local had_ttl = redis.call('PTTL', KEYS[1])
if ARGV[1] == 'set' then
  redis.call('SUNIONSTORE', KEYS[1], KEYS[1], KEYS[2])
elseif ARGV[1] == 'hll' then
  redis.call('PFMERGE', KEYS[1], KEYS[2])
elseif ARGV[1] == 'zset' then
  redis.call('ZUNIONSTORE', KEYS[1], 2, KEYS[1], KEYS[2], 'AGGREGATE', 'MAX')
end
redis.call('DEL', KEYS[2])
local pttl = tonumber(ARGV[2])
if pttl > 0 and (had_ttl < 0 or had_ttl < pttl) then redis.call('PEXPIRE', KEYS[1], pttl) end
return 1
`;

/**
 * New shard. KEYS: marker. ARGV: value, pttl. Copies a unique day set's warm marker (the old
 * shard's set was complete when it was read, and the copy's members are all in the new set now).
 */
export const COPY_MARKER = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
`;
