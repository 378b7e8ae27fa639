import { RedisReplyError } from './errors.js';
import type { ScriptDefinition } from './scripts.js';

/** Outcome of an idempotent script call. */
export interface IdempotentResult {
  /** True when this call applied the change; false when the request id had already been applied. */
  applied: boolean;
  /**
   * What the body returned when the change was applied — by this call or the earlier one. Numbers
   * arrive as decimal integer strings, tables as JSON (cjson), booleans as `true`/`false`.
   */
  result: string;
}

const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * The Redis key recording that `requestId` was applied, in the same hash slot as the data it
 * guards (`hashTag` is the tag of the data keys, e.g. the post id or the counter slot). Sharing the
 * slot keeps the script valid on Redis Cluster and makes the record and the data fail over, expire
 * and migrate together.
 * @throws RangeError when `requestId` is not 1–128 characters of `[A-Za-z0-9_.:-]`.
 */
export function idempotencyKey(hashTag: string, requestId: string): string {
  if (!REQUEST_ID.test(requestId))
    throw new RangeError('requestId must be 1-128 characters of [A-Za-z0-9_.:-]');
  return `idem:{${hashTag}}:${requestId}`;
}

/**
 * The idempotent-apply pattern as Lua, around a caller's `body`:
 *
 *   GET KEYS[1]            -- the request id's record
 *   if present: return {0, recorded result}   (nothing applied)
 *   run body               -- the actual change; sees KEYS[2..] and ARGV[2..]
 *   SET KEYS[1] result PX ARGV[1]
 *   return {1, result}
 *
 * The whole script is atomic, so check + apply + record cannot interleave with a duplicate. This is
 * the platform's answer to ioredis' `autoResendUnfulfilledCommands` (an in-flight script re-sent
 * after a reconnect), to client retries after a timeout, and to a retry after a failover.
 *
 * Contract for `body`: Lua statements ending in `return <value>` (string, number, boolean or
 * table; nil is stored as "", a status reply as its text). A returned `redis.error_reply` is passed
 * through and records nothing. It may read KEYS/ARGV directly: KEYS[1] and ARGV[1] belong to the
 * wrapper. It must validate BEFORE its first write and signal errors with
 * `return redis.error_reply(...)`/`error(...)` before writing, since Redis does not roll back a
 * script that fails half-way (and no record is written when it fails). The record lives for the
 * TTL (ARGV[1], milliseconds): choose it longer than any retry or resend window (minutes).
 */
export function idempotentLua(body: string): string {
  return `local idem_key = KEYS[1]
local idem_ttl = tonumber(ARGV[1])
if not idem_ttl or idem_ttl < 1 or idem_ttl ~= math.floor(idem_ttl) then
  return redis.error_reply('ERR idempotency ttl (ARGV[1]) must be a positive integer of milliseconds')
end
local idem_prev = redis.call('GET', idem_key)
if idem_prev then
  return {0, idem_prev}
end
local function idem_apply()
${body}
end
local idem_result = idem_apply()
local idem_type = type(idem_result)
if idem_type == 'table' and idem_result.err then
  return idem_result
elseif idem_type == 'table' and idem_result.ok then
  idem_result = idem_result.ok
elseif idem_type == 'number' then
  idem_result = string.format('%.0f', idem_result)
elseif idem_type == 'table' then
  idem_result = cjson.encode(idem_result)
elseif idem_type == 'boolean' then
  idem_result = tostring(idem_result)
elseif idem_type == 'nil' then
  idem_result = ''
end
redis.call('SET', idem_key, idem_result, 'PX', idem_ttl)
return {1, idem_result}
`;
}

/**
 * A {@link ScriptDefinition} for `defineScripts` built from {@link idempotentLua}. Call it with
 * keys `[idempotencyKey(tag, requestId), ...dataKeys]` and args `[ttlMs, ...bodyArgs]`;
 * `numberOfDataKeys` counts the data keys only (the record key is added).
 */
export function idempotentScript(
  body: string,
  numberOfDataKeys: number,
): ScriptDefinition<IdempotentResult> & { numberOfKeys: number } {
  return { lua: idempotentLua(body), numberOfKeys: numberOfDataKeys + 1, parse: parseIdempotentReply };
}

/** Reads the `{applied, result}` reply of an {@link idempotentLua} script. */
export function parseIdempotentReply(reply: unknown): IdempotentResult {
  if (Array.isArray(reply) && reply.length === 2 && (reply[0] === 0 || reply[0] === 1)) {
    const result: unknown = reply[1];
    if (typeof result === 'string') return { applied: reply[0] === 1, result };
    if (Buffer.isBuffer(result)) return { applied: reply[0] === 1, result: result.toString('utf8') };
  }
  throw new RedisReplyError('BADREPLY', 'Idempotent script returned an unexpected reply shape');
}
