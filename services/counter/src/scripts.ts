import { RedisReplyError, idempotentScript, type ScriptDefinition } from '@hyperscale/platform';

/**
 * The counter's Lua scripts. A counter's data keys are `value, pending` (one `{slot}` tag); the
 * batch scripts (`…Many`) take them for several counters of one shard; an idempotent change takes
 * the request's record `idem:{<slot>}:<id>` first. The value hash is `{v, g, m, w}`: v the value,
 * g the generation (who built it), m = '1' while it holds only the deltas written to the new shard
 * of a migrating slot, w when a warm filled it (absent on partials and moved hashes).
 */

const NOW_MS = `
local now_parts = redis.call('TIME')
local now_ms = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
`;

/**
 * One shard's writes of an event-loop turn in ONE script call: the post-ack checks of earlier
 * increments, then idempotent increments. A call costs Redis about as much as the Lua it runs
 * (each call wakes the server), so the acks ride with the increments instead of a call of their own.
 *
 * KEYS: `idem, value, pending` triples for the increments (the request's record
 * `idem:{<slot>}:<eventId>` first), then `value, pending` pairs for the acks. ARGV: `idemTtlMs,
 * pendingMs, ttlMs, incrementCount`, then a `delta, eventId, mode` triple per increment, then a
 * `gen, eventId` pair per ack. Reply: `{increments, acks}`.
 *
 * Per ack: clears the event's pending entry; if the hash is no longer the generation the increment
 * went to (re-warmed meanwhile, possibly from a snapshot without this delta), deletes it so the
 * next access re-warms behind the writer. Reply 1 same, 0 invalidated.
 *
 * Per increment, in order:
 * - its request id is recorded already (a re-sent call, or a retry) → `{0, recorded result}`,
 *   nothing applied;
 * - mode 'o' (owner) and the counter is cold → `{2}`, nothing applied or recorded (the caller warms
 *   it and retries). Cold: no hash, a hash with an expired pending entry (a pod died before its
 *   ack) or a leftover migration partial (m = '1' after the migration ended) — the last two are
 *   deleted first;
 * - mode 'm' (migrating target) and no hash → one is created with m = '1' holding only this delta;
 * - else HINCRBY, the event recorded as pending until now + pendingMs, TTLs refreshed, and the
 *   result `<value>:<m>:<gen>` recorded under the request id → `{1, result}`.
 * Deltas are validated by the caller (integers within ±1e9): a bad one fails the script half-way.
 * A re-sent call runs its acks again, which is harmless: ZREM of an absent entry, and the
 * generation check is a fact about the hash, not about the call.
 */
const INCR_ACK_MANY = `${NOW_MS}
local idem_ttl = tonumber(ARGV[1])
local pending_ms = tonumber(ARGV[2])
local n = tonumber(ARGV[4])
if not idem_ttl or idem_ttl < 1 or idem_ttl ~= math.floor(idem_ttl) or not pending_ms or pending_ms < 1 then
  return redis.error_reply('ERR idemTtlMs and pendingMs must be positive integers of milliseconds')
end
if not n or n < 0 or n ~= math.floor(n) or n * 3 > #KEYS or (#KEYS - n * 3) % 2 ~= 0 then
  return redis.error_reply('ERR incrementCount does not match the keys')
end
local acks = {}
local a = n * 3 + 5
for i = n * 3 + 1, #KEYS, 2 do
  local vk, pk = KEYS[i], KEYS[i + 1]
  redis.call('ZREM', pk, ARGV[a + 1])
  if (redis.call('HGET', vk, 'g') or '') == ARGV[a] then
    acks[#acks + 1] = 1
  else
    redis.call('DEL', vk, pk)
    acks[#acks + 1] = 0
  end
  a = a + 2
end
local out = {}
for i = 1, n * 3, 3 do
  local idem, vk, pk = KEYS[i], KEYS[i + 1], KEYS[i + 2]
  local delta, event_id, mode = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local prev = redis.call('GET', idem)
  if prev then
    out[#out + 1] = {0, prev}
  else
    -- v and g are in every hash this service writes: one HMGET tells existence, m and g.
    local h = redis.call('HMGET', vk, 'v', 'm', 'g')
    local exists = h[1] ~= false or h[3] ~= false
    local m, g = h[2], h[3]
    if exists and redis.call('ZCOUNT', pk, '-inf', now_ms) > 0 then
      redis.call('DEL', vk, pk)
      exists = false
    end
    if exists and mode ~= 'm' and m == '1' then
      redis.call('DEL', vk, pk)
      exists = false
    end
    if not exists and mode ~= 'm' then
      out[#out + 1] = {2}
    else
      local marker = 'ctrt' .. string.sub(vk, 4)
      if not exists then
        -- The first partial of the counter in this migration leaves a marker ctrt:{slot}:<name>
        -- (outside ctr:*, so shard invalidations keep it; the mover drops it). A partial made
        -- while the marker exists replaces one that was deleted (an ack's generation check, a
        -- repair, an expired entry) with deltas only MySQL still has: it is flagged (x), and the
        -- mover leaves such a counter cold instead of adding the old value.
        if redis.call('SET', marker, event_id, 'NX', 'PX', ARGV[3]) then
          redis.call('HSET', vk, 'v', 0, 'g', event_id, 'm', '1')
        else
          redis.call('HSET', vk, 'v', 0, 'g', event_id, 'm', '1', 'x', '1')
        end
        m, g = '1', event_id
      elseif m == '1' then
        -- Every increment of a partial renews its marker with the partial's own TTL, so the
        -- marker outlives the partial however long the migration runs, and one that was lost
        -- (expired, or not replicated before a failover) is written again.
        redis.call('SET', marker, event_id, 'PX', ARGV[3])
      end
      local v = redis.call('HINCRBY', vk, 'v', delta)
      redis.call('ZADD', pk, now_ms + pending_ms, event_id)
      redis.call('PEXPIRE', pk, pending_ms * 4)
      redis.call('PEXPIRE', vk, ARGV[3])
      local result = v .. ':' .. (m or '0') .. ':' .. (g or '')
      redis.call('SET', idem, result, 'PX', idem_ttl)
      out[#out + 1] = {1, result}
    end
  end
end
return {out, acks}
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
 * Read-only, for a batch of counters: KEYS are `value, pending` pairs; one reply per pair, {0} cold
 * (missing, or an expired pending entry), else {1, value, m, x, idle}. x = '1' when a migration
 * partial lost deltas (flagged, or deleted while its marker stays): a sum of old + new would miss
 * them. idle = 1 when no increment is pending (the value holds only acknowledged deltas), which a
 * pod-local cache requires: a pending entry that expires changes no key, so no invalidation would
 * tell the cache that its delta never became durable.
 */
const READ_MANY = `${NOW_MS}
local out = {}
for i = 1, #KEYS, 2 do
  local h = redis.call('HMGET', KEYS[i], 'v', 'm', 'x')
  if not h[1] or redis.call('ZCOUNT', KEYS[i + 1], '-inf', now_ms) > 0 then
    out[#out + 1] = {0, redis.call('EXISTS', 'ctrt' .. string.sub(KEYS[i], 4))}
  else
    out[#out + 1] = {1, h[1], h[2] or '0', h[3] or '0', 1 - redis.call('EXISTS', KEYS[i + 1])}
  end
end
return out
`;

/**
 * ARGV: value, gen, ttlMs. Warms a cold counter (SET NX semantics): writes only when the hash is
 * missing or stale (an expired pending entry, or a migration partial: a warm runs only where the
 * pod's map has the slot whole, so a partial there is left from a finished migration). Returns 1
 * filled, 0 already warm. The hash records when it was filled (w, this server's clock in ms): a
 * slot's mover does not trust a hash filled after the slot started to migrate, because its MySQL
 * snapshot may already hold deltas that pods wrote to the new shard's partial
 * (operators/countershard, mover).
 */
const FILL = `${NOW_MS}
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HGET', KEYS[1], 'm') ~= '1' then
  if redis.call('ZCOUNT', KEYS[2], '-inf', now_ms) == 0 then return 0 end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'g', ARGV[2], 'w', now_ms)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/** Reply of `ctrIncrAckMany` per increment: applied now, applied by an earlier call, or cold. */
export type IncrReply = { kind: 'cold' } | { kind: 'done'; applied: boolean; result: string };

/**
 * Reply of `ctrReadMany`, per counter. `lost`: a migration partial lost deltas (see READ_MANY); on
 * a migrating slot's new shard the sum of old + new would miss them.
 */
export type ReadReply =
  | { cold: true; lost: boolean }
  | { cold: false; value: number; partial: boolean; lost: boolean; idle: boolean };

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
  if (first < 0 || second < 0) throw new RedisReplyError('BADREPLY', 'ctrIncrAckMany: bad result');
  return {
    value: integer(result.slice(0, first), 'ctrIncrAckMany.value'),
    partial: result.slice(first + 1, second) === '1',
    gen: result.slice(second + 1),
  };
}

function text(value: unknown, what: string): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  throw new RedisReplyError('BADREPLY', `${what}: not a string`);
}

/** Reply of `ctrIncrAckMany`: per increment, and per ack whether the hash was still its generation. */
export interface IncrAckReply {
  increments: IncrReply[];
  acks: boolean[];
}

function parseIncrAckMany(reply: unknown): IncrAckReply {
  if (!Array.isArray(reply) || reply.length !== 2 || !Array.isArray(reply[0]) || !Array.isArray(reply[1]))
    throw new RedisReplyError('BADREPLY', 'ctrIncrAckMany: bad reply');
  return {
    increments: parseIncrements(reply[0] as unknown[]),
    acks: (reply[1] as unknown[]).map((r) => integer(r, 'ctrIncrAckMany.ack') === 1),
  };
}

function parseIncrements(reply: unknown[]): IncrReply[] {
  return reply.map((item: unknown): IncrReply => {
    if (!Array.isArray(item) || item.length === 0)
      throw new RedisReplyError('BADREPLY', 'ctrIncrAckMany: bad reply');
    const code = integer(item[0], 'ctrIncrAckMany');
    if (code === 2) return { kind: 'cold' };
    return { kind: 'done', applied: code === 1, result: text(item[1], 'ctrIncrAckMany.result') };
  });
}

function parseReadMany(reply: unknown): ReadReply[] {
  if (!Array.isArray(reply)) throw new RedisReplyError('BADREPLY', 'ctrReadMany: bad reply');
  return reply.map(parseRead);
}

function parseRead(reply: unknown): ReadReply {
  if (!Array.isArray(reply) || reply.length === 0)
    throw new RedisReplyError('BADREPLY', 'ctrReadMany: bad reply');
  if (integer(reply[0], 'ctrReadMany') === 0) return { cold: true, lost: String(reply[1]) === '1' };
  return {
    cold: false,
    value: integer(reply[1], 'ctrReadMany.value'),
    partial: String(reply[2]) === '1',
    lost: String(reply[3]) === '1',
    idle: String(reply[4]) === '1',
  };
}

/** The scripts, for `RedisShardClient.defineScripts`. */
export const COUNTER_SCRIPTS = {
  ctrIncrAckMany: { lua: INCR_ACK_MANY, numberOfKeys: { multipleOf: 1 }, parse: parseIncrAckMany },
  ctrUndo: idempotentScript(UNDO_BODY, 2),
  ctrReadMany: { lua: READ_MANY, numberOfKeys: { multipleOf: 2 }, parse: parseReadMany },
  ctrFill: { lua: FILL, numberOfKeys: 2, parse: (r: unknown) => integer(r, 'ctrFill') === 1 },
} satisfies Record<string, ScriptDefinition<unknown>>;
