import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Health } from '../health.js';
import { buildOpsServer } from './ops-server.js';

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('buildOpsServer', () => {
  it('closes at once although a client holds a connection open without a request', async () => {
    const app = buildOpsServer({
      registry: new Registry(),
      health: new Health(),
      logger: pino({ level: 'silent' }),
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    // A TCP probe or a scraper that connected and stalled.
    const silent = await openSocket(port);
    silent.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => silent.once('close', () => resolve()));

    const started = Date.now();
    await app.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    await closed;
  });

  it('answers 408 and closes a connection that sends nothing, soon after the request timeout', async () => {
    const app = buildOpsServer({
      registry: new Registry(),
      health: new Health(),
      logger: pino({ level: 'silent' }),
      requestTimeoutMs: 500,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    try {
      const started = Date.now();
      const silent = await openSocket(port);
      let received = '';
      silent.on('data', (chunk: Buffer) => (received += chunk.toString()));
      silent.on('error', () => undefined);
      await new Promise<void>((resolve) => silent.once('close', () => resolve()));
      expect(received).toMatch(/^HTTP\/1\.1 408 /);
      expect(Date.now() - started).toBeLessThan(2_500);
    } finally {
      await app.close();
    }
  });
});
