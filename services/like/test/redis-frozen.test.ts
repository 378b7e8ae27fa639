/**
 * A Redis shard master frozen with SIGSTOP under a like load, then resumed: its port stays open,
 * so the scripts the pod gave up on (commandTimeout) stay queued in its socket and RUN when it
 * resumes, after the pod has written those likes to MySQL directly or refused them. Every 2xx must
 * be in MySQL, nothing else but refused (503) attempts, and Redis must converge to MySQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  currentRedisMaster,
  failbackRedis,
  freezeRedisMaster,
  freezeServer,
  resumeFrozenServers,
  resumeServer,
} from '../../../hack/testing/stack-control.js';
import { shardIndexOf } from '../src/keys.js';
import {
  createTestContext,
  MASTER_NAMES,
  metricValue,
  sleep,
  waitFor,
  type Child,
  type TestContext,
} from './helpers.js';

let ctx: TestContext;
let writer: Child | undefined;
beforeAll(async () => {
  ctx = await createTestContext('redis-frozen');
  writer = await ctx.startWriter();
});
afterAll(async () => {
  await resumeFrozenServers();
  await failbackRedis().catch(() => undefined);
  await writer?.stop();
  await ctx?.close();
}, 120_000);

describe('a Redis shard master frozen under load, then resumed', () => {
  it('keeps every 2xx, adds nothing but refused attempts, and Redis converges to MySQL', async () => {
    const posts = Array.from({ length: 24 }, (_, i) => ctx.post(`z${i}`));
    expect(posts.some((p) => shardIndexOf(p, MASTER_NAMES.length) === 0)).toBe(true);
    for (const post of posts) {
      const res = await ctx.app.inject({
        method: 'PUT',
        url: `/v1/posts/${post}/like`,
        headers: await ctx.auth('seed'),
      });
      expect(res.statusCode).toBe(200);
    }
    const acknowledged = new Map(posts.map((p) => [p, new Set(['seed'])]));
    const refused = new Map(posts.map((p) => [p, new Set<string>()]));
    const statuses = new Map<number, number>();
    let slowest = 0;
    let n = 0;
    let running = true;
    const load = Promise.all(
      Array.from({ length: 24 }, async () => {
        while (running) {
          const i = n++;
          const post = posts[i % posts.length]!;
          const user = `zu-${i}`;
          const started = Date.now();
          const res = await ctx.app.inject({
            method: 'PUT',
            url: `/v1/posts/${post}/like`,
            headers: await ctx.auth(user),
          });
          slowest = Math.max(slowest, Date.now() - started);
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          if (res.statusCode === 200) acknowledged.get(post)!.add(user);
          else refused.get(post)!.add(`${user} ${res.statusCode}`);
        }
      }),
    );
    await sleep(1_000);
    // Longer than the pods' commandTimeout (500 ms), about Sentinel's down-after (1.5 s).
    const frozenPort = await freezeRedisMaster('shard-0', 1_200);
    await sleep(3_000);
    running = false;
    await load;
    const failedOver = (await currentRedisMaster('shard-0')).port !== frozenPort;
    console.info(
      `[redis-frozen] statuses: ${JSON.stringify(Object.fromEntries(statuses))}; slowest ${slowest} ms; failover: ${failedOver}`,
    );
    const others = [...refused.values()].flatMap((s) => [...s]).filter((r) => !r.endsWith(' 503'));
    expect(others).toEqual([]);
    expect(slowest).toBeLessThan(10_000);

    await ctx.waitDrained(90_000);
    await waitFor(
      () => Object.values(ctx.store.pendingRepairs()).every((r) => r.dirty === 0 && !r.invalidateAll),
      30_000,
      'deferred invalidations',
    );
    for (const post of posts) {
      const mysql = await ctx.mysqlState(post);
      const acked = acknowledged.get(post)!;
      const attempted = new Set([...refused.get(post)!].map((r) => r.split(' ')[0]!));
      expect(
        [...acked].filter((u) => !mysql.users.includes(u)),
        `missing from MySQL for ${post}`,
      ).toEqual([]);
      expect(
        mysql.users.filter((u) => !acked.has(u) && !attempted.has(u)),
        `unexpected in MySQL for ${post}`,
      ).toEqual([]);
      expect(mysql.count).toBe(mysql.rows);
      const read = await ctx.app.inject({
        method: 'GET',
        url: `/v1/posts/${post}/likes`,
        headers: await ctx.auth('seed'),
      });
      expect(read.json()).toEqual({ postId: post, count: mysql.count, liked: true });
      expect(await ctx.redisState(post)).toEqual({ count: mysql.count, users: mysql.users });
    }
  }, 180_000);

  it('a direct write is not undone by an older event Kafka acknowledged and the writer had not applied yet', async () => {
    const post = Array.from({ length: 50 }, (_, i) => ctx.post(`zd${i}`)).find(
      (p) => shardIndexOf(p, MASTER_NAMES.length) === 0,
    )!;
    const headers = await ctx.auth('zd-user');
    const write = (liked: boolean) =>
      ctx.app.inject({ method: liked ? 'PUT' : 'DELETE', url: `/v1/posts/${post}/like`, headers });
    expect((await write(false)).statusCode).toBe(200); // warms the post
    await ctx.waitDrained();
    // The writer stops: the like below is acknowledged by Kafka but not in MySQL.
    await writer?.stop();
    writer = undefined;
    expect((await write(true)).statusCode).toBe(200);
    const direct = () => metricValue(ctx.registry, 'hyperscale_like_writes_total', { path: 'mysql_direct' });
    const before = await direct();
    // The unlike meets a frozen shard: Redis times out (500 ms), the writer barrier gives up
    // (LIKE_DIRECT_WRITE_WAIT_MS), and MySQL gets the unlike directly. Resumed after 1.2 s,
    // before Sentinel's down-after.
    const frozen = `redis-${(await currentRedisMaster('shard-0')).port}`;
    await freezeServer(frozen);
    const resumed = sleep(1_200).then(() => resumeServer(frozen));
    const unlike = await write(false);
    await resumed;
    expect(unlike.statusCode, unlike.body).toBe(200);
    expect(await direct()).toBe(before + 1);

    writer = await ctx.startWriter();
    await ctx.waitDrained(90_000);
    await waitFor(
      () => Object.values(ctx.store.pendingRepairs()).every((r) => r.dirty === 0 && !r.invalidateAll),
      30_000,
      'deferred invalidations',
    );
    expect(await ctx.mysqlState(post)).toEqual({ count: 0, rows: 0, users: [] });
    const read = await ctx.app.inject({ method: 'GET', url: `/v1/posts/${post}/likes`, headers });
    expect(read.json()).toEqual({ postId: post, count: 0, liked: false });
  }, 120_000);
});
