import { assertSlotTable, PlanningError, SLOT_COUNT, type SlotTable } from './slot-table.js';

/** A shard of the spec with its weight (integer 1..100); slot counts are proportional to weights. */
export interface ShardWeight {
  name: string;
  weight: number;
}

/** An inclusive range of contiguous slots moving from `fromShard` to `toShard` (`toShard` owns them in the new table). */
export interface SlotMove {
  from: number;
  to: number;
  fromShard: string;
  toShard: string;
}

/** The target slot table and how it differs from the current one. */
export interface SlotPlan {
  table: SlotTable;
  /** Changed slots as maximal contiguous ranges with the same (fromShard, toShard), ascending. */
  moves: SlotMove[];
  /** Number of slots whose owner changes (sum of all surpluses). */
  movedSlots: number;
  /** Slots per shard of the spec in `table` (every shard of `shards`, by name). */
  counts: Record<string, number>;
}

export const MIN_WEIGHT = 1;
export const MAX_WEIGHT = 100;
/** Longest shard name the counter service accepts in a slot map (`services/counter/src/slot-map.ts`). */
export const MAX_SHARD_NAME_LENGTH = 100;

/** Code-unit order: locale independent, so every process sorts names the same way. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function assertShards(shards: readonly ShardWeight[]): void {
  if (shards.length === 0) throw new PlanningError('no shard to place the slots on');
  const seen = new Set<string>();
  for (const { name, weight } of shards) {
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_SHARD_NAME_LENGTH) {
      throw new PlanningError(
        `shard name ${JSON.stringify(name)} must be 1-${MAX_SHARD_NAME_LENGTH} characters`,
      );
    }
    if (seen.has(name)) throw new PlanningError(`shard ${name} is listed twice`);
    seen.add(name);
    if (!Number.isInteger(weight) || weight < MIN_WEIGHT || weight > MAX_WEIGHT) {
      throw new PlanningError(
        `shard ${name}: weight ${weight} is not an integer in ${MIN_WEIGHT}-${MAX_WEIGHT}`,
      );
    }
  }
}

/**
 * Slot count of every shard, proportional to its weight and summing to SLOT_COUNT. Each shard gets
 * the floor of its exact share `SLOT_COUNT * weight / totalWeight`; the slots left over go one each
 * to the largest fractional remainders, ties to the smaller name. So every count is within one
 * slot of its exact share. Integer arithmetic only; the result (keys in name order) does not
 * depend on the order of `shards`.
 * @throws PlanningError for no shard, a duplicate or invalid name, or a weight not an integer in 1..100.
 */
export function targetCounts(shards: readonly ShardWeight[]): Map<string, number> {
  assertShards(shards);
  const totalWeight = shards.reduce((sum, shard) => sum + shard.weight, 0);
  const shares = shards
    .map(({ name, weight }) => {
      const numerator = SLOT_COUNT * weight;
      const remainder = numerator % totalWeight;
      return { name, count: (numerator - remainder) / totalWeight, remainder };
    })
    .sort((a, b) => compareNames(a.name, b.name));
  let left = SLOT_COUNT - shares.reduce((sum, share) => sum + share.count, 0);
  // Remainders share the denominator totalWeight, so comparing numerators compares fractions exactly.
  const byRemainder = [...shares].sort((a, b) => b.remainder - a.remainder || compareNames(a.name, b.name));
  for (const share of byRemainder) {
    if (left === 0) break;
    share.count += 1;
    left -= 1;
  }
  return new Map(shares.map((share) => [share.name, share.count]));
}

/**
 * Plans the slot table for `shards`.
 *
 * Without a current table: contiguous blocks in shard-name order, sized by `targetCounts`.
 *
 * With one: the fewest slots move. Shards of `current` missing from `shards` have a target of 0.
 * Every shard above its target gives up exactly its surplus, taken from its highest-numbered slots
 * (so its remaining slots stay at the start of its ranges); the freed slots, in ascending order,
 * fill the shards below their target in name order. No other slot changes owner. The result is a
 * pure function of `current` and the set of shards with their weights.
 * @throws PlanningError for invalid `shards` (see `targetCounts`) or an incomplete `current` table.
 */
export function planSlots(current: SlotTable | undefined, shards: readonly ShardWeight[]): SlotPlan {
  const targets = targetCounts(shards);
  const counts = Object.fromEntries(targets);
  if (current === undefined) return { table: initialTable(targets), moves: [], movedSlots: 0, counts };
  assertSlotTable(current);

  // Shards as indexes so the per-slot loops work on typed arrays only: the shards of the spec in
  // name order (the order deficits are filled in), then shards being removed as the table shows them.
  const names = [...targets.keys()];
  const indexOf = new Map(names.map((name, i) => [name, i]));
  const owner = new Int32Array(SLOT_COUNT);
  let i = -1;
  for (let slot = 0; slot < SLOT_COUNT; slot += 1) {
    // Owners come in runs: look the name up only where it changes.
    if (slot === 0 || current[slot] !== current[slot - 1]) {
      const name = current[slot] as string;
      i = indexOf.get(name) ?? names.push(name) - 1;
      indexOf.set(name, i);
    }
    owner[slot] = i;
  }
  const count = new Int32Array(names.length);
  for (let slot = 0; slot < SLOT_COUNT; slot += 1) {
    const index = owner[slot] as number;
    count[index] = (count[index] as number) + 1;
  }
  const surplus = new Int32Array(names.length);
  const deficit = new Int32Array(names.length);
  let movedSlots = 0;
  names.forEach((name, i) => {
    const difference = (count[i] as number) - (targets.get(name) ?? 0);
    if (difference > 0) {
      surplus[i] = difference;
      movedSlots += difference;
    } else deficit[i] = -difference;
  });

  // Every shrinking shard frees its highest-numbered slots; `freed` lists them descending.
  const freed = new Int32Array(movedSlots);
  let freedCount = 0;
  for (let slot = SLOT_COUNT - 1; slot >= 0 && freedCount < movedSlots; slot -= 1) {
    const i = owner[slot] as number;
    if ((surplus[i] as number) > 0) {
      surplus[i] = (surplus[i] as number) - 1;
      freed[freedCount] = slot;
      freedCount += 1;
    }
  }

  // Freed slots, ascending, fill the growing shards in name order.
  const table = current.slice();
  const moves: SlotMove[] = [];
  let receiver = 0;
  for (let k = movedSlots - 1; k >= 0; k -= 1) {
    const slot = freed[k] as number;
    while (deficit[receiver] === 0) receiver += 1;
    deficit[receiver] = (deficit[receiver] as number) - 1;
    const fromShard = current[slot] as string;
    const toShard = names[receiver] as string;
    table[slot] = toShard;
    const last = moves.at(-1);
    if (
      last !== undefined &&
      last.to === slot - 1 &&
      last.fromShard === fromShard &&
      last.toShard === toShard
    ) {
      last.to = slot;
    } else moves.push({ from: slot, to: slot, fromShard, toShard });
  }
  return { table, moves, movedSlots, counts };
}

function initialTable(targets: ReadonlyMap<string, number>): string[] {
  const table: string[] = [];
  for (const [name, count] of targets) for (let n = 0; n < count; n += 1) table.push(name);
  return table;
}
