import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SlotMove, SlotRange } from '../planning/index.js';
import { classifyKey, moveKeys, partialMarker, stagingKey } from './keys.js';
import { COPY_MARKER, MERGE_COUNTER, TAKE_COUNTER, UNION_COPY } from './scripts.js';
import type { Throttle } from './throttle.js';

/** What one pass of the mover did. */
export interface MoveReport {
  /** Counter hashes added to their new shard. */
  countersMoved: number;
  /** Counter hashes found stale and left cold on the new shard (re-warmed from MySQL). */
  countersCold: number;
  /** Set-like keys (unique sets, HLLs, markers, presence) unioned into the new shard. */
  setKeysCopied: number;
  /** Interrupted counter moves found and finished (an earlier pass died mid-move). */
  resumed: number;
  /** Keys of the old shards looked at. */
  keysScanned: number;
}

export interface MoverOptions {
  /** Master of each shard named by the migrating ranges. */
  clients: ReadonlyMap<string, Redis>;
  /**
   * When each source shard started to migrate (its clock, ms; MIGRATION_STARTED_ANNOTATION). A
   * counter hash a warm filled at or after that moment (`w`) is left cold on the new shard instead
   * of being added: its MySQL snapshot may hold deltas the partial holds too. A source shard
   * missing here trusts no filled hash. Omitted altogether: filled hashes are not checked.
   */
  migrationStarted?: ReadonlyMap<string, number>;
  throttle: Throttle;
  signal: AbortSignal;
  logger: Logger;
  /** Called after every moved key (metrics). */
  onKeyMoved?: (kind: 'counter' | 'set-like') => void;
  /** How long done-markers of counter moves are kept. Default 1 day. */
  doneTtlMs?: number;
  /** SCAN COUNT hint. Default 1000. */
  scanCount?: number;
  /** Keys moved at the same time (each move is a few round trips). Default 32. */
  concurrency?: number;
}

/** Runs `fn` over `items` with at most `limit` calls in flight; the first failure rejects. */
async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const token = (): string => randomBytes(8).toString('hex');

function client(clients: ReadonlyMap<string, Redis>, shard: string): Redis {
  const c = clients.get(shard);
  if (c === undefined) throw new Error(`no connection to shard ${shard}`);
  return c;
}

/** Slot → target shard of every migrating slot, grouped by source shard. */
function targetsBySource(migrating: readonly SlotMove[]): Map<string, Map<number, string>> {
  const bySource = new Map<string, Map<number, string>>();
  for (const m of migrating) {
    let targets = bySource.get(m.fromShard);
    if (targets === undefined) bySource.set(m.fromShard, (targets = new Map()));
    for (let s = m.from; s <= m.to; s += 1) targets.set(s, m.toShard);
  }
  return bySource;
}

/** Every key of `redis` (SCAN, each call bounded by the client's command timeout). */
async function scanAll(redis: Redis, count: number, signal: AbortSignal, match = '*'): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    signal.throwIfAborted();
    const [next, batch] = await redis.scan(cursor, 'MATCH', match, 'COUNT', count);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

/**
 * Moves the data of `migrating` slots from their old shard to their new one (DESIGN §3 step 4).
 * Safe to run again at any time, also after a crash mid-pass: unfinished counter moves are
 * finished first (their records), counters are moved exactly once, set-like keys are unioned.
 * Runs only after every live pod applies the migrating map, so no pod writes a moving counter on
 * its old shard any more.
 */
export async function moveMigratingSlots(
  migrating: readonly SlotMove[],
  options: MoverOptions,
): Promise<MoveReport> {
  const report: MoveReport = {
    countersMoved: 0,
    countersCold: 0,
    setKeysCopied: 0,
    resumed: 0,
    keysScanned: 0,
  };
  for (const [source, targets] of targetsBySource(migrating)) {
    const from = client(options.clients, source);
    const filledSince =
      options.migrationStarted === undefined ? undefined : (options.migrationStarted.get(source) ?? 0);
    // 1. Moves an earlier pass started and did not finish.
    for (const record of await scanAll(from, options.scanCount ?? 1_000, options.signal, 'mv:*:k')) {
      const kind = classifyKey(record);
      if (kind.kind !== 'move-record') continue;
      const target = targets.get(kind.slot);
      if (target === undefined) continue;
      await finishCounterMove(
        from,
        client(options.clients, target),
        kind.slot,
        kind.token,
        filledSince,
        options,
        report,
      );
      report.resumed += 1;
    }
    // 2. Everything in the moving slots.
    const keys = await scanAll(from, options.scanCount ?? 1_000, options.signal);
    report.keysScanned += keys.length;
    const counters: { key: string; slot: number; to: Redis }[] = [];
    const presence: { key: string; slot: number; to: Redis }[] = [];
    const uniqueGroups = new Map<string, UniqueGroup & { to: Redis }>();
    for (const key of keys) {
      const kind = classifyKey(key);
      if (kind.slot === undefined) continue;
      const target = targets.get(kind.slot);
      if (target === undefined) continue;
      const to = client(options.clients, target);
      if (kind.kind === 'counter') counters.push({ key, slot: kind.slot, to });
      else if (kind.kind === 'presence') presence.push({ key, slot: kind.slot, to });
      else if (kind.kind === 'unique') {
        const id = `${kind.slot}|${kind.group}`;
        const group = uniqueGroups.get(id) ?? { slot: kind.slot, to };
        group[kind.part] = key;
        uniqueGroups.set(id, group);
      }
    }
    const limit = options.concurrency ?? 32;
    await forEachLimit(counters, limit, async ({ key, slot, to }) => {
      // ctr:{s}:<name> hashes move; their pending sets (zsets) move with them (TAKE checks the type).
      await options.throttle.take(1, options.signal);
      await moveCounter(from, to, slot, key, filledSince, options, report);
    });
    await forEachLimit(presence, limit, async ({ key, slot, to }) => {
      await options.throttle.take(1, options.signal);
      await unionCopy(from, to, slot, key, 'zset', options, report);
    });
    await forEachLimit([...uniqueGroups.values()], limit, async (group) => {
      await options.throttle.take(
        1 + Number(group.hll !== undefined) + Number(group.marker !== undefined),
        options.signal,
      );
      await copyUniqueGroup(from, group.to, group, options, report);
    });
  }
  return report;
}

interface UniqueGroup {
  slot: number;
  set?: string;
  hll?: string;
  marker?: string;
}

/** Splits `{f1, v1, ..., '|', member1, deadline1, ...}` into the hash and the pending pairs. */
function splitTaken(flat: readonly string[]): { hash: Record<string, string>; pending: string[] } {
  const bar = flat.indexOf('|');
  const fields = bar === -1 ? flat : flat.slice(0, bar);
  const hash: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) hash[fields[i] ?? ''] = fields[i + 1] ?? '';
  return { hash, pending: bar === -1 ? [] : flat.slice(bar + 1) };
}

async function moveCounter(
  from: Redis,
  to: Redis,
  slot: number,
  key: string,
  filledSince: number | undefined,
  options: MoverOptions,
  report: MoveReport,
): Promise<void> {
  const id = token();
  const keys = moveKeys(slot, id);
  const reply = (await from.eval(
    TAKE_COUNTER,
    5,
    key,
    `${key}:p`,
    keys.record,
    keys.value,
    keys.pending,
    key,
  )) as (string | number)[];
  if (reply[0] !== 1) return; // not a counter hash, or gone meanwhile (expired, made cold)
  const { hash, pending } = splitTaken(reply.slice(2).map(String));
  await mergeMoved(
    from,
    to,
    slot,
    id,
    { key, pttl: Number(reply[1]) },
    hash,
    pending,
    filledSince,
    options,
    report,
  );
}

/** Finishes a move an earlier pass started (its record is still on the old shard). */
async function finishCounterMove(
  from: Redis,
  to: Redis,
  slot: number,
  id: string,
  filledSince: number | undefined,
  options: MoverOptions,
  report: MoveReport,
): Promise<void> {
  const keys = moveKeys(slot, id);
  const [recordJson, hash, pending] = await Promise.all([
    from.get(keys.record),
    from.hgetall(keys.value),
    from.zrange(keys.pending, 0, -1, 'WITHSCORES'),
  ]);
  if (recordJson === null) {
    await from.del(keys.value, keys.pending);
    return;
  }
  const record = JSON.parse(recordJson) as { key: string; pttl: number };
  await mergeMoved(from, to, slot, id, record, hash, pending, filledSince, options, report);
}

/** Steps 2–3 of a counter move: add on the new shard (exactly once), then drop the record. */
async function mergeMoved(
  from: Redis,
  to: Redis,
  slot: number,
  id: string,
  record: { key: string; pttl: number },
  hash: Record<string, string>,
  pending: readonly string[],
  filledSince: number | undefined,
  options: MoverOptions,
  report: MoveReport,
): Promise<void> {
  const keys = moveKeys(slot, id);
  const filled = hash['w'];
  // No value = stale for MERGE_COUNTER: the counter is left cold, re-warmed from MySQL.
  const untrusted = filledSince !== undefined && filled !== undefined && Number(filled) >= filledSince;
  const result = (await to.eval(
    MERGE_COUNTER,
    4,
    record.key,
    `${record.key}:p`,
    keys.done,
    partialMarker(record.key),
    untrusted ? '' : (hash['v'] ?? ''),
    hash['g'] ?? '',
    hash['m'] ?? '0',
    record.pttl,
    options.doneTtlMs ?? 86_400_000,
    ...pending,
  )) as number;
  if (result === 1) report.countersMoved += 1;
  if (result === 2) report.countersCold += 1;
  options.onKeyMoved?.('counter');
  await from.del(keys.record, keys.value, keys.pending);
}

async function unionCopy(
  from: Redis,
  to: Redis,
  slot: number,
  key: string,
  kind: 'set' | 'hll' | 'zset',
  options: MoverOptions,
  report: MoveReport,
): Promise<void> {
  const [dump, pttl] = await Promise.all([from.dumpBuffer(key), from.pttl(key)]);
  if (dump === null) return;
  const staged = stagingKey(slot, token());
  await to.restore(staged, 60_000, dump, 'REPLACE');
  await to.eval(UNION_COPY, 2, key, staged, kind, pttl);
  report.setKeysCopied += 1;
  options.onKeyMoved?.('set-like');
}

/**
 * A unique day set, its HLL and its warm marker. The marker is read BEFORE the set is copied and
 * copied only if it was there: the old set was then complete when dumped, every later member was
 * dual-written, so the new set is complete too. A marker that appears later (a warm on the old
 * shard during the migration) is not copied; the new shard warms itself after the migration.
 */
async function copyUniqueGroup(
  from: Redis,
  to: Redis,
  group: UniqueGroup,
  options: MoverOptions,
  report: MoveReport,
): Promise<void> {
  const marker =
    group.marker === undefined ? null : await Promise.all([from.get(group.marker), from.pttl(group.marker)]);
  if (group.set !== undefined) await unionCopy(from, to, group.slot, group.set, 'set', options, report);
  if (group.hll !== undefined) await unionCopy(from, to, group.slot, group.hll, 'hll', options, report);
  if (group.marker !== undefined && marker !== null && marker[0] !== null) {
    await to.eval(COPY_MARKER, 1, group.marker, marker[0], marker[1]);
    report.setKeysCopied += 1;
    options.onKeyMoved?.('set-like');
  }
}

/**
 * After the finalized map is applied everywhere: deletes what is left of moved slots on their old
 * shard (set-like keys read there until the move, strays), and the pods' partial markers of those
 * slots on every shard (no pod writes a partial there any more; a merge drops the others). Returns
 * the number of keys deleted.
 */
export async function cleanupMovedSlots(
  ranges: readonly SlotRange[],
  options: Omit<MoverOptions, 'onKeyMoved'>,
): Promise<number> {
  const bySource = new Map<string, Set<number>>();
  const moved = new Set<number>();
  for (const r of ranges) {
    let slots = bySource.get(r.shard);
    if (slots === undefined) bySource.set(r.shard, (slots = new Set()));
    for (let s = r.from; s <= r.to; s += 1) {
      slots.add(s);
      moved.add(s);
    }
  }
  let deleted = 0;
  for (const shard of new Set([...bySource.keys(), ...options.clients.keys()])) {
    const redis = client(options.clients, shard);
    const slots = bySource.get(shard);
    const doomed = (await scanAll(redis, options.scanCount ?? 1_000, options.signal)).filter((key) => {
      const kind = classifyKey(key);
      if (kind.kind === 'partial-marker') return moved.has(kind.slot);
      return (
        kind.slot !== undefined &&
        slots?.has(kind.slot) === true &&
        (kind.kind === 'counter' || kind.kind === 'unique' || kind.kind === 'presence')
      );
    });
    for (let i = 0; i < doomed.length; i += 500) {
      const batch = doomed.slice(i, i + 500);
      await options.throttle.take(batch.length, options.signal);
      deleted += await redis.unlink(...batch);
    }
  }
  return deleted;
}
