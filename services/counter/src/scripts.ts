import { RedisReplyError, idempotentScript, type ScriptDefinition } from '@hyperscale/platform';

/**
 * The counter's Lua scripts. Data keys are always `value, pending` of one counter (one `{slot}`
 * tag); the idempotent scripts take the request's record `idem:{<slot>}:<id>` first (added by the
 * platform wrapper). The value hash is `{v, g, m}`: v the value, g the generation (who built it),
 * m = '1' while it holds only the deltas written to the new shard of a migrating slot.
 */

/** The reply code a script returns (as a Redis error, so nothing is recorded) for a cold counter. */
export const COLD = 'COLD';

/** True for the `COLD` reply: the counter must be warmed first (never a dependency failure). */
export function isColdReply(err: unknown): boolean {
  return err instanceof RedisReplyError && err.code === COLD;
}

const NOW_MS = `
local now_parts = redis.call('TIME')
local now_ms = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
`;

/**
 * Idempotent increment. ARGV (after the wrapper's ttl): delta, eventId, pendingMs, ttlMs, mode
 * ('o' owner: a cold counter is refused with COLD and nothing is recorded; 'm' migrating target:
 * a missing hash is created with m = '1' holding only this delta). A warm hash with an expired
 * pending entry is stale (a pod died before its ack): it is deleted and treated as cold. Records
 * the event as pending until now + pendingMs. Result `<value>:<m>:<gen>`; a re-sent call (same
 * request id) returns the first call's result without applying again. In owner mode a leftover
 * migration partial (m = '1' after the migration ended) is deleted and treated as cold.
 */
const INCR_BODY = `${NOW_MS}
local exists = redis.call('EXISTS', KEYS[2])
if exists == 1 and redis.call('ZCOUNT', KEYS[3], '-inf', now_ms) > 0 then
  redis.call('DEL', KEYS[2], KEYS[3])
  exists = 0
end
if exists == 1 and ARGV[6] ~= 'm' and redis.call('HGET', KEYS[2], 'm') == '1' then
  redis.call('DEL', KEYS[2], KEYS[3])
  exists = 0
end
if exists == 0 then
  if ARGV[6] ~= 'm' then return redis.error_reply('${COLD} counter is not in Redis') end
  redis.call('HSET', KEYS[2], 'v', 0, 'g', ARGV[3], 'm', '1')
end
local v = redis.call('HINCRBY', KEYS[2], 'v', ARGV[2])
local pending_ms = tonumber(ARGV[4])
redis.call('ZADD', KEYS[3], now_ms + pending_ms, ARGV[3])
redis.call('PEXPIRE', KEYS[3], pending_ms * 4)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return v .. ':' .. (redis.call('HGET', KEYS[2], 'm') or '0') .. ':' .. (redis.call('HGET', KEYS[2], 'g') or '')
`;

/**
 * Idempotent undo of one increment whose event Kafka did not take. ARGV: delta, eventId, gen.
 * Clears the pending entry; subtracts the delta only while the hash is still the generation the
 * increment was applied to (after a re-warm the delta is not in Redis to undo). Result 1 | 0.
 */
const UNDO_BODY = `
redis.call('ZREM', KEYS[3], ARGV[3])
if redis.call('HGET', KEYS[2], 'g') ~= ARGV[4] then return 0 end
redis.call('HINCRBY', KEYS[2], 'v', -tonumber(ARGV[2]))
return 1
`;

/**
 * After the acks of a batch of increments: KEYS are `value, pending` pairs, ARGV `gen, eventId`
 * pairs. For each: clears the pending entry; if the hash is no longer the generation the increment
 * went to (re-warmed meanwhile, possibly from a snapshot without this delta), deletes it so the next
 * access re-warms behind the writer. One reply per pair: 1 same, 0 invalidated.
 */
const ACKED_MANY = `
local out = {}
for i = 1, #KEYS, 2 do
  redis.call('ZREM', KEYS[i + 1], ARGV[i + 1])
  if (redis.call('HGET', KEYS[i], 'g') or '') == ARGV[i] then
    out[#out + 1] = 1
  else
    redis.call('DEL', KEYS[i], KEYS[i + 1])
    out[#out + 1] = 0
  end
end
return out
`;

/**
 * Read-only, for a batch of counters: KEYS are `value, pending` pairs; one reply per pair, {0} cold
 * (missing, or an expired pending entry), else {1, value, m}.
 */
const READ_MANY = `${NOW_MS}
local out = {}
for i = 1, #KEYS, 2 do
  local v = redis.call('HGET', KEYS[i], 'v')
  if not v or redis.call('ZCOUNT', KEYS[i + 1], '-inf', now_ms) > 0 then
    out[#out + 1] = {0}
  else
    out[#out + 1] = {1, v, redis.call('HGET', KEYS[i], 'm') or '0'}
  end
end
return out
`;

/**
 * ARGV: value, gen, ttlMs. Warms a cold counter (SET NX semantics): writes only when the hash is
 * missing or stale (expired pending entry). Returns 1 filled, 0 already warm.
 */
const FILL = `${NOW_MS}
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('ZCOUNT', KEYS[2], '-inf', now_ms) == 0 then return 0 end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'g', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/** Reply of `ctrReadMany`, per counter. */
export type ReadReply = { cold: true } | { cold: false; value: number; partial: boolean };

/** The parsed result of an increment: new value of this hash, whether it is a migration partial, its gen. */
export interface IncrResult {
  value: number;
  partial: boolean;
  gen: string;
}

function integer(value: unknown, what: string): number {
  const n = typeof value === 'number' ? value : Number(Buffer.isBuffer(value) ? value.toString() : value);
  if (!Number.isSafeInteger(n)) throw new RedisReplyError('BADREPLY', `${what}: not an integer`);
  return n;
}

/** Parses `<value>:<m>:<gen>` (the recorded result of an increment). */
export function parseIncrResult(result: string): IncrResult {
  const first = result.indexOf(':');
  const second = result.indexOf(':', first + 1);
  if (first < 0 || second < 0) throw new RedisReplyError('BADREPLY', 'ctrIncr: bad result');
  return {
    value: integer(result.slice(0, first), 'ctrIncr.value'),
    partial: result.slice(first + 1, second) === '1',
    gen: result.slice(second + 1),
  };
}

function parseAckedMany(reply: unknown): boolean[] {
  if (!Array.isArray(reply)) throw new RedisReplyError('BADREPLY', 'ctrAckedMany: bad reply');
  return reply.map((r) => integer(r, 'ctrAckedMany') === 1);
}

function parseReadMany(reply: unknown): ReadReply[] {
  if (!Array.isArray(reply)) throw new RedisReplyError('BADREPLY', 'ctrReadMany: bad reply');
  return reply.map(parseRead);
}

function parseRead(reply: unknown): ReadReply {
  if (!Array.isArray(reply) || reply.length === 0)
    throw new RedisReplyError('BADREPLY', 'ctrReadMany: bad reply');
  if (integer(reply[0], 'ctrReadMany') === 0) return { cold: true };
  const m: unknown = reply[2];
  return { cold: false, value: integer(reply[1], 'ctrReadMany.value'), partial: String(m) === '1' };
}

/** The scripts, for `RedisShardClient.defineScripts`. */
export const COUNTER_SCRIPTS = {
  ctrIncr: idempotentScript(INCR_BODY, 2),
  ctrUndo: idempotentScript(UNDO_BODY, 2),
  ctrAckedMany: { lua: ACKED_MANY, numberOfKeys: { multipleOf: 2 }, parse: parseAckedMany },
  ctrReadMany: { lua: READ_MANY, numberOfKeys: { multipleOf: 2 }, parse: parseReadMany },
  ctrFill: { lua: FILL, numberOfKeys: 2, parse: (r: unknown) => integer(r, 'ctrFill') === 1 },
} satisfies Record<string, ScriptDefinition<unknown>>;
