import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  BreakerOpenError,
  KafkaBackpressureError,
  KafkaUnavailableError,
  RedisError,
  countsAsFailureByDefault,
  createPolicy,
  idempotencyKey,
  isDependencyUnavailable,
  isRedisClientError,
  serviceUnavailable,
  type DependencyPolicy,
  type MysqlRouter,
  type ProduceRecord,
  type RedisShardClient,
  type ScriptInvokers,
  type SendResult,
  openShardReadCache,
  type ReadCacheSettings,
  type ShardReadCache,
  WriterBarrier,
  type HighWatermarkSource,
} from '@hyperscale/platform';
import { RedisPathError, WarmUnavailableError, isColdReply } from './errors.js';
import { KEY_PATTERN, counterKeys, slotOf, slotTag, type CounterKeys } from './keys.js';
import {
  counterMetrics,
  type CounterMetrics,
  type FallbackReason,
  type InvalidationReason,
  type WritePath,
} from './metrics.js';
import { IncrementCoalescer } from './increment-coalescer.js';
import { mysqlApplyDelta, mysqlValues } from './mysql-counters.js';
import { cachedValue, counterCacheKeys } from './read-cache.js';
import { MAX_DELTA } from './schemas/counters.js';
import {
  COUNTER_SCRIPTS,
  parseIncrResult,
  type IncrReply,
  type IncrResult,
  type ReadReply,
} from './scripts.js';
import type { SlotMap } from './slot-map.js';
import { TickBatcher } from './tick-batcher.js';

/**
 * How a warm ended: filled (or found warm), impossible now (Kafka unreachable for the writer
 * barrier), or given up because the slot started to move.
 */
type WarmOutcome = 'warm' | 'unavailable' | 'moved';
/** A counter as callers see it. */
export interface CounterValue {
  name: string;
  value: number;
}

/** Outcome of an increment: the value after it and the path that made it durable. */
export interface AddOutcome extends CounterValue {
  path: WritePath;
}

/** The delta event on `counters.deltas.v1` (key = name). */
export interface CounterDeltaEvent {
  eventId: string;
  name: string;
  delta: number;
  at: string;
}

/** Something that sends records and resolves on the broker's acknowledgment (GroupCommitProducer). */
export interface EventSink {
  send(topic: string, record: ProduceRecord): Promise<SendResult>;
}

/** Where the store finds the slot map in force (SlotMapSource). */
export interface SlotMapProvider {
  current(): SlotMap | undefined;
}

/** Timeouts, TTLs and breaker settings (milliseconds). */
export interface CounterStoreOptions {
  topic: string;
  writerGroupId: string;
  /** Max wait for the writer before a warm reads MySQL anyway (then with `degradedTtlMs`). */
  warmWaitMs: number;
  /** TTL of a counter's Redis hash; refreshed by every increment. */
  cacheTtlMs: number;
  /** TTL of a hash warmed without the barrier, so a possibly stale warm heals by itself. */
  degradedTtlMs: number;
  redisBreaker: { consecutiveFailures: number; halfOpenAfterMs: number };
  /** The longest a Kafka send can take (the producer's send timeout and a margin); sets pendingMs. */
  kafkaTimeoutMs: number;
  kafkaBreaker: { consecutiveFailures: number; halfOpenAfterMs: number };
  /** How long an unacknowledged increment may stay pending before readers treat it as cold. Default kafkaTimeoutMs + 2 s. */
  pendingMs?: number;
  /** Lifetime of an idempotency record (longer than any re-send window). Default 10 min. */
  idempotencyTtlMs?: number;
  /** Names remembered for deferred invalidation per shard before the whole shard is invalidated. Default 100 000. */
  maxDirty?: number;
  /** Interval of the repair loop. Default 500 ms. */
  repairIntervalMs?: number;
  /**
   * Pod-local cache of counter values, invalidated by Redis (`CLIENT TRACKING`; read-cache.ts):
   * at most `maxEntries` per shard, never trailing a write by more than `maxStalenessMs` when
   * invalidations stop arriving. Undefined: off (every read asks Redis).
   */
  readCache?: ReadCacheSettings;
}

/** What the store needs from the process. */
export interface CounterStoreDeps {
  /** One client per Redis shard group; matched to the slot map by Sentinel master name (or shard name). */
  shards: readonly RedisShardClient[];
  slotMaps: SlotMapProvider;
  router: MysqlRouter;
  producer: EventSink;
  highWatermarks: HighWatermarkSource;
  logger: Logger;
  registry: Registry;
  options: CounterStoreOptions;
}

/** One increment for `ctrIncrAckMany`: the request's record, the counter's keys and the change. */
interface IncrItem {
  idem: string;
  keys: CounterKeys;
  delta: number;
  eventId: string;
  migrating: boolean;
}

/** An acknowledged increment whose pending entry is to be cleared (and its generation checked). */
interface PendingAck {
  keys: CounterKeys;
  gen: string;
  eventId: string;
}

/** One write of a shard's script call: an increment, or the post-ack check of an earlier one. */
type ShardWrite = { kind: 'incr'; item: IncrItem } | { kind: 'ack'; ack: PendingAck };
type ShardWriteReply = { kind: 'incr'; reply: IncrReply } | { kind: 'ack'; same: boolean };

interface Shard {
  name: string;
  client: RedisShardClient;
  scripts: ScriptInvokers<typeof COUNTER_SCRIPTS>;
  policy: DependencyPolicy;
  /** The increments of one coalescer flush and the post-ack checks waiting, as one script call. */
  writes: TickBatcher<ShardWrite, ShardWriteReply>;
  /** The reads of one event-loop turn, as one script call. */
  reads: TickBatcher<CounterKeys, ReadReply>;
  /** Values served without Redis while its tracking says they did not change (options.readCache). */
  cache: ShardReadCache<number, typeof COUNTER_SCRIPTS> | undefined;
  /** Names whose keys must be deleted once the shard answers (written to MySQL while it failed). */
  dirty: Set<string>;
  invalidateAll: boolean;
  invalidateReason: InvalidationReason;
  wasOpen: boolean;
}

const MAX_INCR_ATTEMPTS = 3;
/** Increments, reads or post-ack checks of one shard per script call at most (a few hundred µs of Lua). */
const SCRIPT_BATCH = 256;
/** Warm markers of unique-user day sets (see uniques-store.ts). */
const UNIQUE_MARKER_PATTERN = 'uq:*:g:????-??-??';

/**
 * The counter domain. Handlers call this, never clients.
 *
 * Write: increments of one counter arriving in the same event-loop turn are coalesced into one
 * (IncrementCoalescer) → route name → slot → shard (slot map) → idempotent Lua increment (request id = event id,
 * so an ioredis re-send after a reconnect is applied once) → cold? warm behind the writer barrier
 * (single-flight) and retry → produce the delta event, await the ack → clear the pending entry
 * (and invalidate if the hash was re-warmed meanwhile) → answer with the new value.
 * Kafka fails → idempotent undo in Redis → MySQL transaction on the primary recording the event id
 * in `fallback_events` → invalidate the key. Redis fails → the same MySQL transaction; the key is
 * deleted once the shard answers again. MySQL fails too → 503 with Retry-After.
 * Migrating slot: increments go to the new shard (a partial hash, m = '1'), reads sum old + new;
 * a cold old hash means "read MySQL behind the barrier" (it is never warmed while moving).
 */
export class CounterStore {
  readonly metrics: CounterMetrics;
  private readonly shards = new Map<string, Shard>();
  private readonly router: MysqlRouter;
  private readonly producer: EventSink;
  private readonly slotMaps: SlotMapProvider;
  private readonly barrier: WriterBarrier;
  private readonly kafkaPolicy: DependencyPolicy;
  private readonly logger: Logger;
  private readonly options: Required<Omit<CounterStoreOptions, 'readCache'>> &
    Pick<CounterStoreOptions, 'readCache'>;
  private readonly warming = new Map<string, Promise<WarmOutcome>>();
  private readonly coalescer: IncrementCoalescer<WritePath>;
  private readonly repairTimer: NodeJS.Timeout;
  private readonly detach: (() => void)[] = [];
  private repairing = false;
  private closed = false;

  constructor(deps: CounterStoreDeps) {
    if (deps.shards.length === 0) throw new RangeError('CounterStore needs at least one Redis shard');
    const o = deps.options;
    this.options = {
      ...o,
      pendingMs: o.pendingMs ?? o.kafkaTimeoutMs + 2_000,
      idempotencyTtlMs: o.idempotencyTtlMs ?? 600_000,
      maxDirty: o.maxDirty ?? 100_000,
      repairIntervalMs: o.repairIntervalMs ?? 500,
      readCache: o.readCache,
    };
    this.logger = deps.logger.child({ component: 'counter-store' });
    this.metrics = counterMetrics(deps.registry);
    this.router = deps.router;
    this.producer = deps.producer;
    this.slotMaps = deps.slotMaps;
    const policyDeps = { registry: deps.registry, logger: deps.logger };
    this.kafkaPolicy = createPolicy(
      {
        name: 'kafka:counters',
        dependency: 'kafka',
        // The producer bounds every send (sendTimeoutMs); a second timer per call would only cost CPU.
        timeoutMs: null,
        retry: false,
        breaker: this.options.kafkaBreaker,
        countsAsFailure: (err) => !(err instanceof KafkaBackpressureError),
      },
      policyDeps,
    );
    this.barrier = new WriterBarrier({
      topic: this.options.topic,
      groupId: this.options.writerGroupId,
      highWatermarks: (topic) => this.kafkaPolicy.execute(() => deps.highWatermarks(topic)),
      primary: deps.router.primary,
      logger: deps.logger,
    });
    for (const client of deps.shards) {
      const shard: Shard = {
        name: client.shard,
        client,
        scripts: client.defineScripts(COUNTER_SCRIPTS),
        policy: createPolicy(
          {
            name: `redis:${client.shard}`,
            dependency: 'redis',
            // ioredis' commandTimeout bounds every command and script of this shard.
            timeoutMs: null,
            retry: false,
            breaker: this.options.redisBreaker,
            countsAsFailure: (err) => !isColdReply(err) && countsAsFailureByDefault(err),
          },
          policyDeps,
        ),
        // Increments are submitted synchronously by the coalescer's flush, so a microtask sees the
        // whole flush; acks that arrive while a call is in flight ride with the next one.
        writes: new TickBatcher((batch) => this.redis(shard, () => this.writeMany(shard, batch)), {
          maxBatch: SCRIPT_BATCH,
          schedule: queueMicrotask,
        }),
        reads: new TickBatcher((batch) => this.redis(shard, () => this.readMany(shard, batch)), {
          maxBatch: SCRIPT_BATCH,
        }),
        cache: openShardReadCache<number, typeof COUNTER_SCRIPTS>(
          client,
          COUNTER_SCRIPTS,
          this.options.readCache,
          counterCacheKeys,
        ),
        dirty: new Set(),
        invalidateAll: false,
        invalidateReason: 'repair',
        wasOpen: false,
      };
      // Sentinel failover is asynchronous: the new master may miss acknowledged increments.
      const onSwitch = () => this.requestInvalidation(shard, 'master_switch');
      client.on('master-switch', onSwitch);
      this.detach.push(() => client.off('master-switch', onSwitch));
      // Writes went to MySQL while the breaker was open: every key of the shard is suspect.
      const sub = shard.policy.onStateChange((state) => {
        if (state !== 'closed') shard.cache?.values.clear();
        if (state === 'open') shard.wasOpen = true;
        if (state === 'closed' && shard.wasOpen) {
          shard.wasOpen = false;
          this.requestInvalidation(shard, 'breaker_recovered');
        }
      });
      this.detach.push(() => sub.dispose());
      const cache = shard.cache;
      if (cache !== undefined) this.detach.push(() => cache.close());
      this.shards.set(client.shard, shard);
      if (client.masterName !== undefined) this.shards.set(client.masterName, shard);
    }
    this.coalescer = new IncrementCoalescer(
      (name, delta, requests) => this.addGroup(name, delta, requests),
      MAX_DELTA,
    );
    this.repairTimer = setInterval(() => void this.repair(), this.options.repairIntervalMs);
    this.repairTimer.unref();
  }

  /**
   * Adds `delta` (negative for a decrement) to `name` and resolves with the value after it, once
   * the change is durable (Kafka ack, or committed in MySQL on a fallback).
   * @throws HttpProblem 503 when neither Redis + Kafka nor MySQL can take it, or without a slot map.
   */
  async add(name: string, delta: number): Promise<AddOutcome> {
    const { value, path } = await this.coalescer.add(name, delta);
    return { name, value, path };
  }

  /**
   * One increment carrying the summed `delta` of `requests` coalesced requests (see
   * IncrementCoalescer): one request id, one script, one event. Resolves with the value after it.
   */
  private async addGroup(name: string, delta: number, requests: number): Promise<AddOutcome> {
    this.metrics.groupSize.observe(requests);
    const map = this.slotMap();
    const slot = slotOf(name);
    const route = map.route(slot);
    const shard = this.shardFor(map, route.shard);
    const keys = counterKeys(name, slot);
    const eventId = randomUUID();
    const migrating = route.migratingFrom !== undefined;

    let incr: IncrResult;
    try {
      incr = await this.incrWarm(shard, name, slot, keys, delta, eventId, migrating);
    } catch (err) {
      if (err instanceof RedisPathError) {
        this.metrics.fallbacks.inc({ reason: 'redis_unavailable' }, requests);
        this.markDirty(map, name);
        return this.mysqlWrite(map, name, delta, eventId, 'mysql_direct', requests);
      }
      if (err instanceof WarmUnavailableError) {
        this.metrics.fallbacks.inc({ reason: 'warm_unavailable' }, requests);
        return this.mysqlWrite(map, name, delta, eventId, 'mysql_fallback', requests);
      }
      throw err;
    }

    const event: CounterDeltaEvent = { eventId, name, delta, at: new Date().toISOString() };
    let sending: Promise<SendResult> | undefined;
    try {
      await this.kafkaPolicy.execute(
        () => (sending = this.producer.send(this.options.topic, { key: name, value: JSON.stringify(event) })),
      );
    } catch (err) {
      const fate = sendFate(err, sending);
      if (fate === undefined) throw err;
      await this.undo(map, shard, name, slot, keys, delta, eventId, incr.gen);
      if (fate.kind === 'unknown') return this.outcomeUnknown(name, fate.settled, err, requests);
      this.metrics.fallbacks.inc({ reason: fate.reason }, requests);
      return this.mysqlWrite(map, name, delta, eventId, 'mysql_fallback', requests);
    }

    try {
      // Rides in the shard's next script call, with the increments waiting for it.
      const written = await shard.writes.submit({ kind: 'ack', ack: { keys, gen: incr.gen, eventId } });
      const same = written.kind === 'ack' && written.same;
      if (!same) {
        this.metrics.invalidations.inc({ reason: 'generation' });
        if (migrating) this.markDirty(map, name);
      }
    } catch (err) {
      if (!(err instanceof RedisPathError)) throw err;
      this.markDirty(map, name);
    }
    this.metrics.writes.inc({ path: 'redis' }, requests);
    if (!migrating) return { name, value: incr.value, path: 'redis' };
    const [total] = await this.read([name]);
    return { name, value: total?.value ?? incr.value, path: 'redis' };
  }

  /** Values of `names` (unique), in order. Redis first; cold → warm; Redis down → MySQL primary. */
  async read(names: readonly string[]): Promise<CounterValue[]> {
    const map = this.slotMap();
    const values = new Map<string, number>();
    const viaMysql: string[] = [];
    const barrierUnavailable = new Set<string>();
    await Promise.all(
      names.map(async (name) => {
        const value = await this.readOne(map, name);
        if (typeof value === 'number') values.set(name, value);
        else {
          viaMysql.push(name);
          if (value === 'mysql-now') barrierUnavailable.add(name);
        }
      }),
    );
    if (viaMysql.length > 0) {
      for (const [name, value] of await this.mysqlRead(viaMysql, barrierUnavailable)) values.set(name, value);
    }
    return names.map((name) => ({ name, value: values.get(name) ?? 0 }));
  }

  /**
   * Runs `fn` on the shard named by the slot map under that shard's policy (shared breaker):
   * Redis failures reject with RedisPathError. For other domains on the same shards (presence).
   */
  async onShard<T>(shardName: string, fn: (client: RedisShardClient) => Promise<T>): Promise<T> {
    const map = this.slotMap();
    const shard = this.shardFor(map, shardName);
    return this.redis(shard, () => fn(shard.client));
  }

  /** The slot map in force (503 problem when none is loaded). */
  currentMap(): SlotMap {
    return this.slotMap();
  }

  /** Readiness: a slot map is applied and every shard's breaker lets calls through. */
  ready(): boolean {
    return this.slotMaps.current() !== undefined;
  }

  /** Names and shards waiting for a deferred invalidation (tests, diagnostics). */
  pendingRepairs(): Record<string, { dirty: number; invalidateAll: boolean }> {
    const out: Record<string, { dirty: number; invalidateAll: boolean }> = {};
    for (const shard of new Set(this.shards.values()))
      out[shard.name] = { dirty: shard.dirty.size, invalidateAll: shard.invalidateAll };
    return out;
  }

  /**
   * Stops the repair loop, detaches listeners, closes the read cache's connections, releases barrier
   * waiters. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.repairTimer);
    for (const fn of this.detach) fn();
    this.barrier.close();
  }

  // ---------------------------------------------------------------------------------------------

  private slotMap(): SlotMap {
    const map = this.slotMaps.current();
    if (map === undefined) throw serviceUnavailable('No slot map is loaded yet; retry later', 1);
    return map;
  }

  private shardFor(map: SlotMap, shardName: string): Shard {
    const masterName = map.document.shards[shardName]?.masterName ?? shardName;
    const shard = this.shards.get(masterName) ?? this.shards.get(shardName);
    if (shard === undefined)
      throw serviceUnavailable(`Redis shard ${shardName} is not configured on this pod`, 5);
    return shard;
  }

  /** Runs a Redis call under the shard's policy; Redis failures become RedisPathError, COLD passes. */
  private async redis<T>(shard: Shard, fn: () => Promise<T>): Promise<T> {
    try {
      return await shard.policy.execute(() => fn());
    } catch (err) {
      if (isColdReply(err)) throw err;
      if (err instanceof RedisError || isRedisClientError(err) || isDependencyUnavailable(err))
        throw new RedisPathError(shard.name, err);
      throw err;
    }
  }

  private async submitIncrement(shard: Shard, item: IncrItem): Promise<IncrReply> {
    const written = await shard.writes.submit({ kind: 'incr', item });
    if (written.kind !== 'incr') throw new Error('ctrIncrAckMany: an increment answered as an ack');
    return written.reply;
  }

  /** One `ctrIncrAckMany` call for a batch of writes; replies in the batch's order. */
  private async writeMany(shard: Shard, batch: readonly ShardWrite[]): Promise<ShardWriteReply[]> {
    const incrs: IncrItem[] = [];
    const acks: PendingAck[] = [];
    for (const write of batch) {
      if (write.kind === 'incr') incrs.push(write.item);
      else acks.push(write.ack);
    }
    const reply = await shard.scripts.ctrIncrAckMany(
      [
        ...incrs.flatMap(({ idem, keys }) => [idem, keys.value, keys.pending]),
        ...acks.flatMap(({ keys }) => [keys.value, keys.pending]),
      ],
      [
        this.options.idempotencyTtlMs,
        this.options.pendingMs,
        this.options.cacheTtlMs,
        incrs.length,
        ...incrs.flatMap(({ delta, eventId, migrating }) => [delta, eventId, migrating ? 'm' : 'o']),
        ...acks.flatMap(({ gen, eventId }) => [gen, eventId]),
      ],
    );
    if (reply.increments.length !== incrs.length || reply.acks.length !== acks.length)
      throw new Error('ctrIncrAckMany: the reply does not match the call');
    // Reads that ran before these writes may still be in flight on the tracked connection; an ack
    // may have deleted a re-warmed hash. Redis reports both too, but this pod's next read must not
    // wait for that message.
    if (shard.cache !== undefined) {
      for (const { keys } of incrs) shard.cache.values.forget(keys.value);
      for (const { keys } of acks) shard.cache.values.forget(keys.value);
    }
    let i = 0;
    let a = 0;
    return batch.map((write): ShardWriteReply =>
      write.kind === 'incr'
        ? { kind: 'incr', reply: reply.increments[i++] as IncrReply }
        : { kind: 'ack', same: reply.acks[a++] === true },
    );
  }

  private async incrWarm(
    shard: Shard,
    name: string,
    slot: number,
    keys: CounterKeys,
    delta: number,
    eventId: string,
    migrating: boolean,
  ): Promise<IncrResult> {
    const item: IncrItem = { idem: idempotencyKey(slotTag(slot), eventId), keys, delta, eventId, migrating };
    for (let attempt = 1; ; attempt += 1) {
      const reply = await this.submitIncrement(shard, item);
      if (reply.kind === 'done') {
        if (!reply.applied) this.metrics.replays.inc();
        return parseIncrResult(reply.result);
      }
      if (attempt >= MAX_INCR_ATTEMPTS) throw new WarmUnavailableError(name);
      if ((await this.warm(shard, name, keys)) !== 'warm') throw new WarmUnavailableError(name);
    }
  }

  /** Single-flight per counter in this process. */
  private warm(shard: Shard, name: string, keys: CounterKeys): Promise<WarmOutcome> {
    const running = this.warming.get(name);
    if (running !== undefined) return running;
    const warming = this.doWarm(shard, name, keys).finally(() => this.warming.delete(name));
    this.warming.set(name, warming);
    return warming;
  }

  /**
   * Writer barrier (every delta acknowledged before now is in MySQL) → value from the primary →
   * fill only if still cold. Increments are refused while cold, so nothing can be applied to Redis
   * between the snapshot and the fill; increments in flight from before the key went cold are
   * caught by their generation check after the ack.
   */
  private async doWarm(shard: Shard, name: string, keys: CounterKeys): Promise<WarmOutcome> {
    const stop = this.metrics.warmDuration.startTimer();
    const barrier = await this.barrier.waitForKey(name, this.options.warmWaitMs);
    if (barrier.kind === 'unavailable') {
      this.metrics.warms.inc({ outcome: 'unavailable' });
      return 'unavailable';
    }
    const degraded = barrier.kind === 'timeout';
    if (degraded)
      this.logger.warn({ name, barrier }, 'writer did not catch up in time; warming with a short TTL');
    let value: number;
    try {
      value = (await mysqlValues(this.router.primary, [name])).get(name) ?? 0;
    } catch (err) {
      this.metrics.warms.inc({ outcome: 'failed' });
      throw serviceUnavailable('Counters cannot be read right now; retry later', 1, err);
    }
    const ttl = degraded ? this.options.degradedTtlMs : this.options.cacheTtlMs;
    let moved = false;
    const filled = await this.redis(shard, () => {
      // A slot that started to migrate since the warm began is never filled on its old shard: the
      // snapshot may hold deltas written to the new shard's partial, which the mover would add
      // again. Checked in the same synchronous stretch that sends the fill, so this pod's
      // acknowledgement of the migrating map (sent later, on the same connection) follows the fill,
      // and the mover, which waits for it, never runs before a fill it would miss.
      if (!this.ownsWhole(shard, name)) {
        moved = true;
        return Promise.resolve(false);
      }
      return shard.scripts.ctrFill([keys.value, keys.pending], [value, randomUUID(), ttl]);
    });
    if (moved) {
      this.metrics.warms.inc({ outcome: 'moved' });
      stop();
      return 'moved';
    }
    this.metrics.warms.inc({ outcome: filled ? (degraded ? 'degraded' : 'warmed') : 'already' });
    stop();
    return 'warm';
  }

  /** Whether the current slot map routes `name` to `shard` alone (its slot not migrating). */
  private ownsWhole(shard: Shard, name: string): boolean {
    const map = this.slotMaps.current();
    if (map === undefined) return false;
    const route = map.route(slotOf(name));
    return route.migratingFrom === undefined && this.shardFor(map, route.shard) === shard;
  }

  /**
   * The value from Redis, or where MySQL answers: `mysql` behind the writer barrier, `mysql-now`
   * when the warm just found the barrier unavailable (Kafka unreachable: trying again would only
   * wait for the same fetch limit a second time).
   */
  private async readOne(map: SlotMap, name: string): Promise<number | 'mysql' | 'mysql-now'> {
    const slot = slotOf(name);
    const route = map.route(slot);
    const keys = counterKeys(name, slot);
    const shard = this.shardFor(map, route.shard);
    try {
      if (route.migratingFrom !== undefined) {
        const old = this.shardFor(map, route.migratingFrom);
        const [before, after] = await Promise.all([this.readKey(old, keys), this.readKey(shard, keys)]);
        // A cold old hash is never warmed while its slot moves: MySQL (behind the barrier) answers.
        // So does a new shard whose partial lost deltas (they are in MySQL only).
        if (before.cold || before.partial || after.lost) return 'mysql';
        this.metrics.reads.inc({ source: 'redis' });
        return before.value + (after.cold ? 0 : after.value);
      }
      const cached = shard.cache?.values.get(keys.value);
      if (cached !== undefined && shard.policy.breakerState() === 'closed') {
        this.metrics.reads.inc({ source: 'cache' });
        return cached;
      }
      for (let round = 0; round < 2; round += 1) {
        const reply = await this.readKey(shard, keys);
        if (!reply.cold && !reply.partial) {
          this.metrics.reads.inc({ source: 'redis' });
          return reply.value;
        }
        if (round === 1) return 'mysql';
        const warmed = await this.warm(shard, name, keys);
        if (warmed !== 'warm') return warmed === 'unavailable' ? 'mysql-now' : 'mysql';
      }
    } catch (err) {
      if (err instanceof RedisPathError) return 'mysql';
      throw err;
    }
    return 'mysql';
  }

  private readKey(shard: Shard, keys: CounterKeys): Promise<ReadReply> {
    return shard.reads.submit(keys);
  }

  /** One `ctrReadMany` call; on the tracked connection, and through the cache, while tracking is live. */
  private readMany(shard: Shard, batch: readonly CounterKeys[]): Promise<ReadReply[]> {
    const keys = batch.flatMap((k) => [k.value, k.pending]);
    const cache = shard.cache;
    if (cache === undefined || !cache.values.tracking()) return shard.scripts.ctrReadMany(keys);
    return cache.values.fetch(
      batch.map((k) => k.value),
      () => cache.scripts.ctrReadMany(keys),
      cachedValue,
    );
  }

  /**
   * MySQL answers for names Redis cannot (shard down, slot migrating with a cold old hash, warm
   * impossible): after the writer barrier of each (bounded by warmWaitMs, skipped when Kafka is
   * unreachable), so the value includes every delta acknowledged before the read. Names in
   * `barrierUnavailable` are read at once: their warm just waited for the barrier and found Kafka
   * unreachable.
   */
  private async mysqlRead(
    names: readonly string[],
    barrierUnavailable: ReadonlySet<string> = new Set(),
  ): Promise<Map<string, number>> {
    this.metrics.reads.inc({ source: 'mysql' }, names.length);
    await Promise.all(
      names
        .filter((name) => !barrierUnavailable.has(name))
        .map((name) => this.barrier.waitForKey(name, this.options.warmWaitMs)),
    );
    try {
      return await mysqlValues(this.router.primary, names);
    } catch (err) {
      throw serviceUnavailable('Counters cannot be read right now; retry later', 1, err);
    }
  }

  private async undo(
    map: SlotMap,
    shard: Shard,
    name: string,
    slot: number,
    keys: CounterKeys,
    delta: number,
    eventId: string,
    gen: string,
  ): Promise<void> {
    try {
      await this.redis(shard, () =>
        shard.scripts.ctrUndo(
          [idempotencyKey(slotTag(slot), `${eventId}.u`), keys.value, keys.pending],
          [this.options.idempotencyTtlMs, delta, eventId, gen],
        ),
      );
    } catch (err) {
      if (!(err instanceof RedisPathError)) throw err;
      this.markDirty(map, name);
    }
  }

  /**
   * The event may be in Kafka though the broker never acknowledged it (a lost acknowledgment, or a
   * request still in kafkajs' hands): applying the delta in MySQL as well could count it twice, so
   * the caller is told the outcome is unknown. Redis was undone; the writer applies the event if it
   * landed, so the key is made cold now and again once kafkajs gave up on the request.
   */
  private outcomeUnknown(name: string, settled: Promise<void>, cause: unknown, requests: number): never {
    this.metrics.unknownOutcomes.inc(requests);
    this.logger.warn(
      { err: cause, name },
      'Kafka neither acknowledged nor refused the delta; outcome unknown',
    );
    const coldAgain = () => {
      const map = this.slotMaps.current();
      if (map !== undefined) this.markDirty(map, name);
    };
    coldAgain();
    void settled.then(coldAgain);
    throw serviceUnavailable(
      'Kafka did not confirm the increment in time: it may or may not have been counted. Read the counter before retrying.',
      1,
      cause,
    );
  }

  private async mysqlWrite(
    map: SlotMap,
    name: string,
    delta: number,
    eventId: string,
    path: Exclude<WritePath, 'redis'>,
    requests: number,
  ): Promise<AddOutcome> {
    let value: number;
    try {
      value = await mysqlApplyDelta(this.router, name, delta, eventId);
    } catch (err) {
      this.logger.warn({ err, name, path }, 'MySQL write failed after Redis/Kafka failed');
      // A statement that timed out on our side may still commit on the server.
      await this.invalidate(map, name, 'fallback');
      throw serviceUnavailable('Counters cannot be stored right now; retry later', 1, err);
    }
    // Redis no longer has the truth for this counter (the delta is in MySQL only): make it cold.
    // After the commit, so a warm that read MySQL before it cannot outlive it.
    await this.invalidate(map, name, 'fallback');
    this.metrics.writes.inc({ path }, requests);
    return { name, value, path };
  }

  /** Deletes the counter's keys on its shard (and the old shard while migrating) now, or later. */
  private async invalidate(map: SlotMap, name: string, reason: InvalidationReason): Promise<void> {
    const slot = slotOf(name);
    const route = map.route(slot);
    const keys = counterKeys(name, slot);
    for (const shardName of [route.shard, route.migratingFrom]) {
      if (shardName === undefined) continue;
      const shard = this.shardFor(map, shardName);
      try {
        await this.redis(shard, () => shard.client.run((r) => r.del(keys.value, keys.pending)));
        shard.cache?.values.forget(keys.value);
        this.metrics.invalidations.inc({ reason });
      } catch (err) {
        if (!(err instanceof RedisPathError)) throw err;
        this.addDirty(shard, name);
      }
    }
  }

  private markDirty(map: SlotMap, name: string): void {
    const route = map.route(slotOf(name));
    this.addDirty(this.shardFor(map, route.shard), name);
    if (route.migratingFrom !== undefined) this.addDirty(this.shardFor(map, route.migratingFrom), name);
  }

  private addDirty(shard: Shard, name: string): void {
    shard.cache?.values.forget(counterKeys(name).value);
    shard.dirty.add(name);
    if (shard.dirty.size > this.options.maxDirty) {
      shard.dirty.clear();
      this.requestInvalidation(shard, 'repair');
    }
  }

  private requestInvalidation(shard: Shard, reason: InvalidationReason): void {
    shard.cache?.values.clear();
    this.logger.warn({ shard: shard.name, reason }, 'every counter key of the shard will be made cold');
    shard.invalidateAll = true;
    shard.invalidateReason = reason;
  }

  /** Deferred invalidations: whole shards (SCAN ctr:* + UNLINK), then dirty names in batches. */
  private async repair(): Promise<void> {
    if (this.repairing || this.closed) return;
    this.repairing = true;
    try {
      for (const shard of new Set(this.shards.values())) {
        if (shard.invalidateAll) {
          // Cleared before the SCAN: a request during the scan sets it again and we scan again.
          shard.invalidateAll = false;
          try {
            await this.invalidateShard(shard, shard.invalidateReason);
          } catch (err) {
            shard.invalidateAll = true;
            this.logger.debug({ err, shard: shard.name }, 'shard invalidation failed; will retry');
          }
          continue;
        }
        if (shard.dirty.size === 0) continue;
        const batch = [...shard.dirty].slice(0, 500);
        try {
          await this.redis(shard, () =>
            shard.client.run((r) =>
              r.del(
                ...batch.flatMap((name) => {
                  const keys = counterKeys(name);
                  return [keys.value, keys.pending];
                }),
              ),
            ),
          );
          for (const name of batch) shard.dirty.delete(name);
          this.metrics.invalidations.inc({ reason: 'repair' }, batch.length);
        } catch (err) {
          if (!(err instanceof RedisPathError)) this.logger.warn({ err }, 'repair failed');
        }
      }
    } finally {
      this.repairing = false;
    }
  }

  private async invalidateShard(shard: Shard, reason: InvalidationReason): Promise<void> {
    let deleted = 0;
    // Counter hashes, and the warm markers of unique-user day sets (their sets then re-warm from
    // unique_daily): both may miss acknowledged writes after a failover or a MySQL-only period.
    for (const pattern of [KEY_PATTERN, UNIQUE_MARKER_PATTERN]) {
      let cursor = '0';
      do {
        const [next, keys] = await this.redis(shard, () =>
          shard.client.run((r) => r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)),
        );
        cursor = next;
        if (keys.length > 0)
          deleted += await this.redis(shard, () => shard.client.run((r) => r.unlink(...keys)));
      } while (cursor !== '0');
    }
    shard.dirty.clear();
    this.metrics.invalidations.inc({ reason }, deleted);
    this.logger.info({ shard: shard.name, deleted, reason }, 'shard counter keys invalidated');
  }
}

/** What a failed send means for the delta: certainly not in Kafka (fall back), or unknown. */
type SendFate = { kind: 'not-sent'; reason: FallbackReason } | { kind: 'unknown'; settled: Promise<void> };

/**
 * The fate of a failed send, or undefined when the error is not Kafka's. `sending` is the
 * producer's promise (undefined when the breaker refused before sending).
 */
function sendFate(err: unknown, sending: Promise<SendResult> | undefined): SendFate | undefined {
  if (err instanceof KafkaBackpressureError) return { kind: 'not-sent', reason: 'kafka_backpressure' };
  if (err instanceof BreakerOpenError || (sending === undefined && isDependencyUnavailable(err)))
    return { kind: 'not-sent', reason: 'kafka_breaker_open' };
  if (err instanceof KafkaUnavailableError)
    return err.maybeWritten
      ? { kind: 'unknown', settled: err.settled }
      : { kind: 'not-sent', reason: 'kafka_unavailable' };
  return undefined;
}
