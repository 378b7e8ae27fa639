/**
 * The shard master of a room frozen with SIGSTOP under heartbeats, then resumed: the heartbeats the
 * pod gave up on (commandTimeout) were kept in MySQL, and the late ones run in Redis when it
 * resumes. Nobody who heartbeated within the window may be missing, and nobody counted twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  failbackRedis,
  freezeRedisMaster,
  resumeFrozenServers,
} from '../../../hack/testing/stack-control.js';
import { createTestContext, ownerOf, sleep, waitFor, type TestContext } from './helpers.js';

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext('presence-frozen', { presenceWindowMs: 60_000 });
});
afterAll(async () => {
  await resumeFrozenServers();
  await failbackRedis().catch(() => undefined);
  await ctx?.close();
}, 120_000);

describe('presence when the room shard is frozen, then resumed', () => {
  it('counts every user who heartbeated, once', async () => {
    const room = ctx.name('room');
    const users = Array.from({ length: 80 }, (_, i) => ctx.name(`p${i}`));
    const headers = new Map(await Promise.all(users.map(async (u) => [u, await ctx.auth(u, [])] as const)));
    const beaten = new Set<string>();
    const statuses = new Map<number, number>();
    const others: string[] = [];
    let slowest = 0;
    let n = 0;
    let running = true;
    const load = Promise.all(
      Array.from({ length: 16 }, async () => {
        while (running) {
          const user = users[n++ % users.length]!;
          const started = Date.now();
          const res = await ctx.app.inject({
            method: 'POST',
            url: `/v1/presence/${room}/heartbeat`,
            headers: headers.get(user),
          });
          slowest = Math.max(slowest, Date.now() - started);
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          if (res.statusCode === 200) beaten.add(user);
          else if (res.statusCode !== 503) others.push(res.body);
        }
      }),
    );
    await sleep(1_000);
    // Longer than the pods' commandTimeout (500 ms), about Sentinel's down-after (1.5 s).
    await freezeRedisMaster(ownerOf(ctx, room), 1_200);
    await sleep(2_000);
    running = false;
    await load;
    console.info(
      `[presence-frozen] statuses: ${JSON.stringify(Object.fromEntries(statuses))}; slowest ${slowest} ms`,
    );
    expect(others).toEqual([]);
    expect(slowest).toBeLessThan(10_000);
    expect(beaten.size).toBe(users.length);
    const online = async () =>
      (
        await ctx.app.inject({ method: 'GET', url: `/v1/presence/${room}`, headers: await ctx.auth('x', []) })
      ).json<{ online: number }>().online;
    await waitFor(async () => (await online()) === users.length, 20_000, `online = ${users.length}`);
    // And it stays exact (no user counted in both Redis and MySQL).
    await sleep(1_000);
    expect(await online()).toBe(users.length);
  }, 120_000);
});
