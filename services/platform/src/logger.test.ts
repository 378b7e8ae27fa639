import { Writable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { describe, expect, it } from 'vitest';
import { createLogger, fastifyLoggingOptions, requestIdFor } from './logger.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { lines, destination };
}

describe('createLogger', () => {
  it('writes JSON with the service name and redacts secrets', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: 'like', destination });
    logger.info(
      {
        req: { headers: { authorization: 'Bearer abc', 'user-agent': 'curl' } },
        db: { password: 'pw', host: 'h' },
      },
      'hello',
    );
    const line = lines[0]!;
    expect(line['service']).toBe('like');
    expect(line['level']).toBe('info');
    expect(line['msg']).toBe('hello');
    expect(JSON.stringify(line)).not.toContain('Bearer abc');
    expect(JSON.stringify(line)).not.toContain('"pw"');
    expect(line['db']).toEqual({ password: '[redacted]', host: 'h' });
  });
});

describe('fastifyLoggingOptions', () => {
  it('gives each request a logger that writes with its request id, and redacts, only when used', async () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: 'like', destination });
    let children = 0;
    const child = logger.child.bind(logger);
    logger.child = ((...args: Parameters<typeof child>) => {
      children += 1;
      return child(...args);
    }) as typeof logger.child;
    const app = Fastify(fastifyLoggingOptions(logger));
    app.get('/quiet', async () => ({ ok: true }));
    app.get('/loud', async (request) => {
      (request.log as FastifyBaseLogger).warn({ token: 'sekret', n: 1 }, 'something to say');
      return { ok: true };
    });
    await app.ready();
    const atStart = children;
    await app.inject({ method: 'GET', url: '/quiet', headers: { 'x-request-id': 'quiet-1' } });
    await app.inject({ method: 'GET', url: '/quiet', headers: { 'x-request-id': 'quiet-2' } });
    expect(children - atStart).toBe(0);
    await app.inject({ method: 'GET', url: '/loud', headers: { 'x-request-id': 'loud-1' } });
    expect(children - atStart).toBe(1);
    const line = lines.find((l) => l['msg'] === 'something to say');
    expect(line).toMatchObject({
      reqId: 'loud-1',
      level: 'warn',
      service: 'like',
      n: 1,
      token: '[redacted]',
    });
    await app.close();
  });
});

describe('requestIdFor', () => {
  const request = (value?: string) =>
    ({ headers: value === undefined ? {} : { 'x-request-id': value } }) as IncomingMessage;

  it('keeps a sane incoming id', () => {
    expect(requestIdFor(request('abc-123'))).toBe('abc-123');
  });

  it('replaces a missing or unsafe id with a UUID', () => {
    expect(requestIdFor(request())).toMatch(/^[0-9a-f-]{36}$/);
    expect(requestIdFor(request('bad id\n{"level":"fatal"}'))).toMatch(/^[0-9a-f-]{36}$/);
  });
});
