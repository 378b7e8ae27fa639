import { describe, expect, it } from 'vitest';
import { Health } from './health.js';

describe('Health', () => {
  it('is ready when every check passes', async () => {
    const health = new Health();
    health.addReadinessCheck('a', () => true);
    health.addReadinessCheck('b', async () => undefined);
    expect((await health.readiness()).ready).toBe(true);
  });

  it('reports the failing check by name', async () => {
    const health = new Health();
    health.addReadinessCheck('redis', async () => {
      throw new Error('connection refused');
    });
    health.addReadinessCheck('slotmap', () => false);
    const report = await health.readiness();
    expect(report.ready).toBe(false);
    expect(report.checks['redis']).toEqual({ ok: false, error: 'connection refused' });
    expect(report.checks['slotmap']).toEqual({ ok: false, error: 'not ready' });
  });

  it('fails a check that hangs, within the timeout', async () => {
    const health = new Health(50);
    health.addReadinessCheck('stuck', () => new Promise<void>(() => undefined));
    const started = Date.now();
    const report = await health.readiness();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(report.checks['stuck']?.error).toMatch(/timed out after 50 ms/);
  });

  it('is not ready once shutting down', async () => {
    const health = new Health();
    health.markShuttingDown();
    expect((await health.readiness()).ready).toBe(false);
  });
});
