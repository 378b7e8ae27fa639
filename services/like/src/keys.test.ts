import { describe, expect, it } from 'vitest';
import { SLOT_COUNT, postKeys, shardIndexForSlot, shardIndexOf, slotOf } from './keys.js';

describe('post keys and slots', () => {
  it('puts every key of a post under the post id as hash tag', () => {
    expect(postKeys('post-1')).toEqual({
      users: 'like:{post-1}:users',
      count: 'like:{post-1}:count',
      gen: 'like:{post-1}:gen',
      pending: 'like:{post-1}:pending',
    });
  });

  it('computes Redis Cluster slots (crc16 mod 16384) of the tag', () => {
    // Reference values of `CLUSTER KEYSLOT`: "foo" → 12182, "123456789" → 12739.
    expect(slotOf('foo')).toBe(12_182);
    expect(slotOf('123456789')).toBe(12_739);
  });

  it('splits the slot space evenly and contiguously over the shards', () => {
    expect(shardIndexForSlot(0, 2)).toBe(0);
    expect(shardIndexForSlot(8_191, 2)).toBe(0);
    expect(shardIndexForSlot(8_192, 2)).toBe(1);
    expect(shardIndexForSlot(SLOT_COUNT - 1, 2)).toBe(1);
    expect(shardIndexForSlot(5_461, 3)).toBe(0);
    expect(shardIndexForSlot(5_462, 3)).toBe(1);
    const counts = [0, 0, 0];
    for (let slot = 0; slot < SLOT_COUNT; slot += 1) counts[shardIndexForSlot(slot, 3)]! += 1;
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  });

  it('uses both shards for a realistic set of ids', () => {
    const used = new Set(Array.from({ length: 100 }, (_, i) => shardIndexOf(`post-${i}`, 2)));
    expect(used).toEqual(new Set([0, 1]));
  });

  it('rejects impossible inputs', () => {
    expect(() => shardIndexForSlot(SLOT_COUNT, 2)).toThrow(RangeError);
    expect(() => shardIndexForSlot(1, 0)).toThrow(RangeError);
  });
});
