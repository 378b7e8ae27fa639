import { describe, expect, it } from 'vitest';
import { Throttle } from './throttle.js';

describe('Throttle', () => {
  it('holds the average rate to the limit', async () => {
    const throttle = new Throttle(200);
    const started = performance.now();
    for (let i = 0; i < 60; i += 1) await throttle.take(1);
    const seconds = (performance.now() - started) / 1_000;
    // 60 units at 200/s: about 0.3 s (one unit may be taken at once).
    expect(seconds).toBeGreaterThan(0.25);
    expect(seconds).toBeLessThan(1.5);
  });

  it('stops waiting when aborted', async () => {
    const throttle = new Throttle(1);
    await throttle.take(1);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('stop')), 20);
    await expect(throttle.take(1, controller.signal)).rejects.toThrow('stop');
  });
});
