/**
 * The pod-local read cache of post states (read-cache.ts, Redis CLIENT TRACKING) in two REAL like
 * processes ("pods") with the real writer: repeated reads are served without Redis; a like or an
 * unlike acknowledged by one pod is in the next read of the other, for the user who made it and
 * for another user; a change made directly in Redis is not served after Redis reported it; a
 * change still pending (its pod died before Kafka) is never cached, so once its entry expires the
 * read goes back to MySQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postKeys } from '../src/keys.js';
import { createTestContext, shardFor, sleep, waitFor, type Child, type TestContext } from './helpers.js';

let ctx: TestContext;
let podA: Child;
let podB: Child;

beforeAll(async () => {
  ctx = await createTestContext('readcache');
  await ctx.startWriter();
  const env = { LIKE_READ_CACHE_STALENESS_MS: '1000' };
  [podA, podB] = await Promise.all([ctx.startLike(env), ctx.startLike(env)]);
}, 60_000);
afterAll(async () => {
  await ctx?.close();
});

interface State {
  count: number;
  liked: boolean;
}

async function setLiked(pod: Child, user: string, post: string, liked: boolean): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${pod.httpPort}/v1/posts/${post}/like`, {
    method: liked ? 'PUT' : 'DELETE',
    headers: await ctx.auth(user),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { count: number }).count;
}

async function read(pod: Child, user: string, post: string): Promise<State> {
  const res = await fetch(`http://127.0.0.1:${pod.httpPort}/v1/posts/${post}/likes`, {
    headers: await ctx.auth(user),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  const body = (await res.json()) as State;
  return { count: body.count, liked: body.liked };
}

async function metricsOf(pod: Child): Promise<string> {
  return (await fetch(`http://127.0.0.1:${pod.metricsPort}/metrics`)).text();
}

/** `hyperscale_like_reads_total{source}` of a pod. */
async function reads(pod: Child, source: 'cache' | 'redis'): Promise<number> {
  const match = new RegExp(`^hyperscale_like_reads_total\\{[^}]*source="${source}"[^}]*\\} (\\d+)`, 'm').exec(
    await metricsOf(pod),
  );
  return match?.[1] === undefined ? 0 : Number(match[1]);
}

async function tracking(pod: Child): Promise<boolean> {
  const values = [...(await metricsOf(pod)).matchAll(/^hyperscale_redis_tracking_up\{[^}]*\} (\d+)/gm)].map(
    (m) => m[1],
  );
  return values.length > 0 && values.every((v) => v === '1');
}

describe('pod-local read cache of post states', () => {
  it('serves repeated reads without Redis, and every pod sees likes acknowledged by another', async () => {
    await waitFor(
      async () => (await tracking(podA)) && (await tracking(podB)),
      10_000,
      'tracking on both pods',
    );
    const post = ctx.post('cross');
    await setLiked(podA, 'carol', post, true);
    expect(await read(podB, 'dave', post)).toEqual({ count: 1, liked: false });

    const [cacheBefore, redisBefore] = [await reads(podB, 'cache'), await reads(podB, 'redis')];
    for (let i = 0; i < 100; i += 1)
      expect(await read(podB, 'dave', post)).toEqual({ count: 1, liked: false });
    expect((await reads(podB, 'cache')) - cacheBefore).toBeGreaterThanOrEqual(99);
    expect((await reads(podB, 'redis')) - redisBefore).toBeLessThanOrEqual(1);

    // Dave toggles through alternating pods; each answer is followed by reads in both pods, by
    // Dave and by Carol (whose entry holds the count only through Dave's change).
    for (let i = 0; i < 100; i += 1) {
      const liked = i % 2 === 0;
      const count = await setLiked(i % 4 < 2 ? podA : podB, 'dave', post, liked);
      expect(count).toBe(liked ? 2 : 1);
      for (const pod of [podA, podB]) {
        expect(await read(pod, 'dave', post)).toEqual({ count, liked });
        expect(await read(pod, 'carol', post)).toEqual({ count, liked: true });
      }
    }
    await ctx.waitDrained();
    expect((await ctx.mysqlState(post)).users).toEqual(['carol']);
  });

  it('does not serve a state after Redis reported it changed, whoever changed it', async () => {
    const post = ctx.post('direct');
    await setLiked(podA, 'erin', post, true);
    for (let i = 0; i < 3; i += 1) expect(await read(podB, 'erin', post)).toEqual({ count: 1, liked: true });
    const redis = shardFor(ctx.shards, post).redis;
    const keys = postKeys(post);
    await redis.multi().srem(keys.users, 'erin').set(keys.count, '0', 'KEEPTTL').exec();
    await waitFor(
      async () =>
        JSON.stringify(await read(podB, 'erin', post)) === JSON.stringify({ count: 0, liked: false }),
      500,
      'the changed state through pod B',
    );
    await redis.multi().sadd(keys.users, 'erin').set(keys.count, '1', 'KEEPTTL').exec();
    await waitFor(
      async () =>
        JSON.stringify(await read(podB, 'erin', post)) === JSON.stringify({ count: 1, liked: true }),
      500,
      'the restored state through pod B',
    );
  });

  it('never caches a state holding a pending change: once the entry expires, MySQL answers', async () => {
    const post = ctx.post('pending');
    await setLiked(podA, 'frank', post, true);
    await ctx.waitDrained();
    expect(await read(podB, 'grace', post)).toEqual({ count: 1, liked: false });
    // What a pod killed between Redis and Kafka leaves: the change in the keys, its entry pending.
    const keys = postKeys(post);
    const redis = shardFor(ctx.shards, post).redis;
    const deadline = Date.now() + 400;
    await redis
      .multi()
      .sadd(keys.users, 'grace')
      .incr(keys.count)
      .zadd(keys.pending, deadline, 'lost')
      .exec();
    await waitFor(async () => (await read(podB, 'grace', post)).liked, 300, 'the pending change in reads');
    const cached = await reads(podB, 'cache');
    expect(await read(podB, 'grace', post)).toEqual({ count: 2, liked: true });
    expect(await reads(podB, 'cache')).toBe(cached);
    await sleep(Math.max(0, deadline - Date.now()) + 100);
    // Nothing in Redis changed when the entry expired; only a read that asks Redis sees it.
    expect(await read(podB, 'grace', post)).toEqual({ count: 1, liked: false });
  });
});
