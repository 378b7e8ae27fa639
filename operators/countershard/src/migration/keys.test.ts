import { describe, expect, it } from 'vitest';
import { classifyKey, moveKeys } from './keys.js';

describe('classifyKey', () => {
  it('recognises the counter service keys by prefix and slot tag', () => {
    expect(classifyKey('ctr:{42}:views:home')).toEqual({ kind: 'counter', slot: 42 });
    expect(classifyKey('ctrt:{42}:views:home')).toEqual({ kind: 'partial-marker', slot: 42 });
    expect(classifyKey('ctr:{42}:views:home:p')).toEqual({ kind: 'counter', slot: 42 });
    expect(classifyKey('pr:{7}:room:1')).toEqual({ kind: 'presence', slot: 7 });
  });

  it('groups the set, HLL and marker of one unique name and day (names may contain colons)', () => {
    for (const [letter, part] of [
      ['s', 'set'],
      ['h', 'hll'],
      ['g', 'marker'],
    ] as const) {
      expect(classifyKey(`uq:{9}:dau:web:${letter}:2026-11-20`)).toEqual({
        kind: 'unique',
        slot: 9,
        group: 'dau:web|2026-11-20',
        part,
      });
    }
    expect(classifyKey('uq:{9}:dau:x:2026-11-20')).toEqual({ kind: 'other', slot: 9 });
  });

  it('finds move records and leaves everything else alone', () => {
    const keys = moveKeys(3, 'abcdef0123456789');
    expect(classifyKey(keys.record)).toEqual({ kind: 'move-record', slot: 3, token: 'abcdef0123456789' });
    expect(classifyKey(keys.value)).toEqual({ kind: 'other', slot: 3 });
    expect(classifyKey('idem:{3}:req-1')).toEqual({ kind: 'other', slot: 3 });
    expect(classifyKey('hyperscale:slotmap:acks')).toEqual({ kind: 'other', slot: undefined });
    expect(classifyKey('rl:user:alice')).toEqual({ kind: 'other', slot: undefined });
  });
});
