import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  currentRedisMaster,
  failbackRedis,
  isHealthy,
  startServer,
  stopServer,
} from '../../../hack/testing/stack-control.js';
import { dayOf, uniqueKeys } from '../src/uniques-store.js';
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

/** One unique event of `user` for `name` through the API. */
async function send(name: string, user: string) {
  return ctx.app.inject({
    method: 'POST',
    url: `/v1/uniques/${name}/events`,
    headers: await ctx.auth(user, []),
    payload: { userId: user },
  });
}

/** The exact count of `name` today through the API. */
async function readToday(name: string): Promise<number> {
  const res = await ctx.app.inject({
    method: 'GET',
    url: `/v1/uniques/${name}?day=${dayOf(Date.now())}`,
    headers: await ctx.auth('r', []),
  });
  return res.json<{ count: number }>().count;
}

describe('uniques while the shard fails', () => {
  it('de-duplicates in MySQL during the outage and stays exact after recovery', async () => {
    const name = ctx.name('dau');
    const day = dayOf(Date.now());
    const users = Array.from({ length: 10 }, (_, i) => ctx.name(`u${i}`));
    const sendAs = (user: string) => send(name, user);
    const read = () => readToday(name);
    for (const user of users.slice(0, 5)) expect((await sendAs(user)).statusCode).toBe(200);
    expect(await read()).toBe(5);
    const shardName = ownerOf(ctx, name);
    const master = await currentRedisMaster(shardName);
    const statuses: number[] = [];
    try {
      await stopServer(`redis-${master.port}`, 'KILL');
      // Repeats of known users and new users, twice each: MySQL's primary key de-duplicates.
      for (let round = 0; round < 2; round += 1)
        for (const user of users.slice(3)) statuses.push((await sendAs(user)).statusCode);
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
    expect((await sendAs(users[0]!)).statusCode).toBe(200);
    expect((await sendAs(ctx.name('late'))).statusCode).toBe(200);
    await waitFor(async () => (await read()) === 11, 20_000, 'exact count after more events');
    await ctx.waitDrained();
    const [row] = await ctx.pools.primary.select<{ n: number }>(
      'SELECT COUNT(*) AS n FROM unique_daily WHERE name = ? AND day = ?',
      [name, day],
    );
    expect(Number(row?.n)).toBe(11);
  }, 120_000);
});

describe('a direct MySQL insert while Redis fails for one request', () => {
  it('a day set warmed while the insert was still in its transaction does not outlive the commit', async () => {
    const name = ctx.name('race');
    const day = dayOf(Date.now());
    const shard = ctx.shard(ownerOf(ctx, name));
    const keys = uniqueKeys(name, day);
    // The test before failed the shard over: its client may still be moving to the new master, and
    // the store makes every key of the shard cold once the switch and the breaker recovery are seen.
    await shard.waitUntilReady(30_000);
    await waitFor(
      () => Object.values(ctx.store.pendingRepairs()).every((r) => !r.invalidateAll),
      30_000,
      'the invalidations after the failover before',
    );
    await waitFor(
      async () => (await send(name, 'ra')).statusCode === 200 && (await shard.redis.get(keys.gen)) !== null,
      30_000,
      'a warm day set {ra}',
    );
    await ctx.waitDrained();

    await ctx.pools.primary.withConnection(async (blocker) => {
      // Another transaction holds the row the direct insert needs: the insert waits for us.
      await blocker.unprepared('START TRANSACTION');
      await blocker.execute('INSERT INTO unique_daily (name, day, user_id) VALUES (?, ?, ?)', [
        name,
        day,
        'rb',
      ]);
      // Redis fails for this event only: a dropped connection rejects at once (no offline queue).
      shard.redis.disconnect(true);
      const write = send(name, 'rb');
      try {
        // Redis is back; the repair loop made the day set cold while the insert still waits.
        await waitFor(async () => (await shard.redis.get(keys.gen)) === null, 10_000, 'the repair');
        // A read warms it from unique_daily, which does not have rb yet.
        expect(await readToday(name)).toBe(1);
        expect(await shard.redis.get(keys.gen)).not.toBeNull();
      } finally {
        await blocker.unprepared('ROLLBACK');
      }
      expect((await write).statusCode).toBe(200);
    });
    // The commit queued the repair again: the stale set goes, and the next warm counts rb.
    await waitFor(async () => (await readToday(name)) === 2, 10_000, 'rb counted after the commit');
    expect(await shard.redis.sismember(keys.set, 'rb')).toBe(1);
  });
});
