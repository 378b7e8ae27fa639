import { z } from 'zod';
import {
  SLOT_COUNT,
  rangesOf,
  tableOf,
  type SlotMove,
  type SlotRange,
  type SlotTable,
} from './planning/index.js';

/**
 * The document published in ConfigMap `<name>-slotmap` under `slotmap.json` (DESIGN §3), read by
 * every counter pod (services/counter/src/slot-map.ts validates the same shape).
 */
export interface SlotMapDocument {
  epoch: number;
  ranges: SlotRange[];
  /** Every shard a pod may need: owners in `ranges` and the sources of migrating ranges. */
  shards: Record<string, { masterName: string }>;
  /** Slots moving: writes go to `toShard` (their owner in `ranges`), reads also see `fromShard`. */
  migrating: SlotMove[];
  /** Redis hash where the pods of this CounterShard acknowledge epochs ({@link acksKeyOf}). */
  acksKey: string;
}

/** One acknowledgement hash per CounterShard: pods of other deployments never hold its migrations. */
export function acksKeyOf(namespace: string, name: string): string {
  return `hyperscale:slotmap:acks:${namespace}/${name}`;
}

export const SLOTMAP_KEY = 'slotmap.json';

/**
 * Old-shard ranges whose data was moved by the last migration and whose leftovers (set-like keys
 * read there until the move finished, late strays) are deleted once every pod applies the
 * finalized map. Kept on the ConfigMap so an operator restart finishes the clean-up.
 */
export const CLEANUP_ANNOTATION = 'hyperscale.dev/cleanup';

/**
 * When each source shard of the current migration started to migrate, on that shard's own clock
 * (Redis TIME, ms), written with the migrating map. A counter hash a warm filled on the old shard
 * after that moment (its `w` field) may hold, from its MySQL snapshot, deltas that pods already
 * wrote to the new shard's partial: the mover leaves such a counter cold instead of adding it.
 */
export const MIGRATION_STARTED_ANNOTATION = 'hyperscale.dev/migration-started';

const slot = z
  .number()
  .int()
  .min(0)
  .max(SLOT_COUNT - 1);
const documentSchema = z.object({
  epoch: z.number().int().min(0),
  ranges: z.array(z.object({ from: slot, to: slot, shard: z.string().min(1) })).min(1),
  shards: z.record(z.string().min(1), z.object({ masterName: z.string().min(1) })),
  migrating: z
    .array(z.object({ from: slot, to: slot, fromShard: z.string().min(1), toShard: z.string().min(1) }))
    .default([]),
  acksKey: z.string().min(1),
});
const cleanupSchema = z.array(z.object({ from: slot, to: slot, shard: z.string().min(1) }));

/** A ConfigMap's slot map that cannot be used; the operator reports it instead of overwriting it. */
export class SlotMapDocumentError extends Error {
  override readonly name = 'SlotMapDocumentError';
}

/** Parses `slotmap.json`; the table must cover every slot once. */
export function parseSlotMapDocument(json: string): { document: SlotMapDocument; table: SlotTable } {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new SlotMapDocumentError(`slotmap.json is not JSON: ${(err as Error).message}`);
  }
  const parsed = documentSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SlotMapDocumentError(
      `slotmap.json invalid at ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? ''}`,
    );
  }
  try {
    return { document: parsed.data, table: tableOf(parsed.data.ranges) };
  } catch (err) {
    throw new SlotMapDocumentError(`slotmap.json ranges: ${(err as Error).message}`);
  }
}

export function parseCleanup(value: string | undefined): SlotRange[] {
  if (value === undefined || value === '') return [];
  const parsed = cleanupSchema.safeParse(JSON.parse(value));
  if (!parsed.success) throw new SlotMapDocumentError(`${CLEANUP_ANNOTATION} is invalid`);
  return parsed.data;
}

const startedSchema = z.record(z.string().min(1), z.number().int().min(0));

/**
 * Parses the migration-started annotation. Missing or unreadable → an empty map: the mover then
 * trusts no warmed hash of any source shard (safe: those counters are re-warmed from MySQL).
 */
export function parseMigrationStarted(value: string | undefined): Map<string, number> {
  if (value === undefined || value === '') return new Map();
  try {
    const parsed = startedSchema.safeParse(JSON.parse(value));
    return parsed.success ? new Map(Object.entries(parsed.data)) : new Map();
  } catch {
    return new Map();
  }
}

/** Builds a document from a table; `shards` lists the masters of every shard named. */
export function buildDocument(
  epoch: number,
  table: SlotTable,
  migrating: readonly SlotMove[],
  masters: ReadonlyMap<string, string>,
  acksKey: string,
): SlotMapDocument {
  const ranges = rangesOf(table);
  const names = new Set<string>(ranges.map((r) => r.shard));
  for (const m of migrating) names.add(m.fromShard);
  const shards: Record<string, { masterName: string }> = {};
  for (const name of [...names].sort()) {
    const masterName = masters.get(name);
    if (masterName === undefined) throw new SlotMapDocumentError(`no masterName known for shard ${name}`);
    shards[name] = { masterName };
  }
  return { epoch, ranges, shards, migrating: [...migrating], acksKey };
}

/** Slots per shard in a table. */
export function slotCounts(table: SlotTable): Map<string, number> {
  const counts = new Map<string, number>();
  for (const owner of table) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return counts;
}

export function migratingSlotCount(migrating: readonly SlotMove[]): number {
  return migrating.reduce((n, m) => n + (m.to - m.from + 1), 0);
}
