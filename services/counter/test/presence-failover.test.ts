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
  ctx = await createTestContext('presence-failover', { presenceWindowMs: 30_000 });
});
afterAll(async () => {
  for (const port of [6379, 6380, 6381, 6382]) {
    if (!(await isHealthy(`redis-${port}`))) await startServer(`redis-${port}`).catch(() => undefined);
  }
  await failbackRedis().catch(() => undefined);
  await ctx?.close();
});

describe('presence when the room shard fails', () => {
  it('keeps heartbeats in MySQL while the shard is down and counts Redis ∪ MySQL after it returns', async () => {
    const room = ctx.name('room');
    const shardName = ownerOf(ctx, room);
    const users = ['a', 'b', 'c', 'd'].map((u) => ctx.name(u));
    const beat = async (user: string) =>
      ctx.app.inject({
        method: 'POST',
        url: `/v1/presence/${room}/heartbeat`,
        headers: await ctx.auth(user, []),
      });
    for (const user of users.slice(0, 2)) expect((await beat(user)).statusCode).toBe(200);
    const master = await currentRedisMaster(shardName);
    const statuses: number[] = [];
    try {
      await stopServer(`redis-${master.port}`, 'KILL');
      for (const user of users.slice(2)) {
        const res = await beat(user);
        statuses.push(res.statusCode);
      }
      const during = await ctx.app.inject({
        method: 'GET',
        url: `/v1/presence/${room}`,
        headers: await ctx.auth('x', []),
      });
      expect(during.statusCode).toBe(200);
      await waitFor(
        async () => (await currentRedisMaster(shardName)).port !== master.port,
        30_000,
        'failover',
      );
    } finally {
      await startServer(`redis-${master.port}`);
    }
    expect(statuses).toEqual([200, 200]);
    const [row] = await ctx.pools.primary.select<{ n: number }>(
      'SELECT COUNT(*) AS n FROM presence WHERE room = ?',
      [room],
    );
    expect(Number(row?.n)).toBeGreaterThanOrEqual(1);
    // After recovery: nobody who heartbeated within the window is missing.
    await sleep(1_500);
    await waitFor(
      async () => {
        const res = await ctx.app.inject({
          method: 'GET',
          url: `/v1/presence/${room}`,
          headers: await ctx.auth('x', []),
        });
        return res.statusCode === 200 && res.json<{ online: number }>().online === 4;
      },
      20_000,
      'online = 4 after recovery',
    );
  }, 120_000);
});
