import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBaseApp } from './base-app.js';
import { HttpProblem, serviceUnavailable } from './problem.js';
import { RedisTimeoutError } from '../redis/errors.js';
import { KafkaUnavailableError } from '../kafka/errors.js';

class DependencyDown extends Error {}

describe('base app: problem+json errors, request ids, security headers', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await createBaseApp({
      logger: pino({ level: 'silent' }),
      registry: new Registry(),
      bodyLimitBytes: 1_024,
      mapError: (error) =>
        error instanceof DependencyDown ? serviceUnavailable('redis is down', 2) : undefined,
    });
    app.post(
      '/v1/things/:id',
      {
        schema: {
          params: {
            type: 'object',
            properties: { id: { type: 'string', pattern: '^[a-z]{1,8}$' } },
            required: ['id'],
          },
          body: {
            type: 'object',
            properties: {
              items: { type: 'array', maxItems: 2, items: { type: 'string' } },
              userId: { type: 'string' },
            },
            required: ['userId'],
            additionalProperties: false,
          },
        },
      },
      async () => ({ ok: true }),
    );
    app.get('/conflict', async () => {
      throw new HttpProblem({ status: 409, slug: 'conflict', title: 'Conflict', detail: 'already there' });
    });
    app.get('/down', async () => {
      throw new DependencyDown('ECONNREFUSED 10.0.0.1:6379');
    });
    app.get('/redis-timeout', async () => {
      throw new RedisTimeoutError('no reply from 127.0.0.1:6379 within 500 ms', { shard: 'shard-0' });
    });
    app.get('/kafka-down', async () => {
      throw new KafkaUnavailableError('timeout', 'no ack within 3000 ms');
    });
    app.get('/boom', async () => {
      throw new Error('secret internal detail');
    });
    await app.ready();
  });
  afterAll(() => app.close());

  const post = (url: string, payload: string, contentType = 'application/json') =>
    app.inject({ method: 'POST', url, payload, headers: { 'content-type': contentType } });

  it('names a missing body field', async () => {
    const response = await post('/v1/things/abc', '{}');
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({ status: 400, field: 'body.userId' });
  });

  it('names a malformed path parameter', async () => {
    const response = await post('/v1/things/ABC123456', '{"userId":"u"}');
    expect(response.statusCode).toBe(400);
    expect(response.json().field).toBe('params.id');
  });

  it('names an oversized array', async () => {
    const response = await post('/v1/things/abc', '{"userId":"u","items":["a","b","c"]}');
    expect(response.json().field).toBe('body.items');
  });

  it('names an unexpected property', async () => {
    const response = await post('/v1/things/abc', '{"userId":"u","extra":1}');
    expect(response.statusCode).toBe(400);
    expect(response.json().field).toBe('body.extra');
  });

  it('rejects malformed JSON as a 400 on body', async () => {
    const response = await post('/v1/things/abc', '{"userId":');
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ field: 'body', title: 'Malformed request body' });
  });

  it('rejects a wrong content type with 415', async () => {
    const response = await post('/v1/things/abc', 'userId=u', 'application/x-www-form-urlencoded');
    expect(response.statusCode).toBe(415);
    expect(response.json().field).toBe('headers.content-type');
  });

  it('rejects a body over the limit with 413', async () => {
    const response = await post('/v1/things/abc', JSON.stringify({ userId: 'x'.repeat(2_000) }));
    expect(response.statusCode).toBe(413);
  });

  it('renders thrown problems as they are', async () => {
    const response = await app.inject('/conflict');
    expect(response.statusCode).toBe(409);
    expect(response.json()).toMatchObject({
      title: 'Conflict',
      detail: 'already there',
      instance: '/conflict',
    });
  });

  it('maps domain errors to 503 with Retry-After', async () => {
    const response = await app.inject('/down');
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('2');
    expect(response.body).not.toContain('10.0.0.1');
  });

  it('maps platform dependency failures to 503 by default, without leaking details', async () => {
    for (const url of ['/redis-timeout', '/kafka-down']) {
      const response = await app.inject(url);
      expect(response.statusCode).toBe(503);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.body).not.toContain('127.0.0.1');
      expect(response.body).not.toContain('3000 ms');
    }
  });

  it('hides the message of unknown errors', async () => {
    const response = await app.inject('/boom');
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain('secret internal detail');
  });

  it('echoes a request id and sets security headers', async () => {
    const response = await app.inject({ url: '/conflict', headers: { 'x-request-id': 'trace-1' } });
    expect(response.headers['x-request-id']).toBe('trace-1');
    expect(response.headers['x-content-type-options']).toBe('nosniff');
  });

  it('answers unknown routes with a problem', async () => {
    const response = await app.inject('/nope?x=1');
    expect(response.statusCode).toBe(404);
    expect(response.json().detail).toBe('No route GET /nope');
  });
});
