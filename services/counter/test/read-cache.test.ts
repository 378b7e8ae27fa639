/**
 * The pod-local read cache (read-cache.ts, Redis CLIENT TRACKING) in two REAL counter processes
 * ("pods") with the real writer: repeated reads are served without Redis; an increment
 * acknowledged by one pod is in the next read of the other; a value changed directly in Redis is
 * not served after Redis reported it; an increment still pending (its pod died before Kafka) is
 * never cached, so when its entry expires the read goes back to MySQL; the pod whose invalidation
 * connection was killed serves the changes made meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { counterKeys } from '../src/keys.js';
import { createTestContext, ownerOf, sleep, waitFor, type Child, type TestContext } from './helpers.js';

let ctx: TestContext;
let podA: Child;
let podB: Child;
let auth: { authorization: string };

const STALENESS_MS = 1_000;

beforeAll(async () => {
  ctx = await createTestContext('readcache');
  await ctx.startWriter();
  const env = { COUNTER_READ_CACHE_STALENESS_MS: String(STALENESS_MS) };
  [podA, podB] = await Promise.all([ctx.startCounter(env), ctx.startCounter(env)]);
  auth = await ctx.auth();
}, 60_000);
afterAll(async () => {
  await ctx?.close();
});

async function increment(pod: Child, name: string, delta = 1): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${pod.httpPort}/v1/counters/${name}/increment`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ delta }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { value: number }).value;
}

async function read(pod: Child, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${pod.httpPort}/v1/counters/${name}`, { headers: auth });
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { value: number }).value;
}

/** `hyperscale_counter_reads_total{source}` of a pod. */
async function reads(pod: Child, source: 'cache' | 'redis' | 'mysql'): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${pod.metricsPort}/metrics`)).text();
  const match = new RegExp(
    `^hyperscale_counter_reads_total\\{[^}]*source="${source}"[^}]*\\} (\\d+)`,
    'm',
  ).exec(text);
  return match?.[1] === undefined ? 0 : Number(match[1]);
}

/** The pod's tracking connections are up on every shard (`hyperscale_redis_tracking_up`). */
async function tracking(pod: Child): Promise<boolean> {
  const text = await (await fetch(`http://127.0.0.1:${pod.metricsPort}/metrics`)).text();
  const values = [...text.matchAll(/^hyperscale_redis_tracking_up\{[^}]*\} (\d+)/gm)].map((m) => m[1]);
  return values.length > 0 && values.every((v) => v === '1');
}

describe('pod-local read cache', () => {
  it('serves repeated reads without Redis, and reads in one pod see increments acknowledged by another', async () => {
    await waitFor(
      async () => (await tracking(podA)) && (await tracking(podB)),
      10_000,
      'tracking on both pods',
    );
    const name = ctx.name('cross');
    let expected = await increment(podA, name, 5);
    expect(await read(podB, name)).toBe(expected);

    const [cacheBefore, redisBefore] = [await reads(podB, 'cache'), await reads(podB, 'redis')];
    for (let i = 0; i < 100; i += 1) expect(await read(podB, name)).toBe(expected);
    expect((await reads(podB, 'cache')) - cacheBefore).toBeGreaterThanOrEqual(99);
    expect((await reads(podB, 'redis')) - redisBefore).toBeLessThanOrEqual(1);

    // Each increment through A invalidates B's entry before A answers (A awaits Kafka after Redis).
    for (let i = 0; i < 200; i += 1) {
      expected = await increment(i % 2 === 0 ? podA : podB, name);
      expect(await read(podB, name)).toBe(expected);
      expect(await read(podA, name)).toBe(expected);
    }
    await ctx.waitDrained();
    expect(await ctx.mysqlValue(name)).toBe(expected);
  });

  it('does not serve a value after Redis reported it changed, whoever changed it', async () => {
    const name = ctx.name('direct');
    const value = await increment(podA, name, 7);
    for (let i = 0; i < 3; i += 1) expect(await read(podB, name)).toBe(value);
    const redis = ctx.shard(ownerOf(ctx, name)).redis;
    await redis.hset(counterKeys(name).value, 'v', value + 1_000);
    await waitFor(
      async () => (await read(podB, name)) === value + 1_000,
      500,
      'the changed value through pod B',
    );
    // Put it back the same way: the invalidation is what makes B drop the entry it read since.
    await redis.hset(counterKeys(name).value, 'v', value);
    await waitFor(async () => (await read(podB, name)) === value, 500, 'the restored value through pod B');
  });

  it('never caches a value holding a pending increment: once the entry expires, MySQL answers', async () => {
    const name = ctx.name('pending');
    const value = await increment(podA, name, 3);
    await ctx.waitDrained();
    expect(await read(podB, name)).toBe(value);
    // What a pod killed between Redis and Kafka leaves: the delta in the hash, its entry pending.
    const keys = counterKeys(name);
    const redis = ctx.shard(ownerOf(ctx, name)).redis;
    const deadline = Date.now() + 400;
    await redis.multi().hincrby(keys.value, 'v', 50).zadd(keys.pending, deadline, 'lost-event').exec();
    await waitFor(async () => (await read(podB, name)) === value + 50, 300, 'the pending delta in reads');
    const cached = await reads(podB, 'cache');
    expect(await read(podB, name)).toBe(value + 50);
    expect(await reads(podB, 'cache')).toBe(cached);
    await sleep(Math.max(0, deadline - Date.now()) + 100);
    // Nothing in Redis changed when the entry expired; only a read that asks Redis sees it.
    expect(await read(podB, name)).toBe(value);
    expect(await ctx.mysqlValue(name)).toBe(value);
  });

  it('a pod whose invalidation connection was killed serves the changes made while it was gone', async () => {
    const name = ctx.name('killed');
    const value = await increment(podA, name, 11);
    for (let i = 0; i < 3; i += 1) expect(await read(podB, name)).toBe(value);
    const redis = ctx.shard(ownerOf(ctx, name)).redis;
    const list = String(await redis.client('LIST'));
    // Every pod's invalidation connections on this master; only B read the counter, kill them all.
    const ids = [...list.matchAll(/^id=(\d+) .*name=(\S*:tracking:invalidations) /gm)].map((m) => m[1]);
    expect(ids.length).toBeGreaterThanOrEqual(2);
    await redis
      .multi(ids.map((id) => ['client', 'KILL', 'ID', String(id)]))
      .hset(counterKeys(name).value, 'v', value + 500)
      .exec();
    expect(await read(podB, name)).toBe(value + 500);
    await waitFor(async () => (await tracking(podB)) && (await tracking(podA)), 10_000, 'tracking back on');
    for (let i = 0; i < 3; i += 1) expect(await read(podB, name)).toBe(value + 500);
    await redis.hset(counterKeys(name).value, 'v', value);
    await waitFor(
      async () => (await read(podB, name)) === value,
      500,
      'the invalidation on the new connection',
    );
  });
});
