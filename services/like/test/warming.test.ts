/**
 * Warming a cold post behind the writer barrier (DESIGN §6 invariant 3), against the real writer:
 * - acknowledged likes still in Kafka (writer stopped) are not lost by a warm: the warm waits until
 *   the writer applied them;
 * - when the writer does not catch up in time the warm goes ahead with a short TTL (metric +
 *   warning) and the post converges once the TTL expired and the writer drained;
 * - a burst of reads on a cold post makes ONE warm (single-flight);
 * - a replica outage: reads that MySQL serves fall back to the primary;
 * - a direct MySQL write (Redis failed) whose transaction outlives the Redis outage: a warm that
 *   ran meanwhile from a snapshot without it is deleted once it commits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { RedisShardClient } from '@hyperscale/platform';
import { isHealthy, startServer, stopServer } from '../../../hack/testing/stack-control.js';
import { LikeStore } from '../src/like-store.js';
import { postKeys } from '../src/keys.js';
import {
  createTestContext,
  logger,
  metricValue,
  shardClients,
  shardFor,
  sleep,
  storeOptions,
  waitFor,
  type TestContext,
} from './helpers.js';

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext('warming');
});

afterAll(async () => {
  if (!(await isHealthy('mariadb-replica'))) await startServer('mariadb-replica');
  await ctx?.close();
});

async function makeCold(postId: string): Promise<void> {
  const keys = postKeys(postId);
  await shardFor(ctx.shards, postId).redis.del(keys.users, keys.count, keys.gen);
}

describe('warming behind the writer', () => {
  it('waits for the writer to apply acknowledged events before trusting MySQL', async () => {
    const post = ctx.post('barrier');
    // Warm the post while MySQL is empty (nothing produced to its partition yet → no wait).
    for (const user of ['w1', 'w2', 'w3', 'w4', 'w5']) {
      const res = await ctx.app.inject({
        method: 'PUT',
        url: `/v1/posts/${post}/like`,
        headers: await ctx.auth(user),
      });
      expect(res.json<{ count: number }>().count).toBeGreaterThan(0);
    }
    expect((await ctx.mysqlState(post)).rows).toBe(0); // no writer yet: all five only in Kafka + Redis
    await makeCold(post); // as after a failover

    const store = new LikeStore({
      shards: ctx.shards,
      router: ctx.router,
      producer: ctx.producer,
      highWatermarks: (t) => ctx.admin.fetchTopicOffsets(t),
      logger,
      registry: new Registry(),
      options: storeOptions(ctx.topic, ctx.groupId, { warmWaitMs: 30_000 }),
    });
    try {
      const writerStart = ctx.startWriter(); // takes a moment: the warm must wait for it
      const started = performance.now();
      const state = await store.readState('w1', post);
      const waited = performance.now() - started;
      console.log(`warm waited ${waited.toFixed(0)} ms for the writer to apply 5 pending events`);
      expect(state).toEqual({ postId: post, count: 5, liked: true });
      expect(await ctx.redisState(post)).toEqual({ count: 5, users: ['w1', 'w2', 'w3', 'w4', 'w5'] });
      await (await writerStart).stop();
    } finally {
      store.close();
    }
  });

  it('a writer that does not catch up: warms anyway with a short TTL, then converges', async () => {
    const post = ctx.post('degraded');
    const store = new LikeStore({
      shards: ctx.shards,
      router: ctx.router,
      producer: ctx.producer,
      highWatermarks: (t) => ctx.admin.fetchTopicOffsets(t),
      logger,
      registry: new Registry(),
      options: storeOptions(ctx.topic, ctx.groupId, { warmWaitMs: 300, degradedTtlMs: 1_500 }),
    });
    try {
      await store.setLiked('d1', post, true);
      await store.setLiked('d2', post, true); // writer stopped: both only in Kafka + Redis
      await makeCold(post);
      const degraded = await store.readState('d1', post);
      expect(degraded.count).toBe(0); // MySQL does not have them yet: the stale, short-lived warm
      const pttl = await shardFor(ctx.shards, post).redis.pttl(postKeys(post).count);
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(1_500);
      const timeouts = (await store.metrics.warmWaitTimeouts.get()).values[0]?.value ?? 0;
      expect(timeouts).toBeGreaterThanOrEqual(1);

      const writer = await ctx.startWriter();
      try {
        await ctx.waitDrained();
        await sleep(1_600); // the degraded keys expire
        expect(await store.readState('d1', post)).toEqual({ postId: post, count: 2, liked: true });
        expect(await ctx.redisState(post)).toEqual({ count: 2, users: ['d1', 'd2'] });
      } finally {
        await writer.stop();
      }
    } finally {
      store.close();
    }
  });

  it('a burst of reads on a cold post makes one warm (single-flight)', async () => {
    const post = ctx.post('burst');
    const registry = new Registry();
    const store = new LikeStore({
      shards: ctx.shards,
      router: ctx.router,
      producer: ctx.producer,
      highWatermarks: (t) => ctx.admin.fetchTopicOffsets(t),
      logger,
      registry,
      options: storeOptions(ctx.topic, ctx.groupId, { warmWaitMs: 200 }),
    });
    try {
      const states = await Promise.all(Array.from({ length: 500 }, (_, i) => store.readState(`b${i}`, post)));
      expect(states.every((s) => s.count === 0)).toBe(true);
      const warms = (await store.metrics.warms.get()).values.reduce((sum, v) => sum + v.value, 0);
      expect(warms).toBe(1);
    } finally {
      store.close();
    }
  });
});

describe('replica outage', () => {
  it('reads served by MySQL fall back to the primary while the replica is down', async () => {
    // A store whose only Redis shard is unreachable: every read is served by MySQL.
    const registry = new Registry();
    const dead = new RedisShardClient(
      { shard: 'dead', host: '127.0.0.1', port: 1, connectTimeoutMs: 200, commandTimeoutMs: 200 },
      { logger, registry },
    );
    const store = new LikeStore({
      shards: [dead],
      router: ctx.router,
      producer: ctx.producer,
      highWatermarks: (t) => ctx.admin.fetchTopicOffsets(t),
      logger,
      registry,
      options: storeOptions(ctx.topic, ctx.groupId, { directWriteWaitMs: 0 }),
    });
    const post = ctx.post('replica');
    try {
      const written = await store.setLiked('r1', post, true); // Redis down → direct MySQL write
      expect(written).toMatchObject({ changed: true, count: 1, path: 'mysql_direct' });
      await stopServer('mariadb-replica', 'KILL');
      const before = await metricValue(ctx.registry, 'hyperscale_mysql_reads_total', { target: 'primary' });
      const started = performance.now();
      for (let i = 0; i < 20; i += 1) {
        expect(await store.readState(`other-${i}`, post)).toEqual({ postId: post, count: 1, liked: false });
      }
      console.log(`20 reads with the replica down in ${(performance.now() - started).toFixed(0)} ms`);
      expect(
        await metricValue(ctx.registry, 'hyperscale_mysql_reads_total', { target: 'primary' }),
      ).toBeGreaterThanOrEqual(before + 20);
      expect(
        await metricValue(ctx.registry, 'hyperscale_mysql_reads_total', {
          target: 'primary',
          reason: 'replica_down',
        }),
      ).toBeGreaterThan(0);
    } finally {
      await startServer('mariadb-replica');
      store.close();
      await dead.close();
    }
  });
});

describe('direct MySQL write while Redis fails', () => {
  it('a warm taken while the direct write was still in its transaction does not outlive the commit', async () => {
    const registry = new Registry();
    const shards = shardClients(registry, 'direct-race');
    const store = new LikeStore({
      shards,
      router: ctx.router,
      producer: ctx.producer,
      highWatermarks: (t) => ctx.admin.fetchTopicOffsets(t),
      logger,
      registry,
      // warmWaitMs short: the blocked INSERT must not run into the pool's 3 s statement timeout.
      options: storeOptions(ctx.topic, ctx.groupId, {
        directWriteWaitMs: 0,
        repairIntervalMs: 100,
        warmWaitMs: 200,
      }),
    });
    const post = ctx.post('direct-race');
    const shard = shardFor(shards, post);
    const pendingDirty = () => store.pendingRepairs()[shard.shard]?.dirty ?? -1;
    try {
      await Promise.all(shards.map((c) => c.waitUntilReady(10_000)));
      await ctx.pools.primary.withConnection(async (blocker) => {
        // Another transaction holds the row the direct write will insert: its commit waits for us.
        await blocker.unprepared('START TRANSACTION');
        await blocker.execute('INSERT INTO like_records (post_id, user_id, created_at) VALUES (?, ?, ?)', [
          post,
          'd1',
          new Date(),
        ]);
        // Redis fails for this write only: a dropped connection rejects at once (no offline queue).
        shard.redis.disconnect(true);
        const write = store.setLiked('d1', post, true);
        try {
          await waitFor(
            async () =>
              (await metricValue(registry, 'hyperscale_like_fallbacks_total', {
                reason: 'redis_unavailable',
              })) === 1,
            5_000,
            'the fallback to a direct write',
          );
          // Redis is back and the repair loop deleted the post's keys while the write still waits.
          await shard.waitUntilReady(10_000);
          await waitFor(() => pendingDirty() === 0, 10_000, 'the repair loop');
          // A read warms the post from MySQL, which does not have the like yet.
          expect(await store.readState(undefined, post)).toEqual({ postId: post, count: 0, liked: false });
          expect(await ctx.redisState(post)).toEqual({ count: 0, users: [] });
        } finally {
          await blocker.unprepared('ROLLBACK');
        }
        expect(await write).toMatchObject({ changed: true, count: 1, path: 'mysql_direct' });
      });
      // The commit marked the post again: its stale keys go, the next read warms with the like.
      await waitFor(() => pendingDirty() === 0, 10_000, 'the repair loop after the commit');
      expect(await store.readState('d1', post)).toEqual({ postId: post, count: 1, liked: true });
      expect(await ctx.redisState(post)).toEqual({ count: 1, users: ['d1'] });
    } finally {
      store.close();
      await Promise.all(shards.map((c) => c.close()));
    }
  });
});
