import { describe, expect, it } from 'vitest';
import { RecentWriters } from './recent-writers.js';

function clock(start = 1000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('RecentWriters', () => {
  it('remembers a writer for the window and forgets it exactly at the end', () => {
    const c = clock();
    const w = new RecentWriters({ windowMs: 5000, maxEntries: 10, now: c.now });
    w.mark('alice', '0-1-7');
    expect(w.get('alice')).toEqual({ at: 1000, gtid: '0-1-7' });
    c.advance(4999);
    expect(w.get('alice')).toBeDefined();
    c.advance(1);
    expect(w.get('alice')).toBeUndefined();
    expect(w.size).toBe(0);
  });

  it('does not make other callers sticky', () => {
    const w = new RecentWriters({ windowMs: 5000, maxEntries: 10, now: clock().now });
    w.mark('alice');
    expect(w.get('bob')).toBeUndefined();
  });

  it('a new write restarts the window and replaces the GTID', () => {
    const c = clock();
    const w = new RecentWriters({ windowMs: 5000, maxEntries: 10, now: c.now });
    w.mark('alice', '0-1-1');
    c.advance(4000);
    w.mark('alice', '0-1-2');
    c.advance(4000);
    expect(w.get('alice')).toEqual({ at: 5000, gtid: '0-1-2' });
  });

  it('sweeps expired writers on every mark, so the map only holds live windows', () => {
    const c = clock();
    const w = new RecentWriters({ windowMs: 100, maxEntries: 1_000_000, now: c.now });
    for (let i = 0; i < 10_000; i += 1) {
      w.mark(`user-${i}`);
      c.advance(1);
    }
    expect(w.size).toBeLessThanOrEqual(101);
    expect(w.evictions).toBe(0);
  });

  it('evicts the least recent writer when full, and counts it', () => {
    const c = clock();
    const w = new RecentWriters({ windowMs: 60_000, maxEntries: 3, now: c.now });
    for (const id of ['a', 'b', 'c']) {
      w.mark(id);
      c.advance(1);
    }
    w.mark('a'); // refreshes a: b is now the oldest
    w.mark('d');
    expect(w.size).toBe(3);
    expect(w.get('b')).toBeUndefined();
    expect(w.get('a')).toBeDefined();
    expect(w.get('c')).toBeDefined();
    expect(w.get('d')).toBeDefined();
    expect(w.evictions).toBe(1);
  });

  it('stays bounded under a flood of distinct callers inside one window', () => {
    const w = new RecentWriters({ windowMs: 60_000, maxEntries: 1000, now: clock().now });
    for (let i = 0; i < 50_000; i += 1) w.mark(`u${i}`);
    expect(w.size).toBe(1000);
    expect(w.evictions).toBe(49_000);
    expect(w.get('u49999')).toBeDefined();
    expect(w.get('u0')).toBeUndefined();
  });

  it('rejects nonsensical bounds', () => {
    expect(() => new RecentWriters({ windowMs: -1, maxEntries: 1 })).toThrow(RangeError);
    expect(() => new RecentWriters({ windowMs: 1, maxEntries: 0 })).toThrow(RangeError);
  });
});
