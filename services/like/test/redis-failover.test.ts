/**
 * A Redis shard primary killed (SIGKILL) in the middle of a like load: requests keep being
 * answered (2xx through Redis or the MySQL path, some may be 503), every 2xx is in MySQL, the
 * shard's keys are invalidated after Sentinel's +switch-master, and once the writer drained,
 * Redis equals MySQL for every post. The killed server is restarted and the roles failed back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  currentRedisMaster,
  failbackRedis,
  isHealthy,
  stack,
  startServer,
  stopServer,
} from '../../../hack/testing/stack-control.js';
import { shardIndexOf } from '../src/keys.js';
import { createTestContext, metricValue, sleep, waitFor, type Child, type TestContext } from './helpers.js';

let ctx: TestContext;
let writer: Child;

async function allRedisHealthy(): Promise<boolean> {
  const ports = stack.redis.shards.flatMap((s) => s.ports);
  return (await Promise.all(ports.map((p) => isHealthy(`redis-${p}`)))).every(Boolean);
}

beforeAll(async () => {
  ctx = await createTestContext('redis-failover');
  writer = await ctx.startWriter();
});

afterAll(async () => {
  for (const port of stack.redis.shards.flatMap((s) => s.ports)) {
    if (!(await isHealthy(`redis-${port}`))) await startServer(`redis-${port}`).catch(() => undefined);
  }
  await failbackRedis().catch(() => undefined);
  await waitFor(allRedisHealthy, 60_000, 'healthy Redis').catch(() => undefined);
  await writer?.stop();
  await ctx?.close();
});

describe('Redis primary killed during load', () => {
  it('keeps answering, loses no 2xx, and Redis converges to MySQL', async () => {
    const posts = Array.from({ length: 24 }, (_, i) => ctx.post(`f${i}`));
    const onShard0 = posts.filter((p) => shardIndexOf(p, 2) === 0).length;
    expect(onShard0).toBeGreaterThan(0);
    expect(onShard0).toBeLessThan(posts.length);
    for (const post of posts) {
      const res = await ctx.app.inject({
        method: 'PUT',
        url: `/v1/posts/${post}/like`,
        headers: await ctx.auth('seed'),
      });
      expect(res.statusCode).toBe(200);
    }

    const master = await currentRedisMaster('shard-0');
    const victim = `redis-${master.port}`;
    const acknowledged: { post: string; user: string }[] = [];
    const statuses = new Map<number, number>();
    let n = 0;
    let stop = false;
    const perSecond: number[] = [];
    let lastOk = 0;
    const ticker = setInterval(() => {
      perSecond.push(acknowledged.length - lastOk);
      lastOk = acknowledged.length;
    }, 1_000);
    let killedAt = 0;
    const load = Promise.all(
      Array.from({ length: 24 }, async () => {
        while (!stop) {
          const i = n++;
          const post = posts[i % posts.length]!;
          const user = `fu-${i}`;
          const res = await ctx.app.inject({
            method: 'PUT',
            url: `/v1/posts/${post}/like`,
            headers: await ctx.auth(user),
          });
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          if (res.statusCode === 200) acknowledged.push({ post, user });
          else expect(res.statusCode).toBe(503);
        }
      }),
    );
    try {
      await sleep(2_000);
      killedAt = performance.now();
      await stopServer(victim, 'KILL');
      await waitFor(
        async () =>
          (await metricValue(ctx.registry, 'hyperscale_redis_master_switches_total', { shard: 'shard-0' })) >
          0,
        20_000,
        'the master switch',
      ).catch(() => undefined);
      const switchedAfter = (performance.now() - killedAt) / 1000;
      await sleep(4_000);
      stop = true;
      await load;
      clearInterval(ticker);
      console.log(
        `redis failover: statuses ${JSON.stringify(Object.fromEntries(statuses))}, ok per second ${JSON.stringify(perSecond)}, ` +
          `master switch seen ${switchedAfter.toFixed(1)} s after the kill; fallbacks ${await metricValue(ctx.registry, 'hyperscale_like_fallbacks_total', { reason: 'redis_unavailable' })}, ` +
          `direct writes ${await metricValue(ctx.registry, 'hyperscale_like_writes_total', { path: 'mysql_direct' })}`,
      );
    } finally {
      stop = true;
      clearInterval(ticker);
      await load.catch(() => undefined);
      await startServer(victim);
    }
    expect(statuses.get(200) ?? 0).toBeGreaterThan(100);
    expect(
      await metricValue(ctx.registry, 'hyperscale_like_invalidations_total', { reason: 'master_switch' }),
    ).toBeGreaterThan(0);

    await ctx.waitDrained(90_000);
    await waitFor(
      () => Object.values(ctx.store.pendingRepairs()).every((r) => r.dirty === 0 && !r.invalidateAll),
      30_000,
      'deferred invalidations',
    );
    // Every 2xx is in MySQL.
    const byPost = new Map<string, Set<string>>();
    for (const { post, user } of acknowledged) {
      if (!byPost.has(post)) byPost.set(post, new Set(['seed']));
      byPost.get(post)!.add(user);
    }
    for (const post of posts) {
      const mysql = await ctx.mysqlState(post);
      const missing = [...(byPost.get(post) ?? [])].filter((u) => !mysql.users.includes(u));
      expect(missing, `acknowledged likes missing from MySQL for ${post}`).toEqual([]);
      expect(mysql.count).toBe(mysql.rows);
      // Redis (after a read, warming if needed) equals MySQL.
      const read = await ctx.app.inject({
        method: 'GET',
        url: `/v1/posts/${post}/likes`,
        headers: await ctx.auth('seed'),
      });
      expect(read.json()).toEqual({ postId: post, count: mysql.count, liked: true });
      expect(await ctx.redisState(post)).toEqual({ count: mysql.count, users: mysql.users });
    }
  });
});
