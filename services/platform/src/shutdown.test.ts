import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Health } from './health.js';
import { GracefulShutdown } from './shutdown.js';
import { onFinalFlush } from './telemetry-flush.js';

const logger = pino({ level: 'silent' });

describe('GracefulShutdown', () => {
  it('fails readiness first, waits the delay, then runs steps in order', async () => {
    const health = new Health();
    const events: string[] = [];
    const shutdown = new GracefulShutdown({ logger, health, delayMs: 100, timeoutMs: 5_000 })
      .add('http', async () => {
        events.push(`http ready=${(await health.readiness()).ready}`);
      })
      .add('kafka', async () => {
        events.push('kafka');
      });
    const started = Date.now();
    const code = await shutdown.run('test');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    expect(events).toEqual(['http ready=false', 'kafka']);
  });

  it('bounds a hanging step, exits 1, and still runs the later steps', async () => {
    const ran: string[] = [];
    const shutdown = new GracefulShutdown({ logger, health: new Health(), delayMs: 0, timeoutMs: 200 })
      .add('stuck', () => new Promise(() => undefined))
      .add('after', async () => {
        ran.push('after');
      });
    const started = Date.now();
    expect(await shutdown.run('test')).toBe(1);
    expect(Date.now() - started).toBeLessThan(1_000);
    // the hanging step used up the whole budget, so the next one is skipped, not run unbounded
    expect(ran).toEqual([]);
  });

  it('reports a failing step with exit code 1 and continues', async () => {
    const ran: string[] = [];
    const shutdown = new GracefulShutdown({ logger, health: new Health(), delayMs: 0, timeoutMs: 1_000 })
      .add('fails', async () => {
        throw new Error('flush failed');
      })
      .add('after', async () => {
        ran.push('after');
      });
    expect(await shutdown.run('test')).toBe(1);
    expect(ran).toEqual(['after']);
  });

  it('runs once however often it is triggered', async () => {
    let runs = 0;
    const shutdown = new GracefulShutdown({ logger, health: new Health(), delayMs: 0, timeoutMs: 1_000 }).add(
      'count',
      async () => {
        runs += 1;
      },
    );
    await Promise.all([shutdown.run('a'), shutdown.run('b')]);
    expect(runs).toBe(1);
  });
});

describe('GracefulShutdown and the telemetry flush', () => {
  it('flushes telemetry after the last step, and a failed flush does not fail the shutdown', async () => {
    const events: string[] = [];
    const removeOk = onFinalFlush(async () => {
      events.push('flush');
    });
    const removeFailing = onFinalFlush(async () => {
      throw new Error('collector away');
    });
    try {
      const shutdown = new GracefulShutdown({
        logger,
        health: new Health(),
        delayMs: 0,
        timeoutMs: 1_000,
      }).add('http', async () => {
        events.push('http drained');
      });
      expect(await shutdown.run('test')).toBe(0);
      expect(events).toEqual(['http drained', 'flush']);
    } finally {
      removeOk();
      removeFailing();
    }
  });

  it('bounds the flush by what is left of the deadline', async () => {
    const remove = onFinalFlush(() => new Promise(() => undefined));
    try {
      const shutdown = new GracefulShutdown({ logger, health: new Health(), delayMs: 0, timeoutMs: 200 });
      const started = Date.now();
      expect(await shutdown.run('test')).toBe(0);
      expect(Date.now() - started).toBeLessThan(1_000);
    } finally {
      remove();
    }
  });
});
