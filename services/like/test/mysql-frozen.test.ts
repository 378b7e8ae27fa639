/**
 * The MySQL primary frozen with SIGSTOP (its port stays open, statements hang) under the like API:
 * likes of a warm post keep being answered from Redis + Kafka; a cold post, which cannot be warmed
 * from the primary, is read from the replica once the warm gives up (its time limits), instead of
 * hanging; after the primary returns the pool recovers and MySQL holds every acknowledged like.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHealthy, startServer, stopServer } from '../../../hack/testing/stack-control.js';
import { postKeys } from '../src/keys.js';
import { createTestContext, shardFor, type Child, type TestContext } from './helpers.js';

const PRIMARY = 'mariadb-primary';
let ctx: TestContext;
let writer: Child | undefined;

beforeAll(async () => {
  ctx = await createTestContext('mysql-frozen');
  writer = await ctx.startWriter();
});
afterAll(async () => {
  if (!(await isHealthy(PRIMARY))) await startServer(PRIMARY);
  await writer?.stop();
  await ctx?.close();
}, 120_000);

describe('MySQL primary frozen under the like API', () => {
  it('serves a warm post from Redis, a cold one from the replica in bounded time, and loses nothing', async () => {
    const warm = ctx.post('warm');
    const cold = ctx.post('cold');
    const like = async (user: string, post: string) =>
      ctx.app.inject({ method: 'PUT', url: `/v1/posts/${post}/like`, headers: await ctx.auth(user) });
    const read = async (post: string) =>
      ctx.app.inject({ method: 'GET', url: `/v1/posts/${post}/likes`, headers: await ctx.auth('reader') });
    for (const user of ['u1', 'u2', 'u3']) expect((await like(user, warm)).statusCode).toBe(200);
    for (const user of ['u1', 'u2']) expect((await like(user, cold)).statusCode).toBe(200);
    await ctx.waitDrained();
    // Cold in Redis (as after a failover); its two likes are in MySQL, primary and replica.
    const keys = postKeys(cold);
    await shardFor(ctx.shards, cold).redis.del(keys.users, keys.count, keys.gen);
    expect((await read(warm)).json<{ count: number }>().count).toBe(3);

    await stopServer(PRIMARY, 'STOP');
    try {
      for (const [i, user] of ['u4', 'u5'].entries()) {
        const res = await like(user, warm);
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json<{ count: number }>().count).toBe(4 + i);
      }
      expect((await read(warm)).json<{ count: number }>().count).toBe(5);

      // A cold post is warmed from the primary behind the writer: the barrier gives up at
      // warmWaitMs (2 s); the snapshot on the primary then fails at the pool's limit (3 s for a
      // statement on an open connection, 5 s to open one); the replica serves the read.
      const started = Date.now();
      const res = await read(cold);
      const elapsed = Date.now() - started;
      console.info(
        `[mysql-frozen] cold post read with the primary frozen: ${res.statusCode} after ${elapsed} ms`,
      );
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<{ count: number }>().count).toBe(2);
      expect(elapsed).toBeLessThan(2_000 + 5_000 + 1_500);
      // A like of the cold post needs the primary (no warm, no direct write): refused, not hung.
      const refused = await like('u3', cold);
      expect(refused.statusCode, refused.body).toBe(503);
      expect(refused.headers['content-type']).toContain('application/problem+json');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await startServer(PRIMARY);
    }

    await ctx.waitDrained(60_000);
    expect((await read(cold)).json<{ count: number }>().count).toBe(2);
    expect((await ctx.mysqlState(cold)).count).toBe(2);
    expect((await read(warm)).json<{ count: number }>().count).toBe(5);
    const state = await ctx.mysqlState(warm);
    expect(state.count).toBe(5);
    expect(state.users.sort()).toEqual(['u1', 'u2', 'u3', 'u4', 'u5']);
  }, 120_000);
});
