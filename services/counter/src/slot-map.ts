import { z } from 'zod';
import { SLOT_COUNT } from './keys.js';

/** A contiguous range of slots (inclusive bounds) owned by one shard. */
export interface SlotRange {
  from: number;
  to: number;
  shard: string;
}

/** Slots moving from one shard to another (DESIGN §3): writes go to `toShard`, reads sum both. */
export interface MigratingRange {
  from: number;
  to: number;
  fromShard: string;
  toShard: string;
}

/** The slot map as published by the operator (`slotmap.json`, DESIGN §3). */
export interface SlotMapDocument {
  epoch: number;
  ranges: SlotRange[];
  shards: Record<string, { masterName: string }>;
  migrating: MigratingRange[];
  /**
   * Redis hash (on every shard) where pods acknowledge this map's epoch; the operator names one
   * per CounterShard so pods of different deployments never hold each other's migrations.
   * Absent = `hyperscale:slotmap:acks`.
   */
  acksKey?: string | undefined;
}

/** Where one slot lives right now. `migratingFrom` is set while the slot moves to `shard`. */
export interface SlotRoute {
  shard: string;
  migratingFrom: string | undefined;
}

const slot = z
  .number()
  .int()
  .min(0)
  .max(SLOT_COUNT - 1);
const shardName = z.string().min(1).max(100);

const documentSchema = z.object({
  epoch: z.number().int().min(0),
  ranges: z.array(z.object({ from: slot, to: slot, shard: shardName })).min(1),
  shards: z.record(shardName, z.object({ masterName: z.string().min(1) })),
  migrating: z
    .array(z.object({ from: slot, to: slot, fromShard: shardName, toShard: shardName }))
    .default([]),
  acksKey: z
    .string()
    .regex(/^[A-Za-z0-9:/._-]{1,200}$/)
    .optional(),
});

/** A slot map that cannot be applied; the message says why. */
export class SlotMapError extends Error {
  override readonly name = 'SlotMapError';
}

/**
 * A validated slot map with O(1) lookups. Invariants checked at construction: ranges cover every
 * slot exactly once, every shard referenced is declared, migrating ranges name two different
 * declared shards and their `toShard` is the range's owner in `ranges` (the new table).
 */
export class SlotMap {
  readonly epoch: number;
  readonly document: SlotMapDocument;
  private readonly owner: Uint16Array;
  private readonly from: Int32Array;
  private readonly names: string[];

  private constructor(document: SlotMapDocument) {
    this.epoch = document.epoch;
    this.document = document;
    this.names = Object.keys(document.shards).sort();
    const index = new Map(this.names.map((name, i) => [name, i]));
    const known = (name: string, where: string): number => {
      const i = index.get(name);
      if (i === undefined) throw new SlotMapError(`${where} names undeclared shard ${name}`);
      return i;
    };
    this.owner = new Uint16Array(SLOT_COUNT).fill(0xffff);
    for (const range of document.ranges) {
      if (range.from > range.to) throw new SlotMapError(`range ${range.from}-${range.to} is reversed`);
      const i = known(range.shard, `range ${range.from}-${range.to}`);
      for (let s = range.from; s <= range.to; s += 1) {
        if (this.owner[s] !== 0xffff) throw new SlotMapError(`slot ${s} is in two ranges`);
        this.owner[s] = i;
      }
    }
    const gap = this.owner.indexOf(0xffff);
    if (gap !== -1) throw new SlotMapError(`slot ${gap} is in no range`);
    this.from = new Int32Array(SLOT_COUNT).fill(-1);
    for (const m of document.migrating) {
      if (m.from > m.to) throw new SlotMapError(`migrating range ${m.from}-${m.to} is reversed`);
      if (m.fromShard === m.toShard)
        throw new SlotMapError(`migrating range ${m.from}-${m.to} moves nowhere`);
      const fromIndex = known(m.fromShard, 'migrating range');
      const toIndex = known(m.toShard, 'migrating range');
      for (let s = m.from; s <= m.to; s += 1) {
        if (this.owner[s] !== toIndex) {
          throw new SlotMapError(`migrating slot ${s}: toShard ${m.toShard} is not its owner in ranges`);
        }
        this.from[s] = fromIndex;
      }
    }
  }

  /**
   * Parses and validates a document (the JSON of `slotmap.json`).
   * @throws SlotMapError with the first problem found.
   */
  static parse(input: unknown): SlotMap {
    const parsed = documentSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new SlotMapError(`invalid slot map at ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? ''}`);
    }
    return new SlotMap(parsed.data);
  }

  /**
   * The default map when no file is configured: the 16384 slots split evenly, in order, over
   * `masterNames` (shard name = master name), epoch 0. Every pod computes the same table.
   * @throws SlotMapError when no shard is given.
   */
  static evenSplit(masterNames: readonly string[]): SlotMap {
    if (masterNames.length === 0) throw new SlotMapError('no shard to split the slots over');
    const per = Math.floor(SLOT_COUNT / masterNames.length);
    const ranges = masterNames.map((shard, i) => ({
      from: i * per,
      to: i === masterNames.length - 1 ? SLOT_COUNT - 1 : (i + 1) * per - 1,
      shard,
    }));
    const shards = Object.fromEntries(masterNames.map((name) => [name, { masterName: name }]));
    return new SlotMap({ epoch: 0, ranges, shards, migrating: [] });
  }

  /** Declared shard names (sorted). */
  shardNames(): readonly string[] {
    return this.names;
  }

  /** Where `slot` lives; `migratingFrom` names the old shard while the slot moves. */
  route(slotNumber: number): SlotRoute {
    const owner = this.names[this.owner[slotNumber] ?? -1];
    if (owner === undefined) throw new RangeError(`slot ${slotNumber} out of range`);
    const fromIndex = this.from[slotNumber] ?? -1;
    return { shard: owner, migratingFrom: fromIndex === -1 ? undefined : this.names[fromIndex] };
  }

  /** Number of slots currently migrating (a metric). */
  migratingSlots(): number {
    let n = 0;
    for (const f of this.from) if (f !== -1) n += 1;
    return n;
  }
}
