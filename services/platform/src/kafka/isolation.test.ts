import { describe, expect, it } from 'vitest';
import { TransientHandlerError } from './errors.js';
import { processWithIsolation } from './isolation.js';
import type { AttemptResult, IsolationSteps } from './isolation.js';

/** A simulated handler: all-or-nothing over a group, failing whenever the group holds a poison item. */
function harness(opts: {
  poison?: Set<number>;
  transientAt?: number;
  dlqFails?: boolean;
  liveCalls?: number;
}) {
  const handled: number[] = [];
  const deadLettered: { item: number; attempts: number; error: string }[] = [];
  let calls = 0;
  let liveChecks = 0;
  const steps: IsolationSteps<number> = {
    async attempt(items, attempts): Promise<AttemptResult> {
      let error: unknown;
      for (let a = 1; a <= attempts; a += 1) {
        calls += 1;
        if (opts.transientAt !== undefined && items.includes(opts.transientAt)) {
          error = new TransientHandlerError('db down');
          continue;
        }
        const bad = items.find((i) => opts.poison?.has(i));
        if (bad === undefined) return { ok: true, attempts: a };
        error = new Error(`poison ${bad}`);
      }
      return { ok: false, interrupted: false, attempts, error };
    },
    async succeeded(items) {
      handled.push(...items.filter((i) => !deadLettered.some((d) => d.item === i)));
    },
    async deadLetter(item, error, attempts) {
      if (opts.dlqFails === true) return false;
      deadLettered.push({ item, attempts, error: (error as Error).message });
      return true;
    },
    isTransient: (e) => e instanceof TransientHandlerError,
    isLive: () => {
      liveChecks += 1;
      return opts.liveCalls === undefined || liveChecks <= opts.liveCalls;
    },
  };
  return { steps, handled, deadLettered, calls: () => calls };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('processWithIsolation', () => {
  it('handles a clean chunk with one call', async () => {
    const h = harness({});
    await expect(processWithIsolation(range(10), 3, h.steps)).resolves.toBe('done');
    expect(h.handled).toEqual(range(10));
    expect(h.calls()).toBe(1);
  });

  it('dead-letters only the poison items and handles every other item exactly once, in order', async () => {
    const poison = new Set([3, 17, 18, 99]);
    const h = harness({ poison });
    await expect(processWithIsolation(range(100), 3, h.steps)).resolves.toBe('done');
    expect(h.handled).toEqual(range(100).filter((i) => !poison.has(i)));
    expect(h.deadLettered.map((d) => d.item)).toEqual([3, 17, 18, 99]);
    expect(h.deadLettered[0]?.error).toBe('poison 3');
    // Far fewer calls than retrying all 100 items one by one (100 × 3).
    expect(h.calls()).toBeLessThan(60);
  });

  it('counts every handler call that included a dead-lettered item', async () => {
    // 4 items, poison at 0: whole (3) → [0,1] once (1) → [0] full budget (3) = 7.
    const h = harness({ poison: new Set([0]) });
    await processWithIsolation(range(4), 3, h.steps);
    expect(h.deadLettered).toEqual([{ item: 0, attempts: 7, error: 'poison 0' }]);
    expect(h.handled).toEqual([1, 2, 3]);
  });

  it('dead-letters a single failing item after maxAttempts', async () => {
    const h = harness({ poison: new Set([5]) });
    await processWithIsolation([5], 4, h.steps);
    expect(h.deadLettered).toEqual([{ item: 5, attempts: 4, error: 'poison 5' }]);
    expect(h.calls()).toBe(4);
  });

  it('never dead-letters on a transient error: pauses after handling the prefix', async () => {
    const h = harness({ transientAt: 6 });
    await expect(processWithIsolation(range(10), 2, h.steps)).resolves.toBe('paused');
    expect(h.deadLettered).toEqual([]);
    expect(h.handled).toEqual([]);

    const h2 = harness({ poison: new Set([1]), transientAt: 6 });
    await expect(processWithIsolation(range(10), 2, h2.steps)).resolves.toBe('paused');
    expect(h2.deadLettered).toEqual([]); // the whole-chunk failure was transient
  });

  it('pauses instead of skipping when the dead letter cannot be written', async () => {
    const h = harness({ poison: new Set([2]), dlqFails: true });
    await expect(processWithIsolation(range(4), 2, h.steps)).resolves.toBe('paused');
    expect(h.handled).toEqual([0, 1]);
  });

  it('stops between groups once the consumer is no longer live', async () => {
    const h = harness({ poison: new Set([0]), liveCalls: 0 });
    await expect(processWithIsolation(range(4), 2, h.steps)).resolves.toBe('interrupted');
    expect(h.handled).toEqual([]);
    expect(h.deadLettered).toEqual([]);
  });
});
