import { describe, expect, it } from 'vitest';
import { partitionFor } from './partition.js';

// Kafka's Java murmur2 reference values (UtilsTest): the partition is toPositive(hash) % n.
const JAVA_MURMUR2: [string, number][] = [
  ['21', -973_932_308],
  ['foobar', -790_332_482],
  ['a-little-bit-long-string', -985_981_536],
  ['a-little-bit-longer-string', -1_486_304_829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58_897_971],
  ['abc', 479_470_107],
];

describe('partitionFor', () => {
  it.each(JAVA_MURMUR2)('%s lands where the Java client would put it', (key, hash) => {
    for (const n of [1, 3, 6, 7, 12]) expect(partitionFor(key, n)).toBe((hash & 0x7fffffff) % n);
  });

  it('rejects a partition count below 1', () => {
    expect(() => partitionFor('x', 0)).toThrow(RangeError);
  });
});
