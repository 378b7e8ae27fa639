import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  currentRedisMaster,
  failbackRedis,
  isHealthy,
  startServer,
  stopServer,
} from '../../../hack/testing/stack-control.js';
import { createTestContext, ownerOf, sleep, waitFor, type TestContext } from './helpers.js';

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext('redis-failover');
});
afterAll(async () => {
  for (const port of [6379, 6380, 6381, 6382]) {
    if (!(await isHealthy(`redis-${port}`))) await startServer(`redis-${port}`).catch(() => undefined);
  }
  await failbackRedis().catch(() => undefined);
  await ctx?.close();
});

describe('a shard primary killed under load', () => {
  it('falls back to MySQL while the shard fails, recovers, and counts every 2xx exactly once', async () => {
    const writer = await ctx.startWriter();
    const auth = await ctx.auth();
    const names = Array.from({ length: 30 }, (_, i) => ctx.name(`f${i}`));
    const acked = new Map(names.map((n) => [n, 0]));
    const statuses = new Map<number, number>();
    let running = true;
    const unexpected: string[] = [];
    const load = Promise.all(
      Array.from({ length: 30 }, async (_, c) => {
        for (let i = 0; running; i += 1) {
          const name = names[(c + i) % names.length]!;
          const res = await ctx.app.inject({
            method: 'POST',
            url: `/v1/counters/${name}/increment`,
            headers: auth,
          });
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          if (res.statusCode === 200) acked.set(name, (acked.get(name) ?? 0) + 1);
          else if (res.statusCode !== 503) unexpected.push(res.body);
        }
      }),
    );
    const master = await currentRedisMaster('shard-0');
    const victim = `redis-${master.port}`;
    await sleep(500);
    try {
      await stopServer(victim, 'KILL');
      // Sentinel promotes the replica (down-after 1.5 s); the shard client follows it.
      await waitFor(
        async () => (await currentRedisMaster('shard-0')).port !== master.port,
        30_000,
        'failover',
      );
      await sleep(3_000);
    } finally {
      await startServer(victim);
    }
    await sleep(2_000);
    running = false;
    await load;
    console.info(`statuses under failover: ${JSON.stringify(Object.fromEntries(statuses))}`);
    console.info(
      (await ctx.registry.metrics())
        .split('\n')
        .filter((l) => /hyperscale_counter_(writes|fallbacks|invalidations)_total/.test(l))
        .join('\n'),
    );
    expect(unexpected).toEqual([]);
    await ctx.waitDrained(90_000);
    // Invalidation of the failed-over shard runs in the background: wait for it, then read.
    await waitFor(
      () => Object.values(ctx.store.pendingRepairs()).every((r) => !r.invalidateAll && r.dirty === 0),
      30_000,
      'repairs',
    );
    for (const name of names) {
      expect(await ctx.mysqlValue(name), name).toBe(acked.get(name));
      const res = await ctx.app.inject({ method: 'GET', url: `/v1/counters/${name}`, headers: auth });
      expect(res.json<{ value: number }>().value, name).toBe(acked.get(name));
    }
    expect(names.some((n) => ownerOf(ctx, n) === 'shard-0')).toBe(true);
    await writer.stop();
  }, 180_000);
});
