import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { counterKeys } from '../src/keys.js';
import { createTestContext, ownerOf, type TestContext } from './helpers.js';

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext('api');
});
afterAll(async () => {
  await ctx?.close();
});

async function post(url: string, body: unknown, headers: Record<string, string>) {
  return ctx.app.inject({
    method: 'POST',
    url,
    headers,
    ...(body === undefined ? {} : { payload: body as object }),
  });
}

describe('counter API contract', () => {
  it('increments (default 1 and explicit delta), decrements, reads, batchGets', async () => {
    const name = ctx.name('contract');
    const auth = await ctx.auth();
    const first = await post(`/v1/counters/${name}/increment`, undefined, auth);
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toEqual({ name, value: 1 });
    expect((await post(`/v1/counters/${name}/increment`, { delta: 41 }, auth)).json()).toEqual({
      name,
      value: 42,
    });
    expect((await post(`/v1/counters/${name}/decrement`, { delta: 2 }, auth)).json()).toEqual({
      name,
      value: 40,
    });
    expect((await post(`/v1/counters/${name}/decrement`, {}, auth)).json()).toEqual({ name, value: 39 });

    const reader = await ctx.auth('alice', []);
    const got = await ctx.app.inject({ method: 'GET', url: `/v1/counters/${name}`, headers: reader });
    expect(got.statusCode).toBe(200);
    expect(got.json()).toEqual({ name, value: 39 });

    const other = ctx.name('never-written');
    const batch = await post('/v1/counters:batchGet', { names: [name, other] }, reader);
    expect(batch.statusCode, batch.body).toBe(200);
    expect(batch.json()).toEqual({
      results: [
        { name, value: 39 },
        { name: other, value: 0 },
      ],
    });

    // It lives on the shard the slot map names, under the slot-tagged key.
    expect(await ctx.redisValue(name, ownerOf(ctx, name))).toBe(39);
    expect(counterKeys(name).value).toMatch(/^ctr:\{\d+\}:/);
  });

  it('requires a token, and the counters:write scope to write', async () => {
    const name = ctx.name('auth');
    const none = await post(`/v1/counters/${name}/increment`, {}, {});
    expect(none.statusCode).toBe(401);
    expect(none.headers['content-type']).toContain('application/problem+json');
    const noScope = await post(`/v1/counters/${name}/increment`, {}, await ctx.auth('bob', []));
    expect(noScope.statusCode).toBe(403);
    expect((await ctx.app.inject({ method: 'GET', url: `/v1/counters/${name}` })).statusCode).toBe(401);
    expect(await ctx.mysqlValue(name)).toBe(0);
    expect(await ctx.redisValue(name, ownerOf(ctx, name))).toBeNull();
  });

  it.each([
    ['zero', { delta: 0 }, 'body.delta'],
    ['negative', { delta: -1 }, 'body.delta'],
    ['fractional', { delta: 1.5 }, 'body.delta'],
    ['over 1e9', { delta: 1_000_000_001 }, 'body.delta'],
    ['a string', { delta: 'ten' }, 'body.delta'],
    ['unknown field', { delta: 1, extra: true }, 'body'],
  ])('rejects a delta that is %s with 400 naming the field, writing nothing', async (_, body, field) => {
    const name = ctx.name(`bad-${_.replace(/\W/g, '')}`);
    const res = await post(`/v1/counters/${name}/increment`, body, await ctx.auth());
    expect(res.statusCode, res.body).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(String(res.json<{ field?: string }>().field)).toContain(field);
    expect(await ctx.redisValue(name, ownerOf(ctx, name))).toBeNull();
    expect(await ctx.mysqlValue(name)).toBe(0);
  });

  it('rejects bad names (too long, bad characters) with 400 naming params.name', async () => {
    const auth = await ctx.auth();
    for (const bad of ['x'.repeat(201), 'a%20b', 'caf%C3%A9', 'a%7Bb%7D']) {
      const res = await post(`/v1/counters/${bad}/increment`, {}, auth);
      expect(res.statusCode, bad).toBe(400);
      expect(res.json<{ field?: string }>().field).toContain('name');
    }
    const ok = await post(`/v1/counters/${'y'.repeat(200)}/increment`, {}, auth);
    expect(ok.statusCode).toBe(200);
    await ctx.app.inject({ method: 'POST', url: `/v1/counters/${'y'.repeat(200)}/decrement`, headers: auth });
  });

  it('rejects batchGet with more than 100 names, duplicates or none', async () => {
    const auth = await ctx.auth();
    const many = Array.from({ length: 101 }, (_, i) => ctx.name(`b${i}`));
    for (const names of [many, [ctx.name('d'), ctx.name('d')], []]) {
      const res = await post('/v1/counters:batchGet', { names }, auth);
      expect(res.statusCode).toBe(400);
      expect(res.json<{ field?: string }>().field).toContain('names');
    }
  });

  it('serves the OpenAPI document and Swagger UI', async () => {
    const doc = await ctx.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(doc.statusCode).toBe(200);
    const paths = Object.keys(doc.json<{ paths: Record<string, unknown> }>().paths);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/v1/counters/{name}/increment',
        '/v1/counters/{name}/decrement',
        '/v1/counters/{name}',
      ]),
    );
    expect((await ctx.app.inject({ method: 'GET', url: '/docs/' })).statusCode).toBe(200);
  });
});

describe('write-behind and warming', () => {
  it('the writer applies the deltas to MySQL; a cold counter is warmed from MySQL behind the writer', async () => {
    const writer = await ctx.startWriter();
    const name = ctx.name('warm');
    const auth = await ctx.auth();
    for (let i = 0; i < 20; i += 1) await post(`/v1/counters/${name}/increment`, { delta: 5 }, auth);
    await ctx.waitDrained();
    expect(await ctx.mysqlValue(name)).toBe(100);

    // Drop the Redis copy: the next increment warms from MySQL (single-flight) and continues.
    const shard = ctx.shard(ownerOf(ctx, name));
    const keys = counterKeys(name);
    await shard.redis.del(keys.value, keys.pending);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => post(`/v1/counters/${name}/increment`, {}, auth)),
    );
    expect(results.every((r) => r.statusCode === 200)).toBe(true);
    const values = results.map((r) => r.json<{ value: number }>().value).sort((a, b) => a - b);
    expect(values[0]).toBe(101);
    expect(values.at(-1)).toBe(150);
    expect(new Set(values).size).toBe(50);
    await ctx.waitDrained();
    expect(await ctx.mysqlValue(name)).toBe(150);
    expect(await ctx.redisValue(name, shard.shard)).toBe(150);
    await writer.stop();
  });
  it('coalesces concurrent increments of one counter: one event per group, each caller its own value', async () => {
    const writer = await ctx.startWriter();
    const name = ctx.name('coalesced');
    const auth = await ctx.auth();
    expect((await post(`/v1/counters/${name}/increment`, { delta: 10 }, auth)).statusCode).toBe(200);
    const eventsBefore = await topicEnd();
    const groupsBefore = await groupCount();
    const results = await Promise.all([
      ...Array.from({ length: 60 }, () => post(`/v1/counters/${name}/increment`, { delta: 2 }, auth)),
      ...Array.from({ length: 20 }, () => post(`/v1/counters/${name}/decrement`, { delta: 1 }, auth)),
    ]);
    expect(results.every((r) => r.statusCode === 200)).toBe(true);
    const events = (await topicEnd()) - eventsBefore;
    const groups = (await groupCount()) - groupsBefore;
    // 80 requests, far fewer events: increments and decrements are grouped apart.
    expect(events).toBe(groups);
    expect(events).toBeGreaterThanOrEqual(2);
    expect(events).toBeLessThan(20);
    // Every increment answer is distinct, and the last value any caller saw is the final one.
    const increments = results.slice(0, 60).map((r) => r.json<{ value: number }>().value);
    expect(new Set(increments).size).toBe(60);
    await ctx.waitDrained();
    expect(await ctx.mysqlValue(name)).toBe(10 + 60 * 2 - 20);
    const read = await ctx.app.inject({ method: 'GET', url: `/v1/counters/${name}`, headers: auth });
    expect(read.json<{ value: number }>().value).toBe(110);
    await writer.stop();
  });
});

/** Messages in the test topic so far (sum of the partitions' high watermarks). */
async function topicEnd(): Promise<number> {
  const offsets = await ctx.admin.fetchTopicOffsets(ctx.topic);
  return offsets.reduce((sum, p) => sum + Number(p.high), 0);
}

/** Coalesced increments applied so far (observations of the group-size histogram). */
async function groupCount(): Promise<number> {
  const line = /^hyperscale_counter_increment_group_size_count (\d+)$/m.exec(await ctx.registry.metrics());
  return Number(line?.[1] ?? 0);
}
