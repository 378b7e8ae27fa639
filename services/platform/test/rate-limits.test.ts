/**
 * Rate limits counted in memory and shared through Redis in batches (real Redis): exact within a
 * pod, all pods' counts after a sync, the limit held on local counts while Redis is unreachable,
 * windows that roll over, a bounded key table, and the 429 problem through a Fastify app.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BatchedWindowCounter,
  createBaseApp,
  createRedisClient,
  installRateLimits,
  waitForRedisReady,
} from '../src/index.js';
import { freePort } from '../../../hack/testing/ports.js';
import { currentRedisMaster } from '../../../hack/testing/stack-control.js';

const logger = pino({ level: 'silent' });
const WINDOW_MS = 60_000;

/** Waits out the end of the current window when it is close, so a test's requests share one window. */
async function awayFromWindowEnd(): Promise<void> {
  const left = WINDOW_MS - (Date.now() % WINDOW_MS);
  if (left < 2_000) await new Promise((resolve) => setTimeout(resolve, left + 10));
}

describe('BatchedWindowCounter (real Redis)', () => {
  let redis: Redis;
  const prefix = `hs-test-rl-${randomBytes(4).toString('hex')}:`;
  const counters: BatchedWindowCounter[] = [];
  const counter = (options: Partial<ConstructorParameters<typeof BatchedWindowCounter>[0]> = {}) => {
    // A long interval: the tests decide when to sync.
    const made = new BatchedWindowCounter({ redis, prefix, syncIntervalMs: 60_000, logger, ...options });
    counters.push(made);
    return made;
  };

  beforeAll(async () => {
    const master = await currentRedisMaster('shard-0');
    redis = createRedisClient({ host: master.host, port: master.port, commandTimeoutMs: 500, logger });
    await waitForRedisReady(redis, 5_000);
  });
  afterAll(async () => {
    await Promise.all(counters.map((made) => made.close()));
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('counts exactly within a pod, without a Redis call per request', async () => {
    const pod = counter();
    const now = Date.now();
    const before = Number((await redis.info('stats')).match(/total_commands_processed:(\d+)/)?.[1]);
    const counts = Array.from({ length: 5 }, () => pod.incr('user:a', WINDOW_MS, now).current);
    const after = Number((await redis.info('stats')).match(/total_commands_processed:(\d+)/)?.[1]);
    expect(counts).toEqual([1, 2, 3, 4, 5]);
    // Only the two INFO calls themselves reached Redis.
    expect(after - before).toBeLessThanOrEqual(2);
  });

  it('adds every pod’s counts in Redis and sees the others’ after a sync', async () => {
    const now = Date.now();
    const [a, b] = [counter(), counter()];
    for (let i = 0; i < 3; i += 1) a.incr('user:shared', WINDOW_MS, now);
    for (let i = 0; i < 4; i += 1) b.incr('user:shared', WINDOW_MS, now);
    await a.flush();
    await b.flush();
    const window = Math.floor(now / WINDOW_MS);
    expect(Number(await redis.get(`${prefix}user:shared:${window}`))).toBe(7);
    const ttl = await redis.pttl(`${prefix}user:shared:${window}`);
    expect(ttl).toBeGreaterThan(WINDOW_MS);
    expect(ttl).toBeLessThanOrEqual(2 * WINDOW_MS);
    // b synced last and knows the total; a learns it on its next sync.
    expect(b.incr('user:shared', WINDOW_MS, now).current).toBe(8);
    expect(a.incr('user:shared', WINDOW_MS, now).current).toBe(4);
    await a.flush();
    await b.flush();
    expect(Number(await redis.get(`${prefix}user:shared:${window}`))).toBe(9);
    // a synced before b's last request reached Redis: it knew 8, and counts on from there.
    expect(a.incr('user:shared', WINDOW_MS, now).current).toBe(9);
  });

  it('keeps counting locally when Redis is unreachable, and reports the failed syncs', async () => {
    const registry = new Registry();
    const dead = createRedisClient({
      host: '127.0.0.1',
      port: await freePort(),
      commandTimeoutMs: 100,
      connectTimeoutMs: 100,
      logger,
    });
    try {
      const pod = counter({ redis: dead, registry });
      const now = Date.now();
      for (let i = 0; i < 3; i += 1) pod.incr('user:offline', WINDOW_MS, now);
      await pod.flush();
      expect(pod.incr('user:offline', WINDOW_MS, now).current).toBe(4);
      const failed = (
        await registry.getSingleMetric('hyperscale_rate_limit_syncs_total')?.get()
      )?.values.find((value) => value.labels['outcome'] === 'failed');
      expect(failed?.value).toBe(1);
    } finally {
      dead.disconnect();
    }
  });

  it('starts each window from zero', () => {
    const pod = counter();
    const start = Math.floor(Date.now() / 1_000) * 1_000;
    expect(pod.incr('user:w', 1_000, start).current).toBe(1);
    expect(pod.incr('user:w', 1_000, start + 999)).toEqual({ current: 2, ttl: 1 });
    expect(pod.incr('user:w', 1_000, start + 1_000)).toEqual({ current: 1, ttl: 1_000 });
  });

  it('forgets keys whose window ended (also without Redis)', async () => {
    const registry = new Registry();
    const pod = counter({ redis: undefined, syncIntervalMs: 20, registry });
    pod.incr('user:short', 100);
    const keys = async () =>
      (await registry.getSingleMetric('hyperscale_rate_limit_keys')?.get())?.values[0]?.value;
    expect(await keys()).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(await keys()).toBe(0);
  });

  it('forgets the least recently counted keys beyond maxKeys', async () => {
    const registry = new Registry();
    const pod = counter({ maxKeys: 3, registry });
    const now = Date.now();
    for (const key of ['k1', 'k2', 'k3', 'k4', 'k5']) pod.incr(key, WINDOW_MS, now);
    const keys = (await registry.getSingleMetric('hyperscale_rate_limit_keys')?.get())?.values[0]?.value;
    expect(keys).toBe(3);
    // k5 is remembered (its second request), k1 was forgotten (counts from 1 again).
    expect(pod.incr('k5', WINDOW_MS, now).current).toBe(2);
    expect(pod.incr('k1', WINDOW_MS, now).current).toBe(1);
    // The least recently COUNTED key goes first, not the first inserted: a is counted again
    // before d arrives, so b is forgotten and a keeps its count.
    const lru = counter({ maxKeys: 3 });
    for (const key of ['a', 'b', 'c', 'a', 'd']) lru.incr(key, WINDOW_MS, now);
    expect(lru.incr('a', WINDOW_MS, now).current).toBe(3);
    expect(lru.incr('b', WINDOW_MS, now).current).toBe(1);
  });
});

describe('installRateLimits (Fastify, real Redis)', () => {
  it('answers 429 problem+json with Retry-After over the per-IP and per-user limits', async () => {
    const master = await currentRedisMaster('shard-0');
    const redis = createRedisClient({ host: master.host, port: master.port, logger });
    await waitForRedisReady(redis, 5_000);
    const app = await createBaseApp({ logger, registry: new Registry() });
    const prefix = `hs-test-rl-app-${randomBytes(4).toString('hex')}:`;
    try {
      const limitUsers = installRateLimits(app, {
        limits: { perIp: 4, perUser: 2, windowMs: WINDOW_MS, syncMs: 20 },
        prefix,
        redis,
        logger,
      });
      await app.register(async (api) => {
        api.addHook('onRequest', async (request) => {
          request.principal = { userId: String(request.headers['x-user']), scopes: new Set() };
        });
        limitUsers(api);
        api.get('/v1/thing', async () => ({ ok: true }));
      });
      app.get('/public', async () => ({ ok: true }));

      await awayFromWindowEnd();
      const get = (url: string, user = 'u1') =>
        app.inject({ method: 'GET', url, headers: { 'x-user': user } });
      const userStatuses = [];
      for (let i = 0; i < 3; i += 1) userStatuses.push((await get('/v1/thing')).statusCode);
      expect(userStatuses).toEqual([200, 200, 429]);
      const limited = await get('/v1/thing');
      expect(limited.statusCode).toBe(429);
      expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect(limited.headers['x-ratelimit-remaining']).toBe('0');
      // The IP has now made 4 requests: the next one is over the per-IP limit whoever asks.
      expect((await get('/public', 'u2')).statusCode).toBe(429);
      // The counts reached Redis (the sync runs every 20 ms).
      await new Promise((resolve) => setTimeout(resolve, 100));
      const window = Math.floor(Date.now() / WINDOW_MS);
      expect(Number(await redis.get(`${prefix}user:u1:${window}`))).toBe(4);
      expect(Number(await redis.get(`${prefix}ip:127.0.0.1:${window}`))).toBe(5);
    } finally {
      await app.close();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });
});
