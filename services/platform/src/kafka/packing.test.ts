import { describe, expect, it } from 'vitest';
import { packJsonValues, packMessages, unpackJsonValue } from './packing.js';
import { partitionFor } from './partition.js';

describe('packing', () => {
  it('round-trips JSON values through one record and reads single-event records as before', () => {
    const values = [{ a: 1 }, { b: 'x' }].map((v) => JSON.stringify(v));
    expect(unpackJsonValue(JSON.parse(packJsonValues(values)))).toEqual([{ a: 1 }, { b: 'x' }]);
    expect(unpackJsonValue({ eventId: 'e', name: 'n' })).toEqual([{ eventId: 'e', name: 'n' }]);
    expect(() => unpackJsonValue({ v: 2, events: 'nope' })).toThrow(/events array/);
  });

  it('groups by the partition of the key in call order, chunks at maxPerRecord, leaves the rest alone', () => {
    const partitions = 4;
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    const entries = [
      ...keys.map((key, i) => ({ message: { key, value: `{"i":${i}}` } })),
      { message: { key: null, value: '{"nokey":1}' } },
      { message: { key: 'buf', value: Buffer.from('{}') } },
    ];
    const { records, recordOf } = packMessages(entries, partitions, { maxPerRecord: 3 });
    // Every message is carried by exactly one record; unpackable ones by themselves.
    expect(recordOf).toHaveLength(entries.length);
    expect(recordOf[20]).toBe(entries[20]!.message);
    expect(recordOf[21]).toBe(entries[21]!.message);
    const carried = new Map<object, number[]>();
    keys.forEach((_, i) => carried.set(recordOf[i]!, [...(carried.get(recordOf[i]!) ?? []), i]));
    for (const [record, members] of carried) {
      expect(records).toContain(record);
      expect(members.length).toBeLessThanOrEqual(3);
      // All members map to the partition of the record's key, and appear in call order.
      const partition = partitionFor(String((record as { key: string }).key), partitions);
      for (const i of members) expect(partitionFor(keys[i]!, partitions)).toBe(partition);
      if (members.length > 1)
        expect(unpackJsonValue(JSON.parse(String((record as { value: string }).value)))).toEqual(
          members.map((i) => ({ i })),
        );
    }
    expect(records.length).toBe(carried.size + 2);
    expect(records.length).toBeLessThan(entries.length);
  });
});
