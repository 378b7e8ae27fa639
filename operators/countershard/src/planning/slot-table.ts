/** Redis Cluster's slot count: `slot = crc16(name) mod 16384` (DESIGN §3). */
export const SLOT_COUNT = 16_384;

/** Owner shard name of every slot, index = slot. Length SLOT_COUNT. */
export type SlotTable = readonly string[];

/** A contiguous range of slots (inclusive bounds) owned by one shard, as in `slotmap.json`. */
export interface SlotRange {
  from: number;
  to: number;
  shard: string;
}

/** A slot table, a shard list or a range list that cannot be planned with; the message says why. */
export class PlanningError extends Error {
  override readonly name = 'PlanningError';
}

/**
 * Checks that `table` is a complete slot table: SLOT_COUNT entries, each a non-empty shard name.
 * @throws PlanningError naming the first problem.
 */
export function assertSlotTable(table: SlotTable): void {
  if (table.length !== SLOT_COUNT) {
    throw new PlanningError(`slot table has ${table.length} slots, expected ${SLOT_COUNT}`);
  }
  for (let slot = 0; slot < SLOT_COUNT; slot += 1) {
    const owner = table[slot];
    if (typeof owner !== 'string' || owner.length === 0) {
      throw new PlanningError(`slot ${slot} has no owner shard`);
    }
  }
}

/**
 * The table as maximal runs of contiguous slots with the same owner, ascending by `from`.
 * @throws PlanningError when `table` is not a complete slot table.
 */
export function rangesOf(table: SlotTable): SlotRange[] {
  assertSlotTable(table);
  const ranges: SlotRange[] = [];
  let start = 0;
  for (let slot = 1; slot <= SLOT_COUNT; slot += 1) {
    if (slot === SLOT_COUNT || table[slot] !== table[start]) {
      ranges.push({ from: start, to: slot - 1, shard: table[start] as string });
      start = slot;
    }
  }
  return ranges;
}

/**
 * The slot table described by `ranges` (any order). Ranges must be integer, inclusive, within
 * 0..SLOT_COUNT-1, name a shard, and cover every slot exactly once.
 * @throws PlanningError on a malformed range, an overlap or a gap.
 */
export function tableOf(ranges: readonly SlotRange[]): SlotTable {
  const table = new Array<string>(SLOT_COUNT).fill('');
  for (const { from, to, shard } of ranges) {
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to >= SLOT_COUNT || from > to) {
      throw new PlanningError(`range ${from}-${to} is not within 0-${SLOT_COUNT - 1} in ascending order`);
    }
    if (typeof shard !== 'string' || shard.length === 0) {
      throw new PlanningError(`range ${from}-${to} names no shard`);
    }
    for (let slot = from; slot <= to; slot += 1) {
      if (table[slot] !== '') throw new PlanningError(`slot ${slot} is in two ranges`);
      table[slot] = shard;
    }
  }
  const gap = table.indexOf('');
  if (gap !== -1) throw new PlanningError(`slot ${gap} is in no range`);
  return table;
}

/** Number of slots each shard owns in `table` (only shards owning at least one slot). */
export function countsOf(table: SlotTable): Map<string, number> {
  const counts = new Map<string, number>();
  for (const owner of table) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return counts;
}
