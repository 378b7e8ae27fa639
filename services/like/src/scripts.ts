import { RedisReplyError, type ScriptDefinition } from '@hyperscale/platform';

/**
 * The post's Lua scripts. Every script takes the post's four keys in the order
 * `users, count, gen, pending` (one hash tag, so one slot). The count key's existence means
 * "warm"; a post counts as cold when its set is missing while the count is positive (evicted
 * independently) or when a pending change is past its deadline (its pod died before the ack).
 */

/** Reply of `likeApply`: the post was cold (nothing written), or the change and the new state. */
export type ApplyReply = { cold: true } | { cold: false; changed: boolean; count: number; gen: string };

/**
 * Reply of `likeRead`: cold, or the count and (when a user was given) the user's membership;
 * `idle` when no change awaits its Kafka acknowledgement (what the pod's read cache requires).
 */
export type ReadReply = { cold: true } | { cold: false; count: number; liked: boolean; idle: boolean };

/** Reply of `likeFill`: 'filled' (this call wrote), 'aborted' (the claim was lost), 'already' warm. */
export type FillReply = 'filled' | 'aborted' | 'already';

const NOW_MS = `
local now_parts = redis.call('TIME')
local now_ms = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
`;

const COLD_CHECK = `
local count = redis.call('GET', KEYS[2])
if not count then return false end
local n = tonumber(count)
if n == nil or (n > 0 and redis.call('EXISTS', KEYS[1]) == 0)
    or redis.call('ZCOUNT', KEYS[4], '-inf', now_ms) > 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
  return false
end
return n
`;

/**
 * ARGV: userId, '1' (like) | '0' (unlike), eventId, pendingMs. Never writes to a cold post
 * (returns {0}); otherwise SADD/SREM, INCRBY count by the number of members changed, records a
 * real change as pending until now + pendingMs, and returns {1, changed, count, gen}. Idempotent
 * by construction: applying the same action twice changes the set (and the count) once. A set
 * created by the first like inherits the count's TTL.
 */
const APPLY = `${NOW_MS}
local function warm_count()
${COLD_CHECK}
end
local n = warm_count()
if not n then return {0} end
local changed
if ARGV[2] == '1' then
  changed = redis.call('SADD', KEYS[1], ARGV[1])
  if changed == 1 then
    n = redis.call('INCRBY', KEYS[2], 1)
    local ttl = redis.call('PTTL', KEYS[2])
    if ttl > 0 and redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ttl) end
  end
else
  changed = redis.call('SREM', KEYS[1], ARGV[1])
  if changed == 1 then n = redis.call('INCRBY', KEYS[2], -1) end
end
if changed == 1 then
  local pending_ms = tonumber(ARGV[4])
  redis.call('ZADD', KEYS[4], now_ms + pending_ms, ARGV[3])
  redis.call('PEXPIRE', KEYS[4], pending_ms * 4)
end
return {1, changed, n, redis.call('GET', KEYS[3]) or ''}
`;

/**
 * ARGV: userId, the action to undo ('1' like | '0' unlike), gen, eventId. Reverts one request's
 * change, but only while the keys are still the generation the change was applied to (after a
 * re-warm the change is not in Redis to undo). Returns 1 when it reverted something.
 */
const UNDO = `
redis.call('ZREM', KEYS[4], ARGV[4])
if (redis.call('GET', KEYS[3]) or '') ~= ARGV[3] or not redis.call('GET', KEYS[2]) then return 0 end
if ARGV[2] == '1' then
  if redis.call('SREM', KEYS[1], ARGV[1]) == 1 then redis.call('INCRBY', KEYS[2], -1) return 1 end
else
  if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then redis.call('INCRBY', KEYS[2], 1) return 1 end
end
return 0
`;

/** ARGV: userId or ''. Read-only: {0} when cold, else {1, count, member 0|1}. */
const READ = `${NOW_MS}
local count = redis.call('GET', KEYS[2])
if not count then return {0} end
local n = tonumber(count)
if n == nil or (n > 0 and redis.call('EXISTS', KEYS[1]) == 0) then return {0} end
if redis.call('ZCOUNT', KEYS[4], '-inf', now_ms) > 0 then return {0} end
local member = 0
if ARGV[1] ~= '' then member = redis.call('SISMEMBER', KEYS[1], ARGV[1]) end
return {1, n, member, 1 - redis.call('EXISTS', KEYS[4])}
`;

/**
 * ARGV: gen, claimTtlMs. Starts a warm: returns 0 when the post is already warm; otherwise
 * clears any half-filled set and records `gen` as the one warm allowed to finish (a later claim
 * or an invalidation replaces or deletes it, which makes this warm's fill abort).
 */
const CLAIM = `${NOW_MS}
local function warm_count()
${COLD_CHECK}
end
if warm_count() then return 0 end
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
return 1
`;

/**
 * ARGV: gen, final '1'|'0', ttlMs, userIds... Adds a chunk of members while `gen` still holds
 * the claim and the post is still cold; the final chunk sets count = SCARD (so count and set
 * agree by construction) and gives all three keys the TTL. Returns 1 filled, 0 aborted, 2 already.
 */
const FILL = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
if #ARGV > 3 then redis.call('SADD', KEYS[1], unpack(ARGV, 4)) end
local ttl = tonumber(ARGV[3])
if ARGV[2] == '1' then
  redis.call('SET', KEYS[2], redis.call('SCARD', KEYS[1]), 'PX', ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
  if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ttl) end
elseif redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], redis.call('PTTL', KEYS[3]))
end
return 1
`;

/**
 * KEYS: the post's four keys, then its acked-position key. ARGV: gen, eventId, partition, offset,
 * positionTtlMs. After a write's event was acknowledged: records the event's Kafka position as the
 * post's newest acknowledged one (kept when a newer one is there; offsets compared exactly as
 * decimal strings; a new partition replaces the old, as after a repartition); clears its pending
 * entry; then, if the keys are no longer the generation the write was applied to (a warm claimed
 * or finished since, possibly from a MySQL snapshot that misses this event), deletes them so the
 * next access re-warms behind the writer. Returns 1 when the generation still matches, 0 when it
 * invalidated.
 */
const CHECK_GEN = `
if ARGV[4] ~= '' then
  local current = redis.call('GET', KEYS[5])
  local newer = true
  if current then
    local partition, offset = string.match(current, '^(%d+):(%d+)$')
    if partition == ARGV[3] then
      newer = #offset < #ARGV[4] or (#offset == #ARGV[4] and offset < ARGV[4])
    end
  end
  if newer then redis.call('SET', KEYS[5], ARGV[3] .. ':' .. ARGV[4], 'PX', ARGV[5])
  else redis.call('PEXPIRE', KEYS[5], ARGV[5]) end
end
redis.call('ZREM', KEYS[4], ARGV[2])
if (redis.call('GET', KEYS[3]) or '') == ARGV[1] then return 1 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return 0
`;

/** A post's newest acknowledged Kafka position (`ackedPositionKey`), or undefined. */
export interface AckedPosition {
  partition: number;
  offset: string;
}

/** Parses `<partition>:<offset>`; anything else (absent, garbled) is undefined. */
export function parseAckedPosition(value: string | null): AckedPosition | undefined {
  const match = value === null ? null : /^(\d+):(\d+)$/.exec(value);
  if (match === null) return undefined;
  return { partition: Number(match[1]), offset: match[2] as string };
}

function integer(value: unknown, what: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n)) throw new RedisReplyError('BADREPLY', `${what}: not an integer`);
  return n;
}

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return '';
}

function array(reply: unknown, what: string): unknown[] {
  if (!Array.isArray(reply) || reply.length === 0)
    throw new RedisReplyError('BADREPLY', `${what}: bad reply`);
  return reply;
}

export function parseApply(reply: unknown): ApplyReply {
  const r = array(reply, 'likeApply');
  if (integer(r[0], 'likeApply') === 0) return { cold: true };
  return {
    cold: false,
    changed: integer(r[1], 'likeApply.changed') === 1,
    count: integer(r[2], 'likeApply.count'),
    gen: text(r[3]),
  };
}

export function parseRead(reply: unknown): ReadReply {
  const r = array(reply, 'likeRead');
  if (integer(r[0], 'likeRead') === 0) return { cold: true };
  return {
    cold: false,
    count: integer(r[1], 'likeRead.count'),
    liked: integer(r[2], 'likeRead.member') === 1,
    idle: integer(r[3], 'likeRead.idle') === 1,
  };
}

export function parseFill(reply: unknown): FillReply {
  const n = integer(reply, 'likeFill');
  return n === 1 ? 'filled' : n === 2 ? 'already' : 'aborted';
}

/** The script set, registered per shard with `RedisShardClient.defineScripts`. */
export const LIKE_SCRIPTS = {
  likeApply: { lua: APPLY, numberOfKeys: 4, parse: parseApply } satisfies ScriptDefinition<ApplyReply>,
  likeUndo: { lua: UNDO, numberOfKeys: 4, parse: (r: unknown) => integer(r, 'likeUndo') === 1 },
  likeRead: { lua: READ, numberOfKeys: 4, parse: parseRead } satisfies ScriptDefinition<ReadReply>,
  likeClaim: { lua: CLAIM, numberOfKeys: 4, parse: (r: unknown) => integer(r, 'likeClaim') === 1 },
  likeFill: { lua: FILL, numberOfKeys: 4, parse: parseFill } satisfies ScriptDefinition<FillReply>,
  likeCheckGen: { lua: CHECK_GEN, numberOfKeys: 5, parse: (r: unknown) => integer(r, 'likeCheckGen') === 1 },
} as const;
