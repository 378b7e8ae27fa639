/**
 * The HTTP contract of every route (app.inject against the real stack): responses, auth, compat
 * rules, idempotency, docs — and that bad input gets a 4xx problem+json naming the field while
 * NOTHING is written (no Redis keys, no Kafka message, no MySQL row).
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken, waitForRedisReady } from '@hyperscale/platform';
import { createTestContext, metricValue, type Child, type TestContext } from './helpers.js';

let ctx: TestContext;

let writer: Child;

beforeAll(async () => {
  ctx = await createTestContext('api');
  writer = await ctx.startWriter();
});

afterAll(async () => {
  await writer?.stop();
  await ctx?.close();
});

type Injected = Awaited<ReturnType<TestContext['app']['inject']>>;

function expectProblem(res: Injected, status: number, field?: string) {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json<{ status: number; type: string; title: string; field?: string }>();
  expect(body.status).toBe(status);
  expect(body.type).toMatch(/^https:\/\//);
  if (field !== undefined) expect(body.field).toBe(field);
  return body;
}

describe('v1 routes', () => {
  it('likes, reads, unlikes; liking twice answers changed:false and count stays 1', async () => {
    const post = ctx.post('v1');
    const alice = await ctx.auth('alice');
    const bob = await ctx.auth('bob');

    const first = await ctx.app.inject({ method: 'PUT', url: `/v1/posts/${post}/like`, headers: alice });
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toEqual({ postId: post, liked: true, changed: true, count: 1 });
    expect(first.headers['x-request-id']).toBeTruthy();

    const again = await ctx.app.inject({ method: 'PUT', url: `/v1/posts/${post}/like`, headers: alice });
    expect(again.json()).toEqual({ postId: post, liked: true, changed: false, count: 1 });

    const byBob = await ctx.app.inject({ method: 'GET', url: `/v1/posts/${post}/likes`, headers: bob });
    expect(byBob.json()).toEqual({ postId: post, count: 1, liked: false });
    const byAlice = await ctx.app.inject({ method: 'GET', url: `/v1/posts/${post}/likes`, headers: alice });
    expect(byAlice.json()).toEqual({ postId: post, count: 1, liked: true });

    const unlike = await ctx.app.inject({ method: 'DELETE', url: `/v1/posts/${post}/like`, headers: alice });
    expect(unlike.json()).toEqual({ postId: post, liked: false, changed: true, count: 0 });
    const unlikeAgain = await ctx.app.inject({
      method: 'DELETE',
      url: `/v1/posts/${post}/like`,
      headers: alice,
    });
    expect(unlikeAgain.json()).toEqual({ postId: post, liked: false, changed: false, count: 0 });

    expect(await ctx.redisState(post)).toEqual({ count: 0, users: [] });
    expect(
      await metricValue(ctx.registry, 'hyperscale_like_writes_total', { path: 'redis' }),
    ).toBeGreaterThanOrEqual(4);
  });

  it('produces one event per acknowledged write, even when nothing changed', async () => {
    const post = ctx.post('events');
    const before = await ctx.topicEnd();
    for (let i = 0; i < 3; i += 1) {
      const res = await ctx.app.inject({
        method: 'PUT',
        url: `/v1/posts/${post}/like`,
        headers: await ctx.auth('carol'),
      });
      expect(res.statusCode).toBe(200);
    }
    expect((await ctx.topicEnd()) - before).toBe(3n);
  });

  it('batchGet returns counts and the caller’s likes in request order, cold posts warmed', async () => {
    const posts = [ctx.post('b1'), ctx.post('b2'), ctx.post('b3'), ctx.post('b-never')];
    const dave = await ctx.auth('dave');
    await ctx.app.inject({ method: 'PUT', url: `/v1/posts/${posts[0]}/like`, headers: dave });
    await ctx.app.inject({
      method: 'PUT',
      url: `/v1/posts/${posts[2]}/like`,
      headers: await ctx.auth('erin'),
    });
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/v1/likes:batchGet',
      headers: dave,
      payload: { postIds: posts },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      results: [
        { postId: posts[0], count: 1, liked: true },
        { postId: posts[1], count: 0, liked: false },
        { postId: posts[2], count: 1, liked: false },
        { postId: posts[3], count: 0, liked: false },
      ],
    });
    // The never-liked posts are warm now (count key 0).
    expect(await ctx.redisState(posts[3]!)).toEqual({ count: 0, users: [] });
  });

  it('a batch of 100 posts spread over both shards answers in one call', async () => {
    const posts = Array.from({ length: 100 }, (_, i) => ctx.post(`many-${i}`));
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/v1/likes:batchGet',
      headers: await ctx.auth('frank'),
      payload: { postIds: posts },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ results: unknown[] }>().results).toHaveLength(100);
  });
});

describe('compat routes', () => {
  it('like, count, has-liked, unlike as in the seed API', async () => {
    const post = ctx.post('compat');
    const gina = await ctx.auth('gina');
    const like = await ctx.app.inject({
      method: 'POST',
      url: '/api/like',
      headers: gina,
      payload: { userId: 'gina', postId: post },
    });
    expect(like.statusCode, like.body).toBe(200);
    expect(like.json()).toEqual({ message: '按讚成功', liked: true, changed: true, count: 1 });
    const twice = await ctx.app.inject({
      method: 'POST',
      url: '/api/like',
      headers: gina,
      payload: { userId: 'gina', postId: post },
    });
    expect(twice.json()).toEqual({ message: '按讚成功', liked: true, changed: false, count: 1 });

    const count = await ctx.app.inject({ method: 'GET', url: `/api/like-count/${post}`, headers: gina });
    expect(count.json()).toEqual({ count: 1 });
    const has = await ctx.app.inject({ method: 'GET', url: `/api/has-liked/gina/${post}`, headers: gina });
    expect(has.json()).toEqual({ liked: true });

    const unlike = await ctx.app.inject({
      method: 'POST',
      url: '/api/unlike',
      headers: gina,
      payload: { userId: 'gina', postId: post },
    });
    expect(unlike.json()).toEqual({ message: '取消按讚成功', liked: false, changed: true, count: 0 });
  });

  it('refuses a userId other than the token subject with 403 naming the field, writing nothing', async () => {
    const post = ctx.post('compat-403');
    const end = await ctx.topicEnd();
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/api/like',
      headers: await ctx.auth('mallory'),
      payload: { userId: 'victim', postId: post },
    });
    expectProblem(res, 403, 'body.userId');
    const has = await ctx.app.inject({
      method: 'GET',
      url: `/api/has-liked/victim/${post}`,
      headers: await ctx.auth('mallory'),
    });
    expectProblem(has, 403, 'params.userId');
    expect(await ctx.redisExists(post)).toBe(0);
    expect(await ctx.topicEnd()).toBe(end);
  });

  it('dev mode lets a token act for another user (the token is still required)', async () => {
    const dev = await ctx.buildApp({ devMode: true });
    const post = ctx.post('dev');
    const res = await dev.inject({
      method: 'POST',
      url: '/api/like',
      headers: await ctx.auth('tester'),
      payload: { userId: 'someone', postId: post },
    });
    expect(res.statusCode, res.body).toBe(200);
    const noToken = await dev.inject({
      method: 'POST',
      url: '/api/like',
      payload: { userId: 'someone', postId: post },
    });
    expectProblem(noToken, 401);
    const has = await dev.inject({
      method: 'GET',
      url: `/api/has-liked/someone/${post}`,
      headers: await ctx.auth('tester'),
    });
    expect(has.json()).toEqual({ liked: true });
  });
});

describe('bad input gets a 4xx problem and writes nothing', () => {
  const long = 'x'.repeat(65);
  const cases: {
    name: string;
    method: 'PUT' | 'POST' | 'DELETE' | 'GET';
    url: string;
    payload?: unknown;
    headers?: Record<string, string>;
    status: number;
    field?: string;
    auth?: 'none' | 'bad' | 'expired' | 'wrongsig';
  }[] = [
    {
      name: 'oversized post id (65 chars)',
      method: 'PUT',
      url: `/v1/posts/${long}/like`,
      status: 400,
      field: 'params.postId',
    },
    {
      name: 'malformed post id',
      method: 'PUT',
      url: '/v1/posts/bad%20id!/like',
      status: 400,
      field: 'params.postId',
    },
    {
      name: 'malformed post id on delete',
      method: 'DELETE',
      url: '/v1/posts/%7Bx%7D/like',
      status: 400,
      field: 'params.postId',
    },
    {
      name: 'compat: missing postId',
      method: 'POST',
      url: '/api/like',
      payload: { userId: 'ivan' },
      status: 400,
      field: 'body.postId',
    },
    {
      name: 'compat: oversized userId',
      method: 'POST',
      url: '/api/like',
      payload: { userId: long, postId: 'p' },
      status: 400,
      field: 'body.userId',
    },
    {
      name: 'compat: unknown property',
      method: 'POST',
      url: '/api/unlike',
      payload: { userId: 'ivan', postId: 'p', extra: 1 },
      status: 400,
      field: 'body.extra',
    },
    {
      name: 'compat: number as id',
      method: 'POST',
      url: '/api/like',
      payload: { userId: 'ivan', postId: 7 },
      status: 400,
      field: 'body.postId',
    },
    {
      name: 'bad JSON',
      method: 'POST',
      url: '/api/like',
      payload: '{"userId": "ivan", ',
      headers: { 'content-type': 'application/json' },
      status: 400,
      field: 'body',
    },
    {
      name: 'wrong content type',
      method: 'POST',
      url: '/api/like',
      payload: 'userId=ivan&postId=p',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      status: 415,
      field: 'headers.content-type',
    },
    {
      name: 'batch over 100',
      method: 'POST',
      url: '/v1/likes:batchGet',
      payload: { postIds: Array.from({ length: 101 }, (_, i) => `p${i}`) },
      status: 400,
      field: 'body.postIds',
    },
    {
      name: 'batch with duplicates',
      method: 'POST',
      url: '/v1/likes:batchGet',
      payload: { postIds: ['a', 'b', 'a'] },
      status: 400,
      field: 'body.postIds',
    },
    {
      name: 'batch empty',
      method: 'POST',
      url: '/v1/likes:batchGet',
      payload: { postIds: [] },
      status: 400,
      field: 'body.postIds',
    },
    {
      name: 'batch with a bad id',
      method: 'POST',
      url: '/v1/likes:batchGet',
      payload: { postIds: ['ok', 'no way'] },
      status: 400,
      field: 'body.postIds.1',
    },
    { name: 'missing token', method: 'PUT', url: '/v1/posts/p1/like', status: 401, auth: 'none' },
    { name: 'garbage token', method: 'PUT', url: '/v1/posts/p1/like', status: 401, auth: 'bad' },
    { name: 'expired token', method: 'PUT', url: '/v1/posts/p1/like', status: 401, auth: 'expired' },
    {
      name: 'token signed with another secret',
      method: 'POST',
      url: '/api/like',
      payload: { userId: 'ivan', postId: 'p1' },
      status: 401,
      auth: 'wrongsig',
    },
  ];

  it.each(cases)('$name → $status', async (c) => {
    await ctx.waitDrained();
    const endBefore = await ctx.topicEnd();
    const rowsBefore = await ctx.mysqlRowCount();
    let headers: Record<string, string> = { ...(c.headers ?? {}) };
    if (c.auth === undefined) headers = { ...headers, ...(await ctx.auth('ivan')) };
    else if (c.auth === 'bad') headers.authorization = 'Bearer not.a.token';
    else if (c.auth === 'expired') {
      const token = await signDevToken({ secret: ctx.secret, userId: 'ivan', ttlSeconds: -60 });
      headers.authorization = `Bearer ${token}`;
    } else if (c.auth === 'wrongsig') {
      const token = await signDevToken({ secret: 'another-secret-another-secret-1234', userId: 'ivan' });
      headers.authorization = `Bearer ${token}`;
    }
    const res = await ctx.app.inject({
      method: c.method,
      url: c.url,
      headers,
      ...(c.payload === undefined
        ? {}
        : { payload: typeof c.payload === 'string' ? c.payload : JSON.stringify(c.payload) }),
      ...(c.payload !== undefined && c.headers?.['content-type'] === undefined
        ? { headers: { ...headers, 'content-type': 'application/json' } }
        : {}),
    });
    expectProblem(res, c.status, c.field);
    expect(await ctx.topicEnd()).toBe(endBefore);
    expect(await ctx.mysqlRowCount()).toBe(rowsBefore);
    for (const post of ['p', 'p1', 'ok', 'a', 'b']) expect(await ctx.redisExists(post)).toBe(0);
  });

  it('a body over the limit gets 413', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/v1/likes:batchGet',
      headers: { ...(await ctx.auth('ivan')), 'content-type': 'application/json' },
      payload: JSON.stringify({ postIds: ['a'], pad: 'x'.repeat(70_000) }),
    });
    expectProblem(res, 413, 'body');
  });

  it('an unknown route gets a 404 problem', async () => {
    expectProblem(await ctx.app.inject({ method: 'GET', url: '/v1/nope' }), 404);
  });
});

describe('admin rewarm', () => {
  it('needs x-admin-token: 401 without, 403 when wrong', async () => {
    expectProblem(await ctx.app.inject({ method: 'POST', url: '/admin/v1/likes:rewarm', payload: {} }), 401);
    const wrong = await ctx.app.inject({
      method: 'POST',
      url: '/admin/v1/likes:rewarm',
      headers: { 'x-admin-token': 'not-the-admin-token' },
      payload: {},
    });
    expectProblem(wrong, 403, 'headers.x-admin-token');
    // A user bearer token is not an admin token.
    const user = await ctx.app.inject({
      method: 'POST',
      url: '/admin/v1/likes:rewarm',
      headers: await ctx.auth('ivan'),
      payload: {},
    });
    expectProblem(user, 401);
  });

  it('rewarms chosen posts from MySQL (after the writer has them), and everything', async () => {
    const post = ctx.post('rewarm');
    {
      await ctx.app.inject({ method: 'PUT', url: `/v1/posts/${post}/like`, headers: await ctx.auth('judy') });
      // Rewarm right after the writes: the warm must wait for the writer to apply both events.
      await ctx.app.inject({ method: 'PUT', url: `/v1/posts/${post}/like`, headers: await ctx.auth('kim') });
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/admin/v1/likes:rewarm',
        headers: { 'x-admin-token': ctx.adminToken },
        payload: { postIds: [post] },
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({ scope: 'posts', invalidated: 1, warmed: 1 });
      expect(await ctx.redisState(post)).toEqual({ count: 2, users: ['judy', 'kim'] });
      expect(await ctx.mysqlState(post)).toEqual({ count: 2, rows: 2, users: ['judy', 'kim'] });

      const all = await ctx.app.inject({
        method: 'POST',
        url: '/admin/v1/likes:rewarm',
        headers: { 'x-admin-token': ctx.adminToken },
      });
      expect(all.statusCode, all.body).toBe(200);
      expect(all.json<{ scope: string; invalidated: number }>().scope).toBe('all');
      expect(all.json<{ invalidated: number }>().invalidated).toBeGreaterThan(0);
      expect(await ctx.redisExists(post)).toBe(0);
      const read = await ctx.app.inject({
        method: 'GET',
        url: `/v1/posts/${post}/likes`,
        headers: await ctx.auth('kim'),
      });
      expect(read.json()).toEqual({ postId: post, count: 2, liked: true });
    }
  });
});

describe('docs, CORS, rate limits', () => {
  it('serves the OpenAPI document and the Swagger UI without a token', async () => {
    const spec = await ctx.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(spec.statusCode).toBe(200);
    const doc = spec.json<{ openapi: string; paths: Record<string, unknown> }>();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/posts/{postId}/like',
        '/v1/posts/{postId}/likes',
        '/v1/likes:batchGet',
        '/api/like',
        '/api/unlike',
        '/api/like-count/{postId}',
        '/api/has-liked/{userId}/{postId}',
        '/admin/v1/likes:rewarm',
      ]),
    );
    const docs = await ctx.app.inject({ method: 'GET', url: '/docs/' });
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toContain('swagger-ui');
    expect(docs.headers['content-security-policy']).toContain("script-src 'self'");
    const bundle = await ctx.app.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js' });
    expect(bundle.statusCode).toBe(200);
  });

  it('answers CORS preflights only for allowed origins', async () => {
    const app = await ctx.buildApp({ corsOrigins: ['https://app.example'] });
    const ok = await app.inject({
      method: 'OPTIONS',
      url: '/v1/likes:batchGet',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example');
    const other = await app.inject({
      method: 'OPTIONS',
      url: '/v1/likes:batchGet',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    const none = await ctx.app.inject({
      method: 'GET',
      url: '/openapi.json',
      headers: { origin: 'https://app.example' },
    });
    expect(none.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('limits per user and per IP, counts shared through Redis (429 problem with Retry-After)', async () => {
    const limitRedis = ctx.shards[0]!.redis.duplicate();
    try {
      await waitForRedisReady(limitRedis, 10_000);
      const suffix = ctx.runId;
      const app = await buildLimited(limitRedis, 3, 100);
      const post = ctx.post('limited');
      const who = `limited-${suffix}`;
      const headers = await ctx.auth(who);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i += 1) {
        statuses.push(
          (await app.inject({ method: 'GET', url: `/v1/posts/${post}/likes`, headers })).statusCode,
        );
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      const limited = await app.inject({ method: 'GET', url: `/v1/posts/${post}/likes`, headers });
      expectProblem(limited, 429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      // Another user from the same IP is not limited by the first user's count.
      const other = await app.inject({
        method: 'GET',
        url: `/v1/posts/${post}/likes`,
        headers: await ctx.auth(`${who}-2`),
      });
      expect(other.statusCode).toBe(200);

      const ipApp = await buildLimited(limitRedis, 100, 2, `10.9.${Math.floor(Math.random() * 250)}.1`);
      const ipStatuses: number[] = [];
      for (let i = 0; i < 3; i += 1) {
        ipStatuses.push(
          (await ipApp.inject({ method: 'GET', url: '/openapi.json', remoteAddress: ipApp.ip })).statusCode,
        );
      }
      expect(ipStatuses).toEqual([200, 200, 429]);
    } finally {
      limitRedis.disconnect();
    }
  });

  async function buildLimited(redis: Redis, perUser: number, perIp: number, ip = '127.0.0.1') {
    const { buildApp } = await import('../src/app.js');
    const { TokenVerifier } = await import('@hyperscale/platform');
    const app = await buildApp({
      settings: {
        bodyLimitBytes: 65_536,
        requestTimeoutMs: 10_000,
        adminToken: ctx.adminToken,
        devMode: false,
        rateLimits: { perIp, perUser, windowMs: 60_000, syncMs: 100 },
        corsOrigins: [],
        store: {} as never,
      },
      logger: (await import('./helpers.js')).logger,
      registry: new (await import('prom-client')).Registry(),
      shards: ctx.shards,
      router: ctx.router,
      producer: ctx.producer,
      highWatermarks: (t) => ctx.admin.fetchTopicOffsets(t),
      verifier: new TokenVerifier({ hs256Secret: ctx.secret }),
      rateLimitRedis: redis,
      store: ctx.store,
    });
    await app.ready();
    return Object.assign(app, { ip });
  }
});
