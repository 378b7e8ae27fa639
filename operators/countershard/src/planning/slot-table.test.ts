import { describe, expect, it } from 'vitest';
import { assertSlotTable, countsOf, PlanningError, rangesOf, SLOT_COUNT, tableOf } from './slot-table.js';

const twoHalves = [
  { from: 0, to: 8191, shard: 'shard-0' },
  { from: 8192, to: SLOT_COUNT - 1, shard: 'shard-1' },
];

describe('rangesOf / tableOf', () => {
  it('round trips merged ranges in ascending order, whatever order the ranges come in', () => {
    const ranges = [
      { from: 0, to: 99, shard: 'b' },
      { from: 100, to: 100, shard: 'a' },
      { from: 101, to: 9000, shard: 'b' },
      { from: 9001, to: SLOT_COUNT - 1, shard: 'c' },
    ];
    const table = tableOf([...ranges].reverse());
    expect(table).toHaveLength(SLOT_COUNT);
    expect(table[100]).toBe('a');
    expect(table[101]).toBe('b');
    expect(rangesOf(table)).toEqual(ranges);
    expect(tableOf(rangesOf(table))).toEqual(table);
  });

  it('merges adjacent ranges of the same shard', () => {
    const table = tableOf([
      { from: 0, to: 10, shard: 'a' },
      { from: 11, to: SLOT_COUNT - 1, shard: 'a' },
    ]);
    expect(rangesOf(table)).toEqual([{ from: 0, to: SLOT_COUNT - 1, shard: 'a' }]);
  });

  it('rejects a gap, an overlap and malformed ranges', () => {
    expect(() => tableOf([{ from: 0, to: 8190, shard: 'a' }, twoHalves[1]!])).toThrow(
      new PlanningError('slot 8191 is in no range'),
    );
    expect(() => tableOf([...twoHalves, { from: 8191, to: 8192, shard: 'c' }])).toThrow(
      new PlanningError('slot 8191 is in two ranges'),
    );
    expect(() => tableOf([])).toThrow(PlanningError);
    expect(() => tableOf([])).toThrow(new PlanningError('slot 0 is in no range'));
    expect(() => tableOf([{ from: 0, to: SLOT_COUNT, shard: 'a' }])).toThrow(/not within 0-16383/);
    expect(() => tableOf([{ from: -1, to: 10, shard: 'a' }])).toThrow(/not within/);
    expect(() => tableOf([{ from: 10, to: 9, shard: 'a' }])).toThrow(/not within/);
    expect(() => tableOf([{ from: 0.5, to: 9, shard: 'a' }])).toThrow(/not within/);
    expect(() => tableOf([{ from: 0, to: SLOT_COUNT - 1, shard: '' }])).toThrow(/names no shard/);
  });

  it('rangesOf rejects a table of the wrong length or with an unowned slot', () => {
    expect(() => rangesOf(['a'])).toThrow(PlanningError);
    expect(() => rangesOf(['a'])).toThrow(
      new PlanningError(`slot table has 1 slots, expected ${SLOT_COUNT}`),
    );
    const table = [...tableOf(twoHalves)];
    table[42] = '';
    expect(() => rangesOf(table)).toThrow(new PlanningError('slot 42 has no owner shard'));
    expect(() => assertSlotTable(tableOf(twoHalves))).not.toThrow();
  });
});

describe('countsOf', () => {
  it('counts the slots of every owning shard', () => {
    expect(countsOf(tableOf(twoHalves))).toEqual(
      new Map([
        ['shard-0', 8192],
        ['shard-1', 8192],
      ]),
    );
  });
});
