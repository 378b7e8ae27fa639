/**
 * The shard master of a DAU set frozen with SIGSTOP under load, then resumed: the scripts the pod
 * gave up on (commandTimeout) run when it resumes, after the pod has de-duplicated those events in
 * MySQL or refused them. The day's count must be exact afterwards, in MySQL and through the API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  failbackRedis,
  freezeRedisMaster,
  resumeFrozenServers,
} from '../../../hack/testing/stack-control.js';
import { dayOf } from '../src/uniques-store.js';
import { createTestContext, ownerOf, sleep, waitFor, type Child, type TestContext } from './helpers.js';

let ctx: TestContext;
let writer: Child | undefined;

beforeAll(async () => {
  ctx = await createTestContext('uniques-frozen');
  writer = await ctx.startWriter();
});
afterAll(async () => {
  await resumeFrozenServers();
  await failbackRedis().catch(() => undefined);
  await writer?.stop();
  await ctx?.close();
}, 120_000);

describe('a DAU shard frozen under load, then resumed', () => {
  it('counts each user once per day, in MySQL and through the API', async () => {
    const name = ctx.name('dau');
    const day = dayOf(Date.now());
    const users = Array.from({ length: 150 }, (_, i) => ctx.name(`u${i}`));
    const headers = new Map(await Promise.all(users.map(async (u) => [u, await ctx.auth(u, [])] as const)));
    const acknowledged = new Set<string>();
    const refused = new Set<string>();
    const statuses = new Map<number, number>();
    let slowest = 0;
    let n = 0;
    let running = true;
    const load = Promise.all(
      Array.from({ length: 20 }, async () => {
        while (running) {
          // Every user again and again: repeats must not count.
          const user = users[(n++ * 7) % users.length]!;
          const started = Date.now();
          const res = await ctx.app.inject({
            method: 'POST',
            url: `/v1/uniques/${name}/events`,
            headers: headers.get(user),
            payload: { userId: user },
          });
          slowest = Math.max(slowest, Date.now() - started);
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          if (res.statusCode === 200) acknowledged.add(user);
          else refused.add(`${user} ${res.statusCode}`);
        }
      }),
    );
    await sleep(1_000);
    // Longer than the pods' commandTimeout (500 ms), about Sentinel's down-after (1.5 s).
    await freezeRedisMaster(ownerOf(ctx, name), 1_200);
    await sleep(3_000);
    running = false;
    await load;
    console.info(
      `[uniques-frozen] statuses: ${JSON.stringify(Object.fromEntries(statuses))}; slowest ${slowest} ms; ` +
        `${acknowledged.size} users acknowledged`,
    );
    expect([...refused].filter((r) => !r.endsWith(' 503'))).toEqual([]);
    expect(slowest).toBeLessThan(10_000);
    expect(acknowledged.size).toBe(users.length);

    await ctx.waitDrained(90_000);
    const [row] = await ctx.pools.primary.select<{ n: number }>(
      'SELECT COUNT(*) AS n FROM unique_daily WHERE name = ? AND day = ?',
      [name, day],
    );
    expect(Number(row?.n)).toBe(users.length);
    const read = async () =>
      (
        await ctx.app.inject({
          method: 'GET',
          url: `/v1/uniques/${name}?day=${day}`,
          headers: await ctx.auth('reader', []),
        })
      ).json<{ count: number }>().count;
    await waitFor(async () => (await read()) === users.length, 20_000, 'the exact day count through the API');
  }, 120_000);
});
