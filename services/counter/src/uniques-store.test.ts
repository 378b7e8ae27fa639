import { describe, expect, it } from 'vitest';
import { dayOf, parseDay, uniqueKeys } from './uniques-store.js';

describe('uniques day helpers', () => {
  it('parses only real calendar days', () => {
    expect(parseDay('2026-02-28')).toBe(Date.UTC(2026, 1, 28));
    expect(parseDay('2024-02-29')).toBe(Date.UTC(2024, 1, 29));
    for (const bad of ['2026-02-29', '2026-13-01', '2026-1-01', '20260101', ''])
      expect(parseDay(bad)).toBeUndefined();
  });
  it('takes the UTC day of a time', () => {
    expect(dayOf(Date.parse('2026-03-01T23:59:59.999Z'))).toBe('2026-03-01');
    expect(dayOf(Date.parse('2026-03-01T23:30:00-05:00'))).toBe('2026-03-02');
  });
  it('keeps every key of a name in its slot', () => {
    const keys = uniqueKeys('dau', '2026-03-01');
    const tags = Object.values(keys).map((k) => /\{(\d+)\}/.exec(k)?.[1]);
    expect(new Set(tags).size).toBe(1);
    expect(keys.gen).toMatch(/:g:2026-03-01$/);
  });
});
