import { Writable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createLogger, requestIdFor } from './logger.js';

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
