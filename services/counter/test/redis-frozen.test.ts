/**
 * A shard master frozen with SIGSTOP under load, then resumed: its port stays open, so commands
 * the pod gave up on (commandTimeout) stay queued in its socket and RUN when it resumes, after
 * the pod has counted those increments elsewhere (MySQL fallback) or refused them. Whatever
 * Sentinel decides meanwhile (a short freeze usually ends before a failover), every 2xx must be
 * counted exactly once in MySQL, and Redis must converge to MySQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  currentRedisMaster,
  failbackRedis,
  freezeRedisMaster,
  resumeFrozenServers,
} from '../../../hack/testing/stack-control.js';
import { createTestContext, ownerOf, sleep, waitFor, type TestContext } from './helpers.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext('redis-frozen');
});
afterAll(async () => {
  await resumeFrozenServers();
  await failbackRedis().catch(() => undefined);
  await ctx?.close();
}, 120_000);

describe('a shard master frozen under load, then resumed', () => {
  it('counts every 2xx exactly once, and Redis converges to MySQL after the late commands ran', async () => {
    const writer = await ctx.startWriter();
    const auth = await ctx.auth();
    const names = Array.from({ length: 30 }, (_, i) => ctx.name(`z${i}`));
    const acked = new Map(names.map((n) => [n, 0]));
    const statuses = new Map<number, number>();
    const unexpected: string[] = [];
    let slowest = 0;
    let running = true;
    const load = Promise.all(
      Array.from({ length: 30 }, async (_, c) => {
        for (let i = 0; running; i += 1) {
          const name = names[(c + i) % names.length]!;
          const started = Date.now();
          const res = await ctx.app.inject({
            method: 'POST',
            url: `/v1/counters/${name}/increment`,
            headers: auth,
          });
          slowest = Math.max(slowest, Date.now() - started);
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          if (res.statusCode === 200) acked.set(name, (acked.get(name) ?? 0) + 1);
          else if (res.statusCode !== 503) unexpected.push(res.body);
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
      `[redis-frozen] statuses: ${JSON.stringify(Object.fromEntries(statuses))}; slowest ${slowest} ms; ` +
        `failover: ${failedOver}`,
    );
    console.info(
      (await ctx.registry.metrics())
        .split('\n')
        .filter((l) => /hyperscale_counter_(writes|fallbacks|invalidations|replays)_total\{/.test(l))
        .join('\n'),
    );
    expect(unexpected).toEqual([]);
    // Timeouts bound every answer: Redis (500 ms per call), the MySQL fallback, Kafka.
    expect(slowest).toBeLessThan(10_000);
    await ctx.waitDrained(90_000);
    await waitFor(
      () => Object.values(ctx.store.pendingRepairs()).every((r) => !r.invalidateAll && r.dirty === 0),
      30_000,
      'repairs',
    );
    for (const n of names) {
      expect(await ctx.mysqlValue(n), n).toBe(acked.get(n));
      const res = await ctx.app.inject({ method: 'GET', url: `/v1/counters/${n}`, headers: auth });
      expect(res.json<{ value: number }>().value, n).toBe(acked.get(n));
      const redis = await ctx.redisValue(n, ownerOf(ctx, n));
      if (redis !== null) expect(redis, `${n} in Redis`).toBe(acked.get(n));
    }
    expect(names.some((n) => ownerOf(ctx, n) === 'shard-0')).toBe(true);
    await writer.stop();
  }, 180_000);
});
