import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planSlots, targetCounts, type ShardWeight, type SlotPlan } from './planner.js';
import { countsOf, PlanningError, rangesOf, SLOT_COUNT, tableOf, type SlotTable } from './slot-table.js';

const equal = (...names: string[]): ShardWeight[] => names.map((name) => ({ name, weight: 1 }));
const exactShare = (weight: number, totalWeight: number): number => (SLOT_COUNT * weight) / totalWeight;

describe('targetCounts', () => {
  it('splits proportionally, the leftover slots going to the largest remainders', () => {
    expect(targetCounts(equal('shard-0', 'shard-1'))).toEqual(
      new Map([
        ['shard-0', 8192],
        ['shard-1', 8192],
      ]),
    );
    // 5461.33 / 10922.67: the larger remainder (b) gets the leftover slot.
    expect(
      targetCounts([
        { name: 'a', weight: 1 },
        { name: 'b', weight: 2 },
      ]),
    ).toEqual(
      new Map([
        ['a', 5461],
        ['b', 10923],
      ]),
    );
    // 16221.78 / 162.22
    expect(
      targetCounts([
        { name: 'small', weight: 1 },
        { name: 'big', weight: 100 },
      ]),
    ).toEqual(
      new Map([
        ['big', 16222],
        ['small', 162],
      ]),
    );
  });

  it('breaks remainder ties by name, whatever the input order', () => {
    const expected = [
      ['x', 5462],
      ['y', 5461],
      ['z', 5461],
    ];
    expect([...targetCounts(equal('z', 'y', 'x'))]).toEqual(expected);
    expect([...targetCounts(equal('y', 'x', 'z'))]).toEqual(expected);
  });

  it('rejects no shard, duplicates, bad names and weights outside integers 1..100', () => {
    expect(() => targetCounts([])).toThrow(PlanningError);
    expect(() => targetCounts(equal('a', 'a'))).toThrow(new PlanningError('shard a is listed twice'));
    expect(() => targetCounts(equal(''))).toThrow(PlanningError);
    expect(() => targetCounts(equal('x'.repeat(101)))).toThrow(PlanningError);
    for (const weight of [0, 101, 1.5, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => targetCounts([{ name: 'a', weight }]), `weight ${weight}`).toThrow(PlanningError);
    }
    expect(targetCounts([{ name: 'a', weight: 100 }]).get('a')).toBe(SLOT_COUNT);
  });

  it('gives every shard its floor or ceiling share, leftovers by remainder then name (property)', () => {
    const shardsArb = fc.uniqueArray(
      fc.record({
        name: fc.string({ minLength: 1, maxLength: 6 }),
        weight: fc.integer({ min: 1, max: 100 }),
      }),
      { minLength: 1, maxLength: 24, selector: (shard) => shard.name },
    );
    fc.assert(
      fc.property(shardsArb, fc.gen(), (shards, g) => {
        const counts = targetCounts(shards);
        const totalWeight = shards.reduce((sum, shard) => sum + shard.weight, 0);
        expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(SLOT_COUNT);
        const rounded = shards.map(({ name, weight }) => {
          const count = counts.get(name)!;
          const floor = Math.floor((SLOT_COUNT * weight) / totalWeight);
          expect(Math.abs(count - exactShare(weight, totalWeight))).toBeLessThan(1);
          return { name, up: count > floor, remainder: (SLOT_COUNT * weight) % totalWeight };
        });
        // No shard rounded down ranks before (larger remainder, or equal and smaller name) one rounded up.
        for (const up of rounded.filter((share) => share.up)) {
          for (const down of rounded.filter((share) => !share.up)) {
            const downRanksFirst =
              down.remainder > up.remainder || (down.remainder === up.remainder && down.name < up.name);
            expect(downRanksFirst, `${down.name} should have been rounded up before ${up.name}`).toBe(false);
          }
        }
        const shuffled = g(fc.shuffledSubarray, shards, {
          minLength: shards.length,
          maxLength: shards.length,
        });
        expect([...targetCounts(shuffled)]).toEqual([...counts]);
      }),
      { numRuns: 300 },
    );
  });
});

describe('planSlots examples', () => {
  it('starts with contiguous blocks in name order: 2 equal shards get 8192 each', () => {
    const plan = planSlots(undefined, equal('shard-1', 'shard-0'));
    expect(rangesOf(plan.table)).toEqual([
      { from: 0, to: 8191, shard: 'shard-0' },
      { from: 8192, to: SLOT_COUNT - 1, shard: 'shard-1' },
    ]);
    expect(plan).toMatchObject({ moves: [], movedSlots: 0, counts: { 'shard-0': 8192, 'shard-1': 8192 } });
  });

  it('adding a 3rd equal shard moves 5461 slots (1/3), all to the new shard, from the ends of the others', () => {
    const before = planSlots(undefined, equal('a', 'b')).table;
    const plan = planSlots(before, equal('a', 'b', 'c'));
    expect(plan.counts).toEqual({ a: 5462, b: 5461, c: 5461 });
    expect(plan.movedSlots).toBe(5461);
    expect(plan.moves).toEqual([
      { from: 5462, to: 8191, fromShard: 'a', toShard: 'c' },
      { from: 13653, to: 16383, fromShard: 'b', toShard: 'c' },
    ]);
    expect(rangesOf(plan.table)).toEqual([
      { from: 0, to: 5461, shard: 'a' },
      { from: 5462, to: 8191, shard: 'c' },
      { from: 8192, to: 13652, shard: 'b' },
      { from: 13653, to: 16383, shard: 'c' },
    ]);
  });

  it('removing a shard moves exactly its slots', () => {
    const before = planSlots(undefined, equal('a', 'b', 'c')).table;
    expect(countsOf(before).get('b')).toBe(5461);
    const plan = planSlots(before, equal('a', 'c'));
    expect(plan.movedSlots).toBe(5461);
    expect(plan.moves).toEqual([
      { from: 5462, to: 8191, fromShard: 'b', toShard: 'a' },
      { from: 8192, to: 10922, fromShard: 'b', toShard: 'c' },
    ]);
    expect(rangesOf(plan.table)).toEqual([
      { from: 0, to: 8191, shard: 'a' },
      { from: 8192, to: 16383, shard: 'c' },
    ]);
    expect(plan.counts).toEqual({ a: 8192, c: 8192 });
  });

  it('reweighting moves only the difference, replacing a shard hands all its slots to the new one', () => {
    const before = planSlots(undefined, equal('a', 'b')).table;
    const heavier = planSlots(before, [
      { name: 'a', weight: 1 },
      { name: 'b', weight: 3 },
    ]);
    expect(heavier.moves).toEqual([{ from: 4096, to: 8191, fromShard: 'a', toShard: 'b' }]);
    expect(heavier.movedSlots).toBe(4096);
    const replaced = planSlots(before, equal('a', 'z'));
    expect(replaced.moves).toEqual([{ from: 8192, to: 16383, fromShard: 'b', toShard: 'z' }]);
  });

  it('moves nothing when the table already matches, and leaves its input untouched', () => {
    const before = planSlots(undefined, equal('a', 'b', 'c')).table;
    const copy = [...before];
    const plan = planSlots(before, equal('c', 'a', 'b'));
    expect(plan.moves).toEqual([]);
    expect(plan.movedSlots).toBe(0);
    expect(plan.table).toEqual(before);
    expect(before).toEqual(copy);
  });

  it('rejects an incomplete current table and invalid shards', () => {
    expect(() => planSlots(['a'], equal('a'))).toThrow(PlanningError);
    const holed = [...planSlots(undefined, equal('a')).table];
    holed[7] = '';
    expect(() => planSlots(holed, equal('a'))).toThrow(new PlanningError('slot 7 has no owner shard'));
    expect(() => planSlots(undefined, [])).toThrow(PlanningError);
  });
});

type Operation =
  | { kind: 'add'; name: string; weight: number }
  | { kind: 'remove'; pick: number }
  | { kind: 'reweight'; pick: number; weight: number };

const weightArb = fc.integer({ min: 1, max: 100 });
const nameArb = fc.stringMatching(/^[a-z][a-z0-9-]{0,4}$/);
const operationArb: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), name: nameArb, weight: weightArb }),
  fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('reweight' as const), pick: fc.nat(), weight: weightArb }),
);
const initialShardsArb = fc.uniqueArray(fc.record({ name: nameArb, weight: weightArb }), {
  minLength: 1,
  maxLength: 4,
  selector: (shard) => shard.name,
});

function apply(shards: readonly ShardWeight[], operation: Operation): ShardWeight[] {
  switch (operation.kind) {
    case 'add': {
      let name = operation.name;
      while (shards.some((shard) => shard.name === name)) name += '-n';
      return [...shards, { name, weight: operation.weight }];
    }
    case 'remove':
      if (shards.length === 1) return [...shards];
      return shards.filter((_, i) => i !== operation.pick % shards.length);
    case 'reweight':
      return shards.map((shard, i) =>
        i === operation.pick % shards.length ? { ...shard, weight: operation.weight } : shard,
      );
  }
}

/** First slot where the tables differ, -1 when equal (a plain loop: deep equality of 16384 entries is slow). */
function firstDifference(a: SlotTable, b: SlotTable): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let slot = 0; slot < a.length; slot += 1) if (a[slot] !== b[slot]) return slot;
  return -1;
}

function expectSamePlan(actual: SlotPlan, expected: SlotPlan): void {
  expect(firstDifference(actual.table, expected.table), 'first slot with another owner').toBe(-1);
  expect({ ...actual, table: undefined }).toEqual({ ...expected, table: undefined });
}

/** Slots per owner, counted run by run (one Map update per run instead of per slot). */
function ownerCounts(table: SlotTable): Map<string, number> {
  const counts = new Map<string, number>();
  let start = 0;
  for (let slot = 1; slot <= table.length; slot += 1) {
    if (slot === table.length || table[slot] !== table[start]) {
      const owner = table[start]!;
      counts.set(owner, (counts.get(owner) ?? 0) + slot - start);
      start = slot;
    }
  }
  return counts;
}

/**
 * Checks one plan against the contract, computing everything from `current`, `shards` and
 * `plan.table`. Violations are collected and asserted once (an expect per slot would be slow).
 */
function checkPlan(current: SlotTable, shards: readonly ShardWeight[], plan: SlotPlan): void {
  const { table } = plan;
  expect(table).toHaveLength(SLOT_COUNT);
  const problems: string[] = [];
  const totalWeight = shards.reduce((sum, shard) => sum + shard.weight, 0);
  const before = ownerCounts(current);
  const after = ownerCounts(table);
  const target = (name: string): number => after.get(name) ?? 0;

  // (1) every shard within one slot of its exact share; removed shards own nothing.
  let owned = 0;
  for (const { name, weight } of shards) {
    const count = target(name);
    owned += count;
    const share = exactShare(weight, totalWeight);
    if (!(Math.abs(count - share) < 1)) problems.push(`${name} owns ${count} slots, exact share ${share}`);
    if (plan.counts[name] !== count)
      problems.push(`counts says ${name} owns ${plan.counts[name]}, not ${count}`);
  }
  if (owned !== SLOT_COUNT) problems.push(`shards of the spec own ${owned} slots`);
  expect(Object.keys(plan.counts).sort()).toEqual(shards.map((shard) => shard.name).sort());

  // (2) exactly the surplus moves: sum of max(0, current - target) over old and new shards.
  let surplus = 0;
  for (const [name, count] of before) surplus += Math.max(0, count - target(name));
  if (plan.movedSlots !== surplus) problems.push(`movedSlots ${plan.movedSlots}, surplus ${surplus}`);

  // (5) moves are ascending and maximal, and name each slot's old and new owner.
  const covered = new Uint8Array(SLOT_COUNT);
  plan.moves.forEach((move, i) => {
    const previous = plan.moves[i - 1];
    const where = `move ${i} (${move.from}-${move.to} ${move.fromShard}->${move.toShard})`;
    if (move.from > move.to || move.fromShard === move.toShard) problems.push(`${where} is empty`);
    if (previous !== undefined && move.from <= previous.to)
      problems.push(`${where} is not after the previous`);
    if (
      previous !== undefined &&
      previous.to + 1 === move.from &&
      previous.fromShard === move.fromShard &&
      previous.toShard === move.toShard
    ) {
      problems.push(`${where} continues the previous move`);
    }
    for (let slot = move.from; slot <= move.to; slot += 1) {
      covered[slot] = 1;
      if (current[slot] !== move.fromShard || table[slot] !== move.toShard) {
        problems.push(`${where}: slot ${slot} goes ${current[slot]}->${table[slot]}`);
      }
    }
  });

  // (2) changed slots = surplus, (3) shards that did not have to shrink keep all their slots,
  // (5) the moves cover exactly the changed slots.
  const keeps = new Set(
    shards.filter(({ name }) => (before.get(name) ?? 0) <= target(name)).map((s) => s.name),
  );
  let changed = 0;
  for (let slot = 0; slot < SLOT_COUNT; slot += 1) {
    const moved = current[slot] !== table[slot];
    if (moved) changed += 1;
    if (moved && keeps.has(current[slot]!))
      problems.push(`slot ${slot} left ${current[slot]}, which did not shrink`);
    if (moved !== (covered[slot] === 1)) problems.push(`slot ${slot} changed=${moved} but covered=${!moved}`);
  }
  if (changed !== surplus) problems.push(`${changed} slots changed owner, surplus ${surplus}`);
  expect(problems.slice(0, 20)).toEqual([]);
}

describe('planSlots properties', () => {
  // 2-3 s on a 2-core machine (two plans and full checks per step); the timeout leaves room for load.
  it(
    'keeps shares within one slot, moves only surpluses, deterministically, over add/remove/reweight sequences',
    { timeout: 30_000 },
    () => {
      fc.assert(
        fc.property(
          initialShardsArb,
          fc.array(operationArb, { minLength: 1, maxLength: 8 }),
          fc.gen(),
          (initial, operations, g) => {
            const first = planSlots(undefined, initial);
            checkPlan(first.table, initial, first);
            expect(rangesOf(first.table).map((range) => range.shard)).toEqual(
              initial.map((shard) => shard.name).sort(),
            );
            let shards: ShardWeight[] = initial;
            let table = first.table;
            for (const operation of operations) {
              shards = apply(shards, operation);
              const plan = planSlots(table, shards);
              checkPlan(table, shards, plan);
              // (4) same input, in any order, gives the same plan.
              const shuffled = g(fc.shuffledSubarray, shards, {
                minLength: shards.length,
                maxLength: shards.length,
              });
              expectSamePlan(planSlots(table, shuffled), plan);
              table = plan.table;
            }
            expect(firstDifference(tableOf(rangesOf(table)), table), 'ranges round trip').toBe(-1);
          },
        ),
        { numRuns: 200 },
      );
    },
  );
});
