import type { Redis } from 'ioredis';
import type { ReadinessCheck } from '../health.js';
import { RedisTimeoutError, RedisUnavailableError, toRedisError } from './errors.js';

/**
 * PINGs `client` and resolves with the round trip in milliseconds, or rejects within `timeoutMs`
 * with a typed error: `RedisUnavailableError('DISCONNECTED')` at once when the connection is not
 * ready (no point waiting), `RedisTimeoutError` when no PONG came in time (frozen server), or the
 * mapped error of the PING itself. Never leaves a timer behind.
 */
export async function pingWithTimeout(client: Redis, timeoutMs: number, shard?: string): Promise<number> {
  if (client.status !== 'ready') {
    throw new RedisUnavailableError('DISCONNECTED', `Redis is not connected (status ${client.status})`, {
      shard,
    });
  }
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new RedisTimeoutError(`Redis PING got no reply within ${timeoutMs} ms`, { shard })),
      timeoutMs,
    );
  });
  try {
    await Promise.race([client.ping(), timeout]);
    return performance.now() - started;
  } catch (err) {
    throw toRedisError(err, shard);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A readiness check for `Health.addReadinessCheck`: ready while a PING to the master answers within
 * `timeoutMs`; otherwise it throws, and the error message becomes the check's reason. A shard whose
 * breaker can serve from a fallback may still prefer to stay ready — register this only where Redis
 * is required to serve.
 */
export function redisReadinessCheck(
  client: Redis,
  options: { timeoutMs?: number; shard?: string } = {},
): ReadinessCheck {
  const timeoutMs = options.timeoutMs ?? 500;
  return async () => {
    await pingWithTimeout(client, timeoutMs, options.shard);
  };
}
