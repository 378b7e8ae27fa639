/**
 * The MySQL primary frozen with SIGSTOP (its port stays open, statements hang) under the counter
 * API: warm counters keep taking increments and reads (Redis and Kafka only), a counter that needs
 * MySQL is answered 503 within its time limits instead of hanging, and after the primary returns
 * the pool recovers and MySQL holds every acknowledged increment.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHealthy, startServer, stopServer } from '../../../hack/testing/stack-control.js';
import { createTestContext, type Child, type TestContext } from './helpers.js';

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

describe('MySQL primary frozen under the counter API', () => {
  it('serves warm counters from Redis, answers a cold one 503 in bounded time, and loses nothing', async () => {
    const auth = await ctx.auth();
    const warm = ctx.name('warm');
    const cold = ctx.name('cold');
    const increment = (name: string) =>
      ctx.app.inject({ method: 'POST', url: `/v1/counters/${name}/increment`, headers: auth });
    const read = (name: string) =>
      ctx.app.inject({ method: 'GET', url: `/v1/counters/${name}`, headers: auth });
    for (let i = 0; i < 3; i += 1) expect((await increment(warm)).statusCode).toBe(200);
    await ctx.waitDrained();
    expect((await read(warm)).json<{ value: number }>().value).toBe(3);

    await stopServer(PRIMARY, 'STOP');
    try {
      // The hot path needs no MySQL: every increment is acknowledged by Kafka and applied in Redis.
      for (let i = 0; i < 5; i += 1) {
        const res = await increment(warm);
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json<{ value: number }>().value).toBe(4 + i);
      }
      expect((await read(warm)).json<{ value: number }>().value).toBe(8);

      // A cold counter must be warmed from MySQL behind the writer. Bounded by the barrier's
      // warmWaitMs (2 s) plus the pool's longest limit, 5 s to open a connection (3 s for a
      // statement on an open one); 3.0 s and 7.0 s were both measured, with the pool in either state.
      const started = Date.now();
      const res = await read(cold);
      const elapsed = Date.now() - started;
      console.info(`[mysql-frozen] cold read with the primary frozen: ${res.statusCode} after ${elapsed} ms`);
      expect(res.statusCode, res.body).toBe(503);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(elapsed).toBeLessThan(2_000 + 5_000 + 1_500);
    } finally {
      await startServer(PRIMARY);
    }

    // The pool drops the connections that timed out and serves again; the writer catches up.
    await ctx.waitDrained(60_000);
    expect((await read(cold)).json<{ value: number }>().value).toBe(0);
    expect((await read(warm)).json<{ value: number }>().value).toBe(8);
    expect(await ctx.mysqlValue(warm)).toBe(8);
  }, 120_000);
});
