import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Health } from '../health.js';
import { buildOpsServer } from './ops-server.js';

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
    const silent = await new Promise<Socket>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(socket));
      socket.once('error', reject);
    });
    silent.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => silent.once('close', () => resolve()));

    const started = Date.now();
    await app.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    await closed;
  });
});
