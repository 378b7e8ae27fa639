import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { openSilentConnection, untilServerCloses } from '../../../../hack/testing/silent-connection.js';
import { createBaseApp } from './base-app.js';

describe('createBaseApp close()', () => {
  it('does not wait for connections that never sent a request, and lets a request in flight finish', async () => {
    const app = await createBaseApp({ logger: pino({ level: 'silent' }), registry: new Registry() });
    app.get('/slow', async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      return { done: true };
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };

    // A pre-opened connection (as load balancers keep) that never sends anything.
    const silent = await openSilentConnection(port);
    const silentClosed = new Promise<void>((resolve) => silent.once('close', () => resolve()));
    // A request in flight when close() begins.
    const inFlight = fetch(`http://127.0.0.1:${port}/slow`);
    await new Promise((resolve) => setTimeout(resolve, 50));

    const started = Date.now();
    await app.close();
    const took = Date.now() - started;
    expect(took).toBeLessThan(2_000);
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ done: true });
    expect(response.headers.get('connection')).toBe('close');
    await silentClosed;
  });
});

describe('createBaseApp request timeout', () => {
  it('answers 408 and closes a connection that sends nothing, soon after the request timeout', async () => {
    const app = await createBaseApp({
      logger: pino({ level: 'silent' }),
      registry: new Registry(),
      requestTimeoutMs: 500,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    try {
      const started = Date.now();
      const { received, ms: took } = await untilServerCloses(await openSilentConnection(port), started);
      expect(received).toMatch(/^HTTP\/1\.1 408 /);
      // The request timeout plus at most one check interval (1 s) and slack; Node's default
      // interval would take up to 30 s.
      expect(took).toBeGreaterThanOrEqual(450);
      expect(took).toBeLessThan(2_500);
    } finally {
      await app.close();
    }
  });
});
