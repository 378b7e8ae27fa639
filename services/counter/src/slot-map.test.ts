import { describe, expect, it } from 'vitest';
import { SLOT_COUNT, counterKeys, slotOf } from './keys.js';
import { SlotMap, SlotMapError } from './slot-map.js';

const shards = { 'shard-0': { masterName: 'shard-0' }, 'shard-1': { masterName: 'shard-1' } };

describe('slotOf / counterKeys', () => {
  it('is Redis Cluster’s crc16 mod 16384 and tags every key with the slot', () => {
    expect(slotOf('foo')).toBe(12182); // CLUSTER KEYSLOT foo
    expect(slotOf('123456789')).toBe(12739);
    expect(counterKeys('foo')).toEqual({ value: 'ctr:{12182}:foo', pending: 'ctr:{12182}:foo:p' });
  });
});

describe('SlotMap', () => {
  it('splits evenly over the master names, covering every slot', () => {
    const map = SlotMap.evenSplit(['shard-0', 'shard-1']);
    expect(map.epoch).toBe(0);
    expect(map.document.ranges).toEqual([
      { from: 0, to: 8191, shard: 'shard-0' },
      { from: 8192, to: SLOT_COUNT - 1, shard: 'shard-1' },
    ]);
    expect(map.route(0)).toEqual({ shard: 'shard-0', migratingFrom: undefined });
    expect(map.route(16383).shard).toBe('shard-1');
    expect(SlotMap.evenSplit(['a', 'b', 'c']).document.ranges.at(-1)).toEqual({
      from: 10922,
      to: 16383,
      shard: 'c',
    });
  });

  it('routes migrating slots to the new shard and remembers the old one', () => {
    const map = SlotMap.parse({
      epoch: 3,
      ranges: [
        { from: 0, to: 99, shard: 'shard-1' },
        { from: 100, to: 16383, shard: 'shard-0' },
      ],
      shards,
      migrating: [{ from: 0, to: 99, fromShard: 'shard-0', toShard: 'shard-1' }],
    });
    expect(map.route(50)).toEqual({ shard: 'shard-1', migratingFrom: 'shard-0' });
    expect(map.route(100)).toEqual({ shard: 'shard-0', migratingFrom: undefined });
    expect(map.migratingSlots()).toBe(100);
  });

  it.each([
    [
      'a gap',
      { epoch: 1, ranges: [{ from: 0, to: 100, shard: 'shard-0' }], shards },
      /slot 101 is in no range/,
    ],
    [
      'an overlap',
      {
        epoch: 1,
        ranges: [
          { from: 0, to: 16383, shard: 'shard-0' },
          { from: 5, to: 5, shard: 'shard-1' },
        ],
        shards,
      },
      /two ranges/,
    ],
    [
      'an undeclared shard',
      { epoch: 1, ranges: [{ from: 0, to: 16383, shard: 'shard-9' }], shards },
      /undeclared/,
    ],
    [
      'a slot out of range',
      { epoch: 1, ranges: [{ from: 0, to: 16384, shard: 'shard-0' }], shards },
      /invalid slot map/,
    ],
    ['a negative epoch', { epoch: -1, ranges: [{ from: 0, to: 16383, shard: 'shard-0' }], shards }, /epoch/],
    [
      'a migration whose target is not the owner',
      {
        epoch: 1,
        ranges: [{ from: 0, to: 16383, shard: 'shard-0' }],
        shards,
        migrating: [
          { from: 0, to: 9, fromShard: 'shard-1', toShard: 'shard-0' },
          { from: 10, to: 19, fromShard: 'shard-0', toShard: 'shard-1' },
        ],
      },
      /not its owner/,
    ],
  ])('rejects %s', (_, doc, message) => {
    expect(() => SlotMap.parse(doc)).toThrow(SlotMapError);
    expect(() => SlotMap.parse(doc)).toThrow(message);
  });
});
