import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  currentRedisMaster,
  failbackRedis,
  isHealthy,
  startServer,
  stopServer,
} from '../../../hack/testing/stack-control.js';
import { dayOf } from '../src/uniques-store.js';
import { createTestContext, ownerOf, waitFor, type Child, type TestContext } from './helpers.js';

let ctx: TestContext;
let writer: Child;

beforeAll(async () => {
  ctx = await createTestContext('uniques-failover');
  writer = await ctx.startWriter();
});
afterAll(async () => {
  for (const port of [6379, 6380, 6381, 6382]) {
    if (!(await isHealthy(`redis-${port}`))) await startServer(`redis-${port}`).catch(() => undefined);
  }
  await failbackRedis().catch(() => undefined);
  await writer?.stop();
  await ctx?.close();
});

describe('uniques while the shard fails', () => {
  it('de-duplicates in MySQL during the outage and stays exact after recovery', async () => {
    const name = ctx.name('dau');
    const day = dayOf(Date.now());
    const users = Array.from({ length: 10 }, (_, i) => ctx.name(`u${i}`));
    const send = async (user: string) =>
      ctx.app.inject({
        method: 'POST',
        url: `/v1/uniques/${name}/events`,
        headers: await ctx.auth(user, []),
        payload: { userId: user },
      });
    const read = async () =>
      (
        await ctx.app.inject({
          method: 'GET',
          url: `/v1/uniques/${name}?day=${day}`,
          headers: await ctx.auth('r', []),
        })
      ).json<{ count: number }>().count;
    for (const user of users.slice(0, 5)) expect((await send(user)).statusCode).toBe(200);
    expect(await read()).toBe(5);
    const shardName = ownerOf(ctx, name);
    const master = await currentRedisMaster(shardName);
    const statuses: number[] = [];
    try {
      await stopServer(`redis-${master.port}`, 'KILL');
      // Repeats of known users and new users, twice each: MySQL's primary key de-duplicates.
      for (let round = 0; round < 2; round += 1)
        for (const user of users.slice(3)) statuses.push((await send(user)).statusCode);
      expect(await read()).toBe(10);
      await waitFor(
        async () => (await currentRedisMaster(shardName)).port !== master.port,
        30_000,
        'failover',
      );
    } finally {
      await startServer(`redis-${master.port}`);
    }
    expect(statuses.every((s) => s === 200)).toBe(true);
    await ctx.waitDrained();
    await waitFor(async () => (await read()) === 10, 20_000, 'exact count after recovery');
    expect((await send(users[0]!)).statusCode).toBe(200);
    expect((await send(ctx.name('late'))).statusCode).toBe(200);
    await waitFor(async () => (await read()) === 11, 20_000, 'exact count after more events');
    await ctx.waitDrained();
    const [row] = await ctx.pools.primary.select<{ n: number }>(
      'SELECT COUNT(*) AS n FROM unique_daily WHERE name = ? AND day = ?',
      [name, day],
    );
    expect(Number(row?.n)).toBe(11);
  }, 120_000);
});
