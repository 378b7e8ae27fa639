import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import {
  badRequest,
  serviceUnavailable,
  type MysqlRouter,
  type RedisShardClient,
  type ScriptInvokers,
  WriterBarrier,
  type HighWatermarkSource,
} from '@hyperscale/platform';
import type { CounterStore, EventSink } from './counter-store.js';
import { RedisPathError, isColdReply } from './errors.js';
import { slotOf } from './keys.js';

/** Options of {@link UniquesStore}. */
export interface UniquesOptions {
  topic: string;
  writerGroupId: string;
  /** How long day sets and HLLs live in Redis (days). */
  retentionDays: number;
  /** Max writer-barrier wait of a warm / MySQL read. */
  warmWaitMs: number;
  /** Budget of one Kafka send. */
  kafkaTimeoutMs: number;
}

/** The unique event on `uniques.events.v1` (key = name). */
export interface UniqueEvent {
  eventId: string;
  name: string;
  userId: string;
  /** UTC day of `at`, YYYY-MM-DD. */
  day: string;
  at: string;
}

/** Max days of a `from`/`to` range (a quarter). */
export const MAX_RANGE_DAYS = 92;
const DAY_MS = 86_400_000;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** Keys of one name and day, all in the name's slot: exact set, warm marker (generation), HLL. */
export function uniqueKeys(name: string, day: string): { set: string; gen: string; hll: string } {
  const base = `uq:{${slotOf(name)}}:${name}`;
  return { set: `${base}:s:${day}`, gen: `${base}:g:${day}`, hll: `${base}:h:${day}` };
}

/** KEYS set, gen, hll; ARGV userId, ttlMs. COLD unless warm; else SADD + PFADD; returns {added, gen}. */
const ADD = `
local gen = redis.call('GET', KEYS[2])
if not gen then return redis.error_reply('COLD day set is not in Redis') end
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PFADD', KEYS[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return {added, gen}
`;

/**
 * KEYS set, gen, hll; ARGV gen, ttlMs, final '1'|'0', users... Adds a chunk of the MySQL snapshot
 * to the set and HLL (a union: anything already there is a subset of the truth); the final chunk
 * marks the day warm. Returns 0 when it was warm already.
 */
const FILL = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if #ARGV > 3 then
  redis.call('SADD', KEYS[1], unpack(ARGV, 4))
  redis.call('PFADD', KEYS[3], unpack(ARGV, 4))
end
if ARGV[3] == '1' then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
return 1
`;

/**
 * KEYS set, hll; ARGV userId, ttlMs. The NEW shard of a migrating slot ("partial" mode): SADD +
 * PFADD without the warm marker, which this script neither needs nor sets. The set there is
 * partial until the operator's mover unions the old set, HLL and marker into it.
 */
const PARTIAL_ADD = `
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PFADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return added
`;

/** KEYS set, gen; ARGV gen. After the ack: re-warmed meanwhile → delete set + marker (cold). */
const ACKED = `
if redis.call('GET', KEYS[2]) == ARGV[1] then return 1 end
redis.call('DEL', KEYS[1], KEYS[2])
return 0
`;

/** KEYS set, gen. {0} cold, else {1, SCARD}. */
const COUNT = `
if redis.call('EXISTS', KEYS[2]) == 0 then return {0} end
return {1, redis.call('SCARD', KEYS[1])}
`;

const UNIQUE_SCRIPTS = {
  uqAdd: { lua: ADD, numberOfKeys: 3 },
  uqPartialAdd: { lua: PARTIAL_ADD, numberOfKeys: 2 },
  uqFill: { lua: FILL, numberOfKeys: 3 },
  uqAcked: { lua: ACKED, numberOfKeys: 2 },
  uqCount: { lua: COUNT, numberOfKeys: 2 },
};
const invokers = new WeakMap<RedisShardClient, ScriptInvokers<typeof UNIQUE_SCRIPTS>>();

function scriptsOf(client: RedisShardClient): ScriptInvokers<typeof UNIQUE_SCRIPTS> {
  let scripts = invokers.get(client);
  if (scripts === undefined) {
    scripts = client.defineScripts(UNIQUE_SCRIPTS);
    invokers.set(client, scripts);
  }
  return scripts;
}

/** UTC day (YYYY-MM-DD) of a timestamp. */
export function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Parses YYYY-MM-DD into ms at 00:00 UTC, or undefined when it is not a real calendar day. */
export function parseDay(day: string): number | undefined {
  if (!DAY.test(day)) return undefined;
  const ms = Date.parse(`${day}T00:00:00.000Z`);
  return Number.isNaN(ms) || dayOf(ms) !== day ? undefined : ms;
}

/**
 * Unique users per name and day (DAU; WAU/MAU as ranges). Exact per-day sets and a HyperLogLog per
 * day in Redis (same slot as the name), each event produced to Kafka and awaited, persisted by the
 * writer with INSERT IGNORE into `unique_daily` (the primary key de-duplicates, also across
 * fallbacks). A day set is trusted only while its marker exists: a missing one is warmed from
 * `unique_daily` behind the writer barrier. Kafka down → INSERT IGNORE on the primary directly.
 * Redis down → the same, reads of `?day=` from MySQL COUNT(*), ranges from COUNT(DISTINCT).
 * A migrating slot (DESIGN §3, set-like data): the old shard takes the marker-checked write and
 * answers reads until the slot is moved; the new shard gets the same user without a marker
 * (partial), and the operator's mover unions the old set, HLL and marker into it.
 */
export class UniquesStore {
  private readonly barrier: WriterBarrier;
  private readonly warming = new Map<string, Promise<'warm' | 'barrier-missed'>>();
  private readonly dirty = new Map<string, PendingRepair>();
  private readonly repairTimer: NodeJS.Timeout;
  private readonly events: Counter<'path'>;
  private readonly migrationWrites: Counter<'outcome'>;
  private readonly logger: Logger;
  private readonly ttlMs: number;

  constructor(
    private readonly deps: {
      counters: CounterStore;
      router: MysqlRouter;
      producer: EventSink;
      highWatermarks: HighWatermarkSource;
      logger: Logger;
      registry: Registry;
    },
    private readonly options: UniquesOptions,
  ) {
    this.logger = deps.logger.child({ component: 'uniques' });
    this.ttlMs = options.retentionDays * DAY_MS;
    this.barrier = new WriterBarrier({
      topic: options.topic,
      groupId: options.writerGroupId,
      highWatermarks: deps.highWatermarks,
      primary: deps.router.primary,
      logger: deps.logger,
    });
    this.events = new Counter({
      name: 'hyperscale_counter_unique_events_total',
      help: 'Unique events accepted, by the path that made them durable',
      labelNames: ['path'],
      registers: [deps.registry],
    });
    this.migrationWrites = new Counter({
      name: 'hyperscale_counter_unique_migration_writes_total',
      help: 'Partial writes of unique events to the new shard of a migrating slot, by outcome (ok, failed)',
      labelNames: ['outcome'],
      registers: [deps.registry],
    });
    this.repairTimer = setInterval(() => void this.repair(), 500);
    this.repairTimer.unref();
  }

  /**
   * Records that `userId` was active on the UTC day of `atMs`; resolves once durable.
   * During a slot migration the event also goes to the new shard (see {@link addToMigrationTarget}).
   * @throws HttpProblem 400 (`body.at`) when the time is over 5 minutes ahead or beyond retention.
   */
  async record(name: string, userId: string, atMs: number): Promise<{ day: string }> {
    const now = Date.now();
    if (atMs > now + 300_000) throw badRequest('body.at', 'must not be in the future');
    if (atMs < now - this.ttlMs)
      throw badRequest('body.at', `must be within the last ${this.options.retentionDays} days`);
    const day = dayOf(atMs);
    const event: UniqueEvent = { eventId: randomUUID(), name, userId, day, at: new Date(atMs).toISOString() };
    const { shard, migrationTarget } = this.routeOf(name);
    const path = await this.recordOnOwner(shard, event);
    if (migrationTarget !== undefined) await this.addToMigrationTarget(migrationTarget, event);
    this.events.inc({ path });
    return { day };
  }

  /** Exact distinct users of `name` on `day` (SCARD; MySQL COUNT when Redis cannot answer). */
  async exact(name: string, day: string): Promise<number> {
    const shard = this.shardOf(name);
    const keys = uniqueKeys(name, day);
    let barrierMissed = false;
    try {
      for (let round = 0; round < 2; round += 1) {
        const reply = (await this.onShard(shard, (c) =>
          scriptsOf(c).uqCount([keys.set, keys.gen]),
        )) as number[];
        if (reply[0] === 1) return Number(reply[1]);
        if ((await this.warm(shard, name, day)) === 'barrier-missed') {
          barrierMissed = true;
          break;
        }
      }
    } catch (err) {
      if (!(err instanceof RedisPathError) && !(err instanceof WarmFailed)) throw err;
    }
    // The warm already waited warmWaitMs for the barrier in vain: a second wait would double the
    // request's bound, so MySQL answers at once.
    if (!barrierMissed) await this.barrier.waitForKey(name, this.options.warmWaitMs);
    const [row] = await this.mysql(() =>
      this.deps.router.primary.select<{ n: string | number }>(
        'SELECT COUNT(*) AS n FROM unique_daily WHERE name = ? AND day = ?',
        [name, day],
      ),
    );
    return Number(row?.n ?? 0);
  }

  /** Approximate distinct users over [from, to] (PFCOUNT of the days' HLLs; MySQL COUNT DISTINCT when Redis fails). */
  async range(name: string, from: string, to: string): Promise<number> {
    const fromMs = parseDay(from);
    const toMs = parseDay(to);
    if (fromMs === undefined) throw badRequest('query.from', 'must be a calendar day YYYY-MM-DD');
    if (toMs === undefined) throw badRequest('query.to', 'must be a calendar day YYYY-MM-DD');
    if (toMs < fromMs) throw badRequest('query.to', 'must not be before query.from');
    if ((toMs - fromMs) / DAY_MS + 1 > MAX_RANGE_DAYS)
      throw badRequest('query.to', `a range covers at most ${MAX_RANGE_DAYS} days`);
    const days: string[] = [];
    for (let ms = fromMs; ms <= toMs; ms += DAY_MS) days.push(dayOf(ms));
    const shard = this.shardOf(name);
    try {
      return Number(
        await this.onShard(shard, (c) =>
          c.run((r) => r.pfcount(...days.map((d) => uniqueKeys(name, d).hll))),
        ),
      );
    } catch (err) {
      if (!(err instanceof RedisPathError)) throw err;
    }
    const [row] = await this.mysql(() =>
      this.deps.router.primary.select<{ n: string | number }>(
        'SELECT COUNT(DISTINCT user_id) AS n FROM unique_daily WHERE name = ? AND day BETWEEN ? AND ?',
        [name, from, to],
      ),
    );
    return Number(row?.n ?? 0);
  }

  /** Stops the repair loop and releases barrier waiters. */
  close(): void {
    clearInterval(this.repairTimer);
    this.barrier.close();
  }

  // ---------------------------------------------------------------------------------------------

  /** Slot owner for reads and the marker-checked write; during a migration also the new shard. */
  private routeOf(name: string): { shard: string; migrationTarget: string | undefined } {
    const route = this.deps.counters.currentMap().route(slotOf(name));
    return route.migratingFrom === undefined
      ? { shard: route.shard, migrationTarget: undefined }
      : { shard: route.migratingFrom, migrationTarget: route.shard };
  }

  /** Set-like data during a migration is written to both shards and read from the old one. */
  private shardOf(name: string): string {
    return this.routeOf(name).shard;
  }

  /**
   * The event on the shard that answers reads (the old shard while the slot migrates): marker-checked
   * ADD (warm on COLD) → Kafka ack → generation check. Resolves with the path that made it durable.
   */
  private async recordOnOwner(
    shard: string,
    event: UniqueEvent,
  ): Promise<'redis' | 'mysql_direct' | 'mysql_fallback'> {
    const { name, day, userId } = event;
    const keys = uniqueKeys(name, day);
    let gen: string;
    try {
      gen = await this.add(shard, name, day, userId);
    } catch (err) {
      if (!(err instanceof RedisPathError) && !(err instanceof WarmFailed)) throw err;
      const repair: PendingRepair = { shard, name, day, dropSet: true, untilMoved: false };
      if (err instanceof RedisPathError) this.markDirty(repair);
      try {
        await this.mysqlInsert(event);
      } finally {
        // Again once the insert ended: a warm (here, after Redis came back, or on another pod) may
        // have filled the set from a snapshot taken before this commit.
        this.markDirty(repair);
      }
      return 'mysql_direct';
    }
    try {
      await this.withTimeout(
        this.deps.producer.send(this.options.topic, { key: name, value: JSON.stringify(event) }),
      );
    } catch (err) {
      // The user stays in the Redis set: MySQL gets it right now, so both agree.
      this.logger.debug({ err }, 'unique event not acknowledged; MySQL fallback');
      await this.mysqlInsert(event);
      return 'mysql_fallback';
    }
    await this.onShard(shard, (c) => scriptsOf(c).uqAcked([keys.set, keys.gen], [gen])).catch(() => {
      this.markDirty({ shard, name, day, dropSet: true, untilMoved: false });
    });
    return 'redis';
  }

  /**
   * The second write of a migrating slot: the durable event's user goes into the NEW shard's set
   * and HLL without the warm marker (partial mode). It runs after the event is durable, so only
   * acknowledged users land there, and it cannot lose the event: a failure is logged and counted,
   * the request still succeeds (the user is in MySQL and in the old shard's set).
   *
   * Why a user missing on the new shard does not end up behind a marker there: the new shard's
   * marker only comes from the mover, which copies it from the old shard together with the union
   * of the old set, and the old shard's set got this user before we get here (or, if the old shard
   * failed, its day set is made cold there). Sets only grow, so a union taken after the old write
   * contains the user. The gap is a union taken BEFORE the old write (the mover read the old set a
   * moment earlier) while this write fails: the union lacks the user, and the copied marker would
   * vouch for it. So a failure here deletes the new shard's marker (cold: re-warmed from
   * unique_daily behind the writer barrier once reads move there), again on every repair pass while
   * the slot migrates (the mover may copy the marker after our first delete), and once more after
   * this pod saw the migration end. A kill -9 of this pod in that window can leave the gap open
   * until the day set expires or the shard fails over (which makes every day set cold).
   * Writing after the ack also closes a second race: a warm of the new shard whose snapshot missed
   * this user (not yet in MySQL) is followed by this SADD, and FILL is a union.
   */
  private async addToMigrationTarget(shard: string, event: UniqueEvent): Promise<void> {
    const { name, day, userId } = event;
    const keys = uniqueKeys(name, day);
    try {
      await this.onShard(shard, (c) => scriptsOf(c).uqPartialAdd([keys.set, keys.hll], [userId, this.ttlMs]));
      this.migrationWrites.inc({ outcome: 'ok' });
    } catch (err) {
      this.migrationWrites.inc({ outcome: 'failed' });
      this.logger.warn(
        { err, shard, name, day },
        'unique event not written to the new shard of a migrating slot; its day set is made cold there',
      );
      this.markDirty({ shard, name, day, dropSet: false, untilMoved: true });
    }
  }

  private markDirty(repair: PendingRepair): void {
    const id = `${repair.shard}\n${repair.name}\n${repair.day}`;
    const known = this.dirty.get(id);
    this.dirty.set(
      id,
      known === undefined
        ? repair
        : {
            ...repair,
            dropSet: known.dropSet || repair.dropSet,
            untilMoved: known.untilMoved || repair.untilMoved,
          },
    );
  }

  private onShard<T>(shard: string, fn: (client: RedisShardClient) => Promise<T>): Promise<T> {
    return this.deps.counters.onShard(shard, fn);
  }

  private async add(shard: string, name: string, day: string, userId: string): Promise<string> {
    const keys = uniqueKeys(name, day);
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        const reply = (await this.onShard(shard, (c) =>
          scriptsOf(c).uqAdd([keys.set, keys.gen, keys.hll], [userId, this.ttlMs]),
        )) as [number, string];
        return String(reply[1]);
      } catch (err) {
        if (!isColdReply(err)) throw err;
      }
      if ((await this.warm(shard, name, day)) !== 'warm') break;
    }
    throw new WarmFailed();
  }

  /** Single-flight per day set; `barrier-missed`: the writer barrier timed out or was unavailable. */
  private warm(shard: string, name: string, day: string): Promise<'warm' | 'barrier-missed'> {
    const id = `${name}\n${day}`;
    const running = this.warming.get(id);
    if (running !== undefined) return running;
    const warming = this.doWarm(shard, name, day).finally(() => this.warming.delete(id));
    this.warming.set(id, warming);
    return warming;
  }

  private async doWarm(shard: string, name: string, day: string): Promise<'warm' | 'barrier-missed'> {
    const barrier = await this.barrier.waitForKey(name, this.options.warmWaitMs);
    if (barrier.kind !== 'passed') return 'barrier-missed';
    const rows = await this.mysql(() =>
      this.deps.router.primary.select<{ user_id: string }>(
        'SELECT user_id FROM unique_daily WHERE name = ? AND day = ?',
        [name, day],
      ),
    );
    const keys = uniqueKeys(name, day);
    const gen = randomUUID();
    const users = rows.map((r) => r.user_id);
    for (let i = 0; ; i += 5_000) {
      const part = users.slice(i, i + 5_000);
      const final = i + 5_000 >= users.length;
      const filled = await this.onShard(shard, (c) =>
        scriptsOf(c).uqFill([keys.set, keys.gen, keys.hll], [gen, this.ttlMs, final ? '1' : '0', ...part]),
      );
      if (Number(filled) === 0 || final) return 'warm';
    }
  }

  private async mysqlInsert(event: UniqueEvent): Promise<void> {
    await this.mysql(() =>
      this.deps.router.primary.execute(
        'INSERT IGNORE INTO unique_daily (name, day, user_id) VALUES (?, ?, ?)',
        [event.name, event.day, event.userId],
      ),
    );
  }

  private async mysql<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw serviceUnavailable('Unique users cannot be served right now; retry later', 1, err);
    }
  }

  private async withTimeout<T>(promise: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        promise,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('kafka send timed out')), this.options.kafkaTimeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Deferred invalidations, retried every 500 ms until the shard answers: day sets written to MySQL
   * only while Redis failed are deleted (cold); a new shard of a migrating slot that missed a user
   * loses its marker, again on every pass while the slot still migrates and once after.
   */
  private async repair(): Promise<void> {
    const failing = new Set<string>();
    for (const [id, repair] of [...this.dirty].slice(0, 200)) {
      if (failing.has(repair.shard)) continue;
      const keys = uniqueKeys(repair.name, repair.day);
      // Looked at BEFORE the delete: the last delete must start after this pod saw the migration
      // end, i.e. after the mover could still copy a marker.
      const again = repair.untilMoved && this.stillMigrating(repair.name);
      try {
        await this.onShard(repair.shard, (c) =>
          c.run((r) => (repair.dropSet ? r.del(keys.set, keys.gen) : r.del(keys.gen))),
        );
      } catch {
        failing.add(repair.shard);
        continue;
      }
      if (this.dirty.get(id) !== repair) continue; // merged with a newer repair meanwhile: next pass
      this.dirty.delete(id);
      if (again) this.dirty.set(id, repair); // re-queued at the end, so it does not starve the others
    }
  }

  private stillMigrating(name: string): boolean {
    try {
      return this.deps.counters.currentMap().route(slotOf(name)).migratingFrom !== undefined;
    } catch {
      return true; // no slot map: keep the repair until one tells
    }
  }
}

/** A deferred invalidation of one day set on one shard. */
interface PendingRepair {
  shard: string;
  name: string;
  day: string;
  /** Delete the set with the marker (the set itself may lack a user); else only the marker. */
  dropSet: boolean;
  /** Repeat while the name's slot migrates, and once after. */
  untilMoved: boolean;
}

/** A cold day set could not be warmed (writer barrier not passed): MySQL takes the write. */
class WarmFailed extends Error {
  override readonly name = 'WarmFailed';
}
