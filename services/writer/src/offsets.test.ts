import { describe, expect, it } from 'vitest';
import { splitByStoredOffset } from './offsets.js';

const batch = ['8', '9', '10', '11'].map((offset) => ({ offset, event: offset }));

describe('splitByStoredOffset', () => {
  it('keeps everything when nothing is stored', () => {
    expect(splitByStoredOffset(batch, null)).toEqual({ fresh: batch, duplicates: 0 });
  });

  it('drops what lies below the stored next offset (numeric, not string, comparison)', () => {
    const { fresh, duplicates } = splitByStoredOffset(batch, '10');
    expect(fresh.map((e) => e.offset)).toEqual(['10', '11']);
    expect(duplicates).toBe(2);
  });

  it('drops the whole batch when it was applied already', () => {
    expect(splitByStoredOffset(batch, '12')).toEqual({ fresh: [], duplicates: 4 });
  });

  it('is exact beyond 2^53', () => {
    const big = [{ offset: '9007199254740993' }, { offset: '9007199254740994' }];
    expect(splitByStoredOffset(big, '9007199254740994').fresh).toEqual([{ offset: '9007199254740994' }]);
  });
});
