import { describe, expect, it } from 'vitest';
import { cachedValue, counterCacheKeys } from './read-cache.js';

describe('counter read cache rules', () => {
  it('keeps only warm, whole, idle values', () => {
    const warm = { cold: false as const, value: 7, partial: false, lost: false, idle: true };
    expect(cachedValue(warm)).toBe(7);
    expect(cachedValue({ ...warm, idle: false })).toBeUndefined();
    expect(cachedValue({ ...warm, partial: true })).toBeUndefined();
    expect(cachedValue({ ...warm, lost: true })).toBeUndefined();
    expect(cachedValue({ cold: true, lost: false })).toBeUndefined();
  });

  it('maps a pending set to its hash, and keeps the key itself for names ending in :p', () => {
    expect(counterCacheKeys('ctr:{1}:a')).toEqual(['ctr:{1}:a']);
    expect(counterCacheKeys('ctr:{1}:a:p')).toEqual(['ctr:{1}:a:p', 'ctr:{1}:a']);
  });
});
