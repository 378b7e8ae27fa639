import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { openSilentConnection, untilServerCloses } from '../../../../hack/testing/silent-connection.js';
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
    const silent = await openSilentConnection(port);
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
      const { received, ms } = await untilServerCloses(await openSilentConnection(port), started);
      expect(received).toMatch(/^HTTP\/1\.1 408 /);
      expect(ms).toBeLessThan(2_500);
    } finally {
      await app.close();
    }
  });
});
