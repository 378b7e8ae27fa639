/**
 * Kafka broker killed (SIGKILL): likes keep being answered 2xx through the synchronous MySQL
 * fallback, every one of them is in MySQL, reads stay right (cold posts are read from MySQL while
 * the writer barrier cannot be established), and once the broker is back and the writer drained,
 * Redis equals MySQL. The broker is restarted in `finally`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freezeServer,
  isHealthy,
  resumeFrozenServers,
  resumeServer,
  startServer,
  stopServer,
} from '../../../hack/testing/stack-control.js';
import { createTestContext, metricValue, sleep, type Child, type TestContext } from './helpers.js';

let ctx: TestContext;
let writer: Child | undefined;

beforeAll(async () => {
  ctx = await createTestContext('kafka-outage');
  writer = await ctx.startWriter();
});

afterAll(async () => {
  await resumeFrozenServers();
  if (!(await isHealthy('kafka'))) await startServer('kafka');
  await writer?.stop();
  await ctx?.close();
});

describe('Kafka outage', () => {
  it('answers likes 2xx via the MySQL fallback, loses none, and converges after the broker returns', async () => {
    const posts = Array.from({ length: 10 }, (_, i) => ctx.post(`k${i}`));
    const users = Array.from({ length: 8 }, (_, i) => `ku${i}`);
    const headers = new Map(await Promise.all(users.map(async (u) => [u, await ctx.auth(u)] as const)));

    // Warm the posts and put some likes through Kafka first.
    for (const post of posts) {
      const res = await ctx.app.inject({
        method: 'PUT',
        url: `/v1/posts/${post}/like`,
        headers: headers.get('ku0'),
      });
      expect(res.statusCode).toBe(200);
    }
    await ctx.waitDrained();

    const acknowledged = new Map<string, boolean>(); // `${post}/${user}` → liked (last 2xx wins)
    for (const post of posts) acknowledged.set(`${post}/ku0`, true);
    let fallbackLatencies: number[] = [];
    const statuses: number[] = [];
    try {
      await stopServer('kafka', 'KILL');
      const started = performance.now();
      const work = posts.flatMap((post) => users.slice(1).map((user) => ({ post, user })));
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < work.length) {
            const { post, user } = work[next++]!;
            const t0 = performance.now();
            const res = await ctx.app.inject({
              method: 'PUT',
              url: `/v1/posts/${post}/like`,
              headers: headers.get(user),
            });
            fallbackLatencies.push(performance.now() - t0);
            statuses.push(res.statusCode);
            if (res.statusCode === 200) acknowledged.set(`${post}/${user}`, true);
          }
        }),
      );
      // Unlikes too, and a re-like: idempotent in MySQL.
      for (const post of posts.slice(0, 3)) {
        const res = await ctx.app.inject({
          method: 'DELETE',
          url: `/v1/posts/${post}/like`,
          headers: headers.get('ku1'),
        });
        statuses.push(res.statusCode);
        if (res.statusCode === 200) acknowledged.set(`${post}/ku1`, false);
      }
      const elapsed = (performance.now() - started) / 1000;
      fallbackLatencies = fallbackLatencies.sort((a, b) => a - b);
      console.log(
        `kafka down: ${statuses.length} writes in ${elapsed.toFixed(2)} s, ${statuses.filter((s) => s === 200).length} × 2xx; ` +
          `latency p50 ${fallbackLatencies[Math.floor(fallbackLatencies.length / 2)]?.toFixed(1)} ms, ` +
          `max ${fallbackLatencies.at(-1)?.toFixed(0)} ms`,
      );
      expect(statuses.every((s) => s === 200)).toBe(true);
      expect(
        await metricValue(ctx.registry, 'hyperscale_like_writes_total', { path: 'mysql_fallback' }),
      ).toBeGreaterThanOrEqual(statuses.length);
      expect(await metricValue(ctx.registry, 'hyperscale_breaker_state', { name: 'kafka:likes' })).toBe(2);

      // Every acknowledged like is in MySQL right now (synchronous fallback), counts exact.
      for (const post of posts) {
        const expectedUsers = users.filter((u) => acknowledged.get(`${post}/${u}`) === true).sort();
        expect(await ctx.mysqlState(post)).toEqual({
          count: expectedUsers.length,
          rows: expectedUsers.length,
          users: expectedUsers,
        });
        // Reads during the outage are right too (served from MySQL, the post is cold).
        const read = await ctx.app.inject({
          method: 'GET',
          url: `/v1/posts/${post}/likes`,
          headers: headers.get('ku2'),
        });
        expect(read.json()).toEqual({
          postId: post,
          count: expectedUsers.length,
          liked: expectedUsers.includes('ku2'),
        });
      }
    } finally {
      const t0 = performance.now();
      await startServer('kafka');
      console.log(`kafka restarted in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }

    // Back to the fast path: the breaker closes through a half-open probe, the writer drains.
    if (writer?.exited()) writer = await ctx.startWriter();
    await sleep(2_500);
    let back = 0;
    for (let i = 0; i < 30 && back === 0; i += 1) {
      const res = await ctx.app.inject({
        method: 'PUT',
        url: `/v1/posts/${posts[9]}/like`,
        headers: headers.get('ku0'),
      });
      expect(res.statusCode).toBe(200);
      back =
        (await metricValue(ctx.registry, 'hyperscale_breaker_state', { name: 'kafka:likes' })) === 0 ? 1 : 0;
      if (back === 0) await sleep(500);
    }
    expect(back).toBe(1);
    await ctx.waitDrained(90_000);
    for (const post of posts) {
      const mysql = await ctx.mysqlState(post);
      expect(mysql.count).toBe(mysql.rows);
      const read = await ctx.app.inject({
        method: 'GET',
        url: `/v1/posts/${post}/likes`,
        headers: headers.get('ku2'),
      });
      expect(read.json<{ count: number }>().count).toBe(mysql.count);
      expect(await ctx.redisState(post)).toEqual({ count: mysql.count, users: mysql.users });
    }
  });

  it('a fallback write is not undone by older events Kafka acknowledged and the writer had not applied yet', async () => {
    const post = ctx.post('order');
    const users = ['or0', 'or1', 'or2'];
    const headers = new Map(await Promise.all(users.map(async (u) => [u, await ctx.auth(u)] as const)));
    const write = async (user: string, liked: boolean) => {
      const res = await ctx.app.inject({
        method: liked ? 'PUT' : 'DELETE',
        url: `/v1/posts/${post}/like`,
        headers: headers.get(user),
      });
      expect(res.statusCode, res.body).toBe(200);
    };
    await write('or2', true);
    await ctx.waitDrained();
    // The writer stops: from here on Kafka acknowledges events that MySQL does not have yet.
    await writer?.stop();
    writer = undefined;
    const viaRedis = () => metricValue(ctx.registry, 'hyperscale_like_writes_total', { path: 'redis' });
    const before = await viaRedis();
    await write('or0', true);
    await write('or1', true);
    await write('or1', false);
    await write('or2', false);
    expect(await viaRedis()).toBe(before + 4);

    const viaFallback = () =>
      metricValue(ctx.registry, 'hyperscale_like_writes_total', { path: 'mysql_fallback' });
    const fallbacks = await viaFallback();
    try {
      await stopServer('kafka', 'KILL');
      // Each user's newest request goes to MySQL directly and must be the one that stays.
      await write('or0', false);
      await write('or1', true);
      await write('or2', true);
    } finally {
      await startServer('kafka');
    }
    expect(await viaFallback()).toBe(fallbacks + 3);
    const marks = await ctx.pools.primary.select<{ user_id: string }>(
      'SELECT user_id FROM like_fallback_marks WHERE post_id = ? ORDER BY user_id',
      [post],
    );
    expect(marks.map((m) => m.user_id)).toEqual(users);

    writer = await ctx.startWriter();
    await ctx.waitDrained(90_000);
    const expected = ['or1', 'or2'];
    const mysql = await ctx.mysqlState(post);
    expect(mysql).toEqual({ count: 2, rows: 2, users: expected });
    for (const user of users) {
      const read = await ctx.app.inject({
        method: 'GET',
        url: `/v1/posts/${post}/likes`,
        headers: headers.get(user),
      });
      expect(read.json()).toEqual({ postId: post, count: 2, liked: expected.includes(user) });
    }
    expect(await ctx.redisState(post)).toEqual({ count: 2, users: expected });

    // Leave the fast path closed again for the next test: a like on another post probes Kafka.
    const probe = ctx.post('order-probe');
    const breaker = () => metricValue(ctx.registry, 'hyperscale_breaker_state', { name: 'kafka:likes' });
    for (let i = 0; i < 30 && (await breaker()) !== 0; i += 1) {
      await sleep(500);
      await ctx.app.inject({ method: 'PUT', url: `/v1/posts/${probe}/like`, headers: headers.get('or0') });
    }
    expect(await breaker()).toBe(0);
  }, 120_000);

  it('Kafka frozen (SIGSTOP): each user ends in the state of their last acknowledged request, though sends that hung are appended when the broker resumes', async () => {
    const post = ctx.post('frozen');
    const users = ['fz0', 'fz1', 'fz2', 'fz3'];
    const headers = new Map(await Promise.all(users.map(async (u) => [u, await ctx.auth(u)] as const)));
    const write = async (user: string, liked: boolean) =>
      ctx.app.inject({
        method: liked ? 'PUT' : 'DELETE',
        url: `/v1/posts/${post}/like`,
        headers: headers.get(user),
      });
    expect((await write('fz0', true)).statusCode).toBe(200);
    await ctx.waitDrained();
    const lastAcknowledged = new Map<string, boolean>([['fz0', true]]);
    const answers: string[] = [];
    await freezeServer('kafka');
    try {
      // Likes whose sends hang until the pod gives up on them (kafkaTimeoutMs); the broker still
      // holds them and appends them when it resumes.
      await Promise.all(
        users.slice(1).map(async (user) => {
          const res = await write(user, true);
          answers.push(`${user} like ${res.statusCode}`);
          if (res.statusCode === 200) lastAcknowledged.set(user, true);
        }),
      );
      // Then each of them unlikes, and is acknowledged (the breaker is open: MySQL directly).
      for (const user of users.slice(1)) {
        const res = await write(user, false);
        answers.push(`${user} unlike ${res.statusCode}`);
        if (res.statusCode === 200) lastAcknowledged.set(user, false);
      }
    } finally {
      await resumeServer('kafka');
    }
    console.info(`[kafka-frozen] ${answers.join(', ')}`);
    if (writer?.exited()) writer = await ctx.startWriter();
    await ctx.waitDrained(90_000);
    const expected = users.filter((u) => lastAcknowledged.get(u) === true).sort();
    const mysql = await ctx.mysqlState(post);
    expect(mysql.users, answers.join(', ')).toEqual(expected);
    expect(mysql.count).toBe(mysql.rows);
    // And the service (Redis, re-warmed after the fallback writes) answers the same.
    for (const user of users) {
      const read = await ctx.app.inject({
        method: 'GET',
        url: `/v1/posts/${post}/likes`,
        headers: headers.get(user),
      });
      expect(read.json()).toEqual({ postId: post, count: expected.length, liked: expected.includes(user) });
    }
  }, 120_000);
});
