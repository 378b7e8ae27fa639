import type { Redis, RedisKey } from 'ioredis';
import { toRedisError } from './errors.js';

/** One Lua script: its source, how many of its arguments are keys, and how to read its reply. */
export interface ScriptDefinition<R = unknown> {
  lua: string;
  /** Exact number of keys every call passes (KEYS[1..n]); checked before sending. */
  numberOfKeys: number;
  /** Turns the raw reply into the caller's type; may throw to reject a malformed reply. */
  parse?: (reply: unknown) => R;
  /** Declares the script read-only (Redis 7 `EVAL_RO`-compatible flag for ioredis routing). */
  readOnly?: boolean;
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

type RawScriptFn = (...args: (RedisKey | ScriptArg)[]) => Promise<unknown>;

const registered = new WeakMap<Redis, Map<string, string>>();

/**
 * Registers Lua scripts on `client` with ioredis `defineCommand` and returns typed invokers.
 * ioredis sends EVAL (full source) the first time a script runs on a connection and EVALSHA after,
 * and falls back to EVAL on a NOSCRIPT reply — so scripts keep working on a freshly promoted master
 * (whose script cache is empty), after `SCRIPT FLUSH`, and across reconnects, with no manual
 * `SCRIPT LOAD`.
 *
 * Registering the same name again with the same source is a no-op (several modules may share a
 * script); a different source under a taken name, or a name that collides with an ioredis method
 * (`get`, `incr`...), throws at startup rather than silently shadowing a command.
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
      if (name in client || `${name}Buffer` in client) {
        throw new TypeError(`Script name "${name}" collides with an existing ioredis method`);
      }
      if (!Number.isInteger(definition.numberOfKeys) || definition.numberOfKeys < 0) {
        throw new RangeError(`Script ${name}: numberOfKeys must be a non-negative integer`);
      }
      client.defineCommand(name, {
        lua: definition.lua,
        numberOfKeys: definition.numberOfKeys,
        ...(definition.readOnly ? { readOnly: true } : {}),
      });
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
  return async (keys, args = []) => {
    if (keys.length !== definition.numberOfKeys) {
      throw new RangeError(`Script ${name} takes ${definition.numberOfKeys} keys, got ${keys.length}`);
    }
    const fn = (client as unknown as Record<string, RawScriptFn>)[name];
    if (fn === undefined) throw new Error(`Script ${name} is not registered on this client`);
    let reply: unknown;
    try {
      reply = await fn.call(client, ...keys, ...args);
    } catch (err) {
      throw toRedisError(err, shard);
    }
    return parse(reply);
  };
}
