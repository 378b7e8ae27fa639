import { describe, expect, it } from 'vitest';
import { WorkQueue } from './work-queue.js';

describe('WorkQueue', () => {
  it('deduplicates waiting keys, never runs one key twice at once, re-runs a key added while it ran', async () => {
    const queue = new WorkQueue({ baseDelayMs: 5 });
    const controller = new AbortController();
    const runs: string[] = [];
    let active = 0;
    let maxActive = 0;
    queue.add('a');
    queue.add('a');
    queue.add('b');
    const done = queue.run(async (key) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      runs.push(key);
      if (runs.length === 1) queue.add('a'); // while 'a' runs
      await new Promise((resolve) => setTimeout(resolve, 5));
      active -= 1;
      if (runs.length === 3) controller.abort();
      return {};
    }, controller.signal);
    await done;
    expect(runs).toEqual(['a', 'b', 'a']);
    expect(maxActive).toBe(1);
    queue.close();
  });

  it('retries a failing key with growing, capped delays', async () => {
    const queue = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 40 });
    expect([1, 2, 3, 4, 10].map((n) => queue.retryDelay(n))).toEqual([10, 20, 40, 40, 40]);
    const controller = new AbortController();
    const at: number[] = [];
    await queue.run(
      async () => {
        at.push(performance.now());
        if (at.length < 3) throw new Error('boom');
        controller.abort();
        return {};
      },
      (queue.add('k'), controller.signal),
    );
    expect(at).toHaveLength(3);
    expect((at[1] ?? 0) - (at[0] ?? 0)).toBeGreaterThanOrEqual(8);
    expect((at[2] ?? 0) - (at[1] ?? 0)).toBeGreaterThanOrEqual(18);
    queue.close();
  });
});
