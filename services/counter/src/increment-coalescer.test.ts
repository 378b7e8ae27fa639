import { describe, expect, it } from 'vitest';
import { IncrementCoalescer } from './increment-coalescer.js';

/** A counter in memory that records every group applied to it. */
function memoryCounters() {
  const values = new Map<string, number>();
  const applied: { name: string; delta: number; requests: number }[] = [];
  const apply = async (name: string, delta: number, requests: number) => {
    applied.push({ name, delta, requests });
    const value = (values.get(name) ?? 0) + delta;
    values.set(name, value);
    return { value, path: 'redis' as const };
  };
  return { values, applied, apply };
}

describe('IncrementCoalescer', () => {
  it('applies the increments of one turn as one group per counter and sign, values in arrival order', async () => {
    const counters = memoryCounters();
    counters.values.set('a', 10);
    const coalescer = new IncrementCoalescer(counters.apply, 1_000);
    const results = await Promise.all([
      coalescer.add('a', 1),
      coalescer.add('a', 2),
      coalescer.add('b', 5),
      coalescer.add('a', -4),
      coalescer.add('a', 3),
      coalescer.add('a', -1),
    ]);
    expect(results.map((r) => r.value)).toEqual([11, 13, 5, 12, 16, 11]);
    expect(counters.applied).toEqual([
      { name: 'a', delta: 6, requests: 3 },
      { name: 'b', delta: 5, requests: 1 },
      { name: 'a', delta: -5, requests: 2 },
    ]);
    expect(counters.values.get('a')).toBe(11);
  });

  it('starts a new group before a sum would exceed what one event may carry', async () => {
    const counters = memoryCounters();
    const coalescer = new IncrementCoalescer(counters.apply, 10);
    const results = await Promise.all([6, 3, 4, 10].map((d) => coalescer.add('hot', d)));
    expect(counters.applied.map((g) => g.delta)).toEqual([9, 4, 10]);
    expect(counters.applied.every((g) => Math.abs(g.delta) <= 10)).toBe(true);
    expect(counters.values.get('hot')).toBe(23);
    expect(results.map((r) => r.value).sort((x, y) => x - y)).toEqual([6, 9, 13, 23]);
  });

  it('gives every member of a failed group the same error, and later turns start afresh', async () => {
    let fail = true;
    const coalescer = new IncrementCoalescer(async (_name, delta) => {
      if (fail) throw new Error('Redis and MySQL are down');
      return { value: delta, path: 'mysql_fallback' as const };
    }, 100);
    const failing = [coalescer.add('x', 1), coalescer.add('x', 1)].map((p) =>
      p.then(
        () => 'ok',
        (err: Error) => err.message,
      ),
    );
    expect(await Promise.all(failing)).toEqual(['Redis and MySQL are down', 'Redis and MySQL are down']);
    fail = false;
    await expect(coalescer.add('x', 2)).resolves.toEqual({ value: 2, path: 'mysql_fallback' });
  });

  it('refuses a zero, fractional or oversized delta', async () => {
    const coalescer = new IncrementCoalescer(memoryCounters().apply, 100);
    for (const delta of [0, 1.5, 101, -101])
      await expect(coalescer.add('x', delta)).rejects.toThrow(RangeError);
  });
});
