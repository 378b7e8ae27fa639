import { describe, expect, it } from 'vitest';
import { backoffDelay, chunk, halves, resolveRetryPolicy } from './batching.js';

describe('chunk', () => {
  it('splits in order into chunks of at most the size', () => {
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunk([1, 2, 3], 3)).toEqual([[1, 2, 3]]);
    expect(chunk([], 3)).toEqual([]);
    const big = Array.from({ length: 1234 }, (_, i) => i);
    const parts = chunk(big, 500);
    expect(parts.map((p) => p.length)).toEqual([500, 500, 234]);
    expect(parts.flat()).toEqual(big);
  });

  it('rejects sizes below 1', () => {
    expect(() => chunk([1], 0)).toThrow(RangeError);
    expect(() => chunk([1], 1.5)).toThrow(RangeError);
  });
});

describe('halves', () => {
  it('splits in two ordered halves, the left one taking the odd item', () => {
    expect(halves([1, 2, 3, 4, 5])).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
    expect(halves([1, 2])).toEqual([[1], [2]]);
  });
});

describe('backoffDelay', () => {
  const policy = { initialDelayMs: 100, maxDelayMs: 1000 };

  it('doubles from the initial delay and caps at the max (upper bound of the jitter)', () => {
    const max = () => 1;
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy, max))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
  });

  it('never waits less than half the nominal delay (lower bound of the jitter)', () => {
    const min = () => 0;
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, policy, min))).toEqual([50, 100, 200, 400, 500]);
    for (let i = 0; i < 100; i += 1) {
      const d = backoffDelay(3, policy);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(400);
    }
  });

  it('does not overflow for huge attempt numbers', () => {
    expect(backoffDelay(10_000, policy, () => 1)).toBe(1000);
  });
});

describe('resolveRetryPolicy', () => {
  it('fills defaults and rejects nonsense', () => {
    expect(resolveRetryPolicy({ maxAttempts: 2 })).toEqual({
      maxAttempts: 2,
      initialDelayMs: 100,
      maxDelayMs: 5000,
    });
    expect(() => resolveRetryPolicy({ maxAttempts: 0 })).toThrow(RangeError);
    expect(() => resolveRetryPolicy({ initialDelayMs: 10, maxDelayMs: 5 })).toThrow(RangeError);
  });
});
