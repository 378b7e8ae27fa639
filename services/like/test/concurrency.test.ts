/**
 * Invariants 2–4 under load, with the REAL writer draining into MySQL:
 * - a storm of 200 concurrent like/unlike requests from ONE user on ONE post ends, in Redis and in
 *   MySQL, in the state of the last request answered 2xx;
 * - 10,000 likes from distinct users on one hot post are exact in Redis and in MySQL
 *   (post_stats.like_count = COUNT(*) = 10,000).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type Child, type TestContext } from './helpers.js';

let ctx: TestContext;
let writer: Child;

beforeAll(async () => {
  ctx = await createTestContext('concurrency');
  writer = await ctx.startWriter();
});

afterAll(async () => {
  await writer?.stop();
  await ctx?.close();
});

describe('concurrency', () => {
  it('200 concurrent like/unlike from one user end in the state of the last acknowledged request', async () => {
    for (const round of [1, 2, 3]) {
      const post = ctx.post(`storm-${round}`);
      const headers = await ctx.auth('stormy');
      const completed: boolean[] = [];
      const requests = Array.from({ length: 200 }, (_, i) => {
        const like = (i * 7919 + round) % 3 !== 0;
        return ctx.app
          .inject({ method: like ? 'PUT' : 'DELETE', url: `/v1/posts/${post}/like`, headers })
          .then((res) => {
            if (res.statusCode === 200) completed.push(res.json<{ liked: boolean }>().liked);
            return res.statusCode;
          });
      });
      const statuses = await Promise.all(requests);
      expect(statuses.every((s) => s === 200)).toBe(true);
      const last = completed.at(-1)!;
      const expected = last ? { count: 1, users: ['stormy'] } : { count: 0, users: [] as string[] };
      expect(await ctx.redisState(post)).toEqual(expected);
      await ctx.waitDrained();
      expect(await ctx.mysqlState(post)).toEqual({ ...expected, rows: expected.users.length });
    }
  });

  it('10,000 likes from distinct users on one hot post are exact in Redis and MySQL', async () => {
    const post = ctx.post('hot');
    const total = 10_000;
    const concurrency = 500;
    const tokens = await Promise.all(Array.from({ length: total }, (_, i) => ctx.token(`fan-${i}`)));
    const started = performance.now();
    let next = 0;
    let ok = 0;
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) {
          const i = next++;
          const res = await ctx.app.inject({
            method: 'PUT',
            url: `/v1/posts/${post}/like`,
            headers: { authorization: `Bearer ${tokens[i]}` },
          });
          if (res.statusCode === 200) ok += 1;
          else failures.push(`${res.statusCode} ${res.body}`);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `hot post: ${total} likes in ${seconds.toFixed(2)} s = ${(total / seconds).toFixed(0)} req/s (app.inject, ${concurrency} in flight)`,
    );
    expect(failures).toEqual([]);
    expect(ok).toBe(total);
    const redis = await ctx.redisState(post);
    expect(redis?.count).toBe(total);
    expect(redis?.users).toHaveLength(total);
    const drainStarted = performance.now();
    await ctx.waitDrained(120_000);
    console.log(
      `writer drained in ${((performance.now() - drainStarted) / 1000).toFixed(2)} s after the last ack`,
    );
    const mysql = await ctx.mysqlState(post);
    expect(mysql.count).toBe(total);
    expect(mysql.rows).toBe(total);
    const read = await ctx.app.inject({
      method: 'GET',
      url: `/v1/posts/${post}/likes`,
      headers: { authorization: `Bearer ${tokens[42]}` },
    });
    expect(read.json()).toEqual({ postId: post, count: total, liked: true });
  });
});
