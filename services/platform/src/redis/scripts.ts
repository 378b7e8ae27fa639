import { createHash } from 'node:crypto';
import type { Redis, RedisKey } from 'ioredis';
import { toRedisError } from './errors.js';

/** One Lua script: its source, how many of its arguments are keys, and how to read its reply. */
export interface ScriptDefinition<R = unknown> {
  lua: string;
  /**
   * Exact number of keys every call passes (KEYS[1..n]), or `{ multipleOf: k }` for a script that
   * takes one or more groups of k keys (a batch); checked before sending.
   */
  numberOfKeys: number | { multipleOf: number };
  /** Turns the raw reply into the caller's type; may throw to reject a malformed reply. */
  parse?: (reply: unknown) => R;
}

/** Argument types a script call accepts after its keys. */
export type ScriptArg = string | number | Buffer;

/** Calls one registered script; rejects with a typed `RedisError`. */
export type ScriptInvoker<R> = (keys: readonly RedisKey[], args?: readonly ScriptArg[]) => Promise<R>;

type ResultOf<D> = D extends ScriptDefinition<infer R> ? R : unknown;

/** Invokers keyed like the definitions passed to {@link defineScripts}. */
export type ScriptInvokers<D extends Record<string, ScriptDefinition<unknown>>> = {
  readonly [K in keyof D]: ScriptInvoker<ResultOf<D[K]>>;
};

const registered = new WeakMap<Redis, Map<string, string>>();

/**
 * Returns typed invokers for Lua scripts. Each call is an EVALSHA (a 40-byte digest, not the
 * source), falling back to EVAL on a NOSCRIPT reply — so scripts keep working on a freshly promoted
 * master (whose script cache is empty), after `SCRIPT FLUSH`, and across reconnects, with no manual
 * `SCRIPT LOAD`. (ioredis' own `defineCommand` sends the whole source as EVAL on every call made
 * through auto-pipelining, because it remembers "loaded" per write target and each pipeline is a
 * new one: measured as the largest single cost of a like request before this.)
 *
 * Registering the same name again with the same source is a no-op (several modules may share a
 * script); a different source under a taken name throws at startup.
 * Errors: invokers reject with `RedisError` subclasses (`toRedisError`), tagged with `shard`.
 */
export function defineScripts<D extends Record<string, ScriptDefinition<unknown>>>(
  client: Redis,
  definitions: D,
  options: { shard?: string } = {},
): ScriptInvokers<D> {
  let names = registered.get(client);
  if (names === undefined) {
    names = new Map();
    registered.set(client, names);
  }
  const invokers: Record<string, ScriptInvoker<unknown>> = {};
  for (const [name, definition] of Object.entries(definitions)) {
    const known = names.get(name);
    if (known === undefined) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
        throw new TypeError(`Script name "${name}" is not an identifier`);
      const count = definition.numberOfKeys;
      const valid =
        typeof count === 'number'
          ? Number.isInteger(count) && count >= 0
          : Number.isInteger(count.multipleOf) && count.multipleOf >= 1;
      if (!valid) {
        throw new RangeError(
          `Script ${name}: numberOfKeys must be a non-negative integer or { multipleOf: k ≥ 1 }`,
        );
      }
      names.set(name, definition.lua);
    } else if (known !== definition.lua) {
      throw new TypeError(`Script name "${name}" is already registered with a different source`);
    }
    invokers[name] = makeInvoker(client, name, definition, options.shard);
  }
  return invokers as ScriptInvokers<D>;
}

function makeInvoker<R>(
  client: Redis,
  name: string,
  definition: ScriptDefinition<R>,
  shard: string | undefined,
): ScriptInvoker<R> {
  const parse = definition.parse ?? ((reply: unknown) => reply as R);
  const sha = createHash('sha1').update(definition.lua).digest('hex');
  const count = definition.numberOfKeys;
  const keysFit =
    typeof count === 'number'
      ? (n: number) => n === count
      : (n: number) => n > 0 && n % count.multipleOf === 0;
  const expected = typeof count === 'number' ? String(count) : `a positive multiple of ${count.multipleOf}`;
  return async (keys, args = []) => {
    if (!keysFit(keys.length)) {
      throw new RangeError(`Script ${name} takes ${expected} keys, got ${keys.length}`);
    }
    let reply: unknown;
    try {
      try {
        reply = await client.evalsha(sha, keys.length, ...keys, ...args);
      } catch (err) {
        // NOSCRIPT means nothing ran: sending the source is safe, and caches it for next time.
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        reply = await client.eval(definition.lua, keys.length, ...keys, ...args);
      }
    } catch (err) {
      throw toRedisError(err, shard);
    }
    return parse(reply);
  };
}
