import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  KafkaBackpressureError,
  KafkaUnavailableError,
  BreakerOpenError,
  HttpProblem,
  RedisError,
  createPolicy,
  encodeLikeEvent,
  isDependencyUnavailable,
  serviceUnavailable,
  WriterBarrier,
  type BarrierOutcome,
  type HighWatermarkSource,
  type DependencyPolicy,
  type LikeEvent,
  type MasterSwitchEvent,
  type MysqlRouter,
  type ProduceRecord,
  type RedisShardClient,
  type ScriptInvokers,
  type SendResult,
  openShardReadCache,
  type ReadCacheSettings,
  type ShardReadCache,
} from '@hyperscale/platform';
import { RedisPathError, WarmUnavailableError } from './errors.js';
import { KEY_PATTERN, ackedPositionKey, postKeys, shardIndexOf, type PostKeys } from './keys.js';
import {
  likeMetrics,
  type FallbackReason,
  type InvalidationReason,
  type LikeMetrics,
  type WarmOutcome,
  type WritePath,
} from './metrics.js';
import { mysqlReadStates, mysqlSetLiked, mysqlSnapshot, type FallbackRecords } from './mysql-likes.js';
import { cachedPost, postCacheKeys, stateFrom, type CachedPost } from './read-cache.js';
import { LIKE_SCRIPTS, parseAckedPosition, type AckedPosition, type ApplyReply } from './scripts.js';

/** A post as a caller sees it. `liked` is false when no user was given. */
export interface PostState {
  postId: string;
  count: number;
  liked: boolean;
}

/** Outcome of a like/unlike: the new state, whether this request changed it, and how it was stored. */
export interface WriteOutcome extends PostState {
  changed: boolean;
  path: WritePath;
}

/** What an admin rewarm did. */
export interface RewarmResult {
  scope: 'posts' | 'all';
  /** Posts made cold (scope posts) or keys deleted (scope all). */
  invalidated: number;
  /** Posts warmed again right away (scope posts only). */
  warmed: number;
}

/** Timeouts, TTLs and breaker settings of the store (all milliseconds). */
export interface LikeStoreOptions {
  topic: string;
  writerGroupId: string;
  /** Max wait for the writer before a warm reads MySQL anyway (then with `degradedTtlMs`). */
  warmWaitMs: number;
  /** Max wait for the writer before a direct MySQL write while Redis is down; 0 = none. */
  directWriteWaitMs: number;
  /** TTL of warmed keys (re-warmed after it, behind the writer barrier). */
  cacheTtlMs: number;
  /** TTL of keys warmed without the barrier, so a possibly stale warm heals by itself. */
  degradedTtlMs: number;
  redisBreaker: { consecutiveFailures: number; halfOpenAfterMs: number };
  /** Longest a Kafka send can take (the producer's send timeout, which bounds it, plus a margin). */
  kafkaTimeoutMs: number;
  kafkaBreaker: { consecutiveFailures: number; halfOpenAfterMs: number };
  /** How long a warm's claim lives if its pod dies half-way. Default 30 s. */
  claimTtlMs?: number;
  /** Members per fill script call. Default 1000. */
  fillChunk?: number;
  /** Max posts remembered for deferred invalidation per shard before the whole shard is invalidated. Default 100 000. */
  maxDirtyPosts?: number;
  /** Interval of the repair loop (deferred invalidations). Default 500 ms. */
  repairIntervalMs?: number;
  /**
   * How long a Redis change may stay unacknowledged before readers treat the post as cold (its
   * pod presumably died between the Lua change and the Kafka ack). Default kafkaTimeoutMs + 2 s.
   */
  pendingMs?: number;
  /**
   * How long a post's newest acknowledged Kafka position stays in Redis (`likeack:{post}`, about
   * 60 bytes per post written within it). A fallback write supersedes the events up to it that the
   * writer has not applied yet; it must outlast the longest the writer may trail Kafka, a Kafka
   * outage included. Default 24 h.
   */
  ackedPositionTtlMs?: number;
  /**
   * Pod-local cache of post states, invalidated by Redis (`CLIENT TRACKING`; read-cache.ts): at
   * most `maxEntries` posts per shard, never trailing a write by more than `maxStalenessMs` when
   * invalidations stop arriving. Undefined: off (every read asks Redis).
   */
  readCache?: ReadCacheSettings;
}

/** Something that sends records and resolves on the broker's acknowledgment (GroupCommitProducer). */
export interface EventSink {
  send(topic: string, record: ProduceRecord): Promise<SendResult>;
}

/** What the store needs from the process. */
export interface LikeStoreDeps {
  /** Redis shard clients in slot order (REDIS_MASTER_NAMES order; the same on every pod). */
  shards: readonly RedisShardClient[];
  router: MysqlRouter;
  producer: EventSink;
  /** High watermarks of the likes topic (admin.fetchTopicOffsets). */
  highWatermarks: HighWatermarkSource;
  logger: Logger;
  registry: Registry;
  options: LikeStoreOptions;
}

interface Shard {
  name: string;
  client: RedisShardClient;
  scripts: ScriptInvokers<typeof LIKE_SCRIPTS>;
  policy: DependencyPolicy;
  /** Posts written to MySQL while Redis failed: their keys must be deleted once Redis answers. */
  dirty: Set<string>;
  /** Whole-shard invalidations requested / completed: equal when none is pending. */
  invalidationRequested: number;
  invalidationDone: number;
  /** Why the pending whole-shard invalidation was requested (kept across retries). */
  invalidationReason: InvalidationReason;
  invalidating: Promise<number> | null;
  onSwitch: (event: MasterSwitchEvent) => void;
  /** Post states served without Redis while its tracking says they did not change (options.readCache). */
  cache: ShardReadCache<CachedPost, typeof LIKE_SCRIPTS> | undefined;
}

type WarmResult = Exclude<WarmOutcome, 'failed'>;
const SERVED: ReadonlySet<WarmResult> = new Set(['warmed', 'degraded', 'already']);
const MAX_APPLY_ATTEMPTS = 3;
const MAX_WARM_ATTEMPTS = 3;

/**
 * The like domain: Redis fast path (one Lua script per change), Kafka for durability (answer
 * after the ack), MySQL as fallback and source of warms. Handlers call this, never clients.
 *
 * Write: apply Lua → cold? warm (single-flight) and retry → produce the event (always, even when
 * nothing changed: an ioredis re-send after a reconnect can make the first execution invisible)
 * → after the ack, check the keys are still the generation the change was applied to (else a
 * warm may have missed this event: delete them) → answer.
 * Kafka fails → undo this request's change → MySQL transaction on the primary → delete the keys.
 * Redis fails → writer barrier (bounded) → MySQL transaction; the keys are deleted once Redis
 * answers again. Both MySQL and Redis failing → 503 with Retry-After.
 * Read: Redis (auto-pipelined, one write per shard), cold → warm → Redis again; Redis down or
 * warm impossible → MySQL through the router.
 */
export class LikeStore {
  readonly metrics: LikeMetrics;
  private readonly shards: Shard[];
  private readonly router: MysqlRouter;
  private readonly producer: EventSink;
  private readonly barrier: WriterBarrier;
  private readonly kafkaPolicy: DependencyPolicy;
  private readonly logger: Logger;
  private readonly options: Required<Omit<LikeStoreOptions, 'readCache'>> &
    Pick<LikeStoreOptions, 'readCache'>;
  private readonly warming = new Map<string, Promise<WarmResult>>();
  private readonly repairTimer: NodeJS.Timeout;
  private closed = false;

  constructor(deps: LikeStoreDeps) {
    if (deps.shards.length === 0) throw new RangeError('LikeStore needs at least one Redis shard');
    const o = deps.options;
    this.options = {
      ...o,
      claimTtlMs: o.claimTtlMs ?? 30_000,
      fillChunk: o.fillChunk ?? 1_000,
      maxDirtyPosts: o.maxDirtyPosts ?? 100_000,
      repairIntervalMs: o.repairIntervalMs ?? 500,
      pendingMs: o.pendingMs ?? o.kafkaTimeoutMs + 2_000,
      ackedPositionTtlMs: o.ackedPositionTtlMs ?? 86_400_000,
      readCache: o.readCache,
    };
    this.logger = deps.logger.child({ component: 'like-store' });
    this.metrics = likeMetrics(deps.registry);
    this.router = deps.router;
    this.producer = deps.producer;
    const policyDeps = { registry: deps.registry, logger: deps.logger };
    this.kafkaPolicy = createPolicy(
      {
        name: 'kafka:likes',
        dependency: 'kafka',
        // The producer bounds every send (sendTimeoutMs); a second timer per call would only cost CPU.
        timeoutMs: null,
        retry: false,
        breaker: this.options.kafkaBreaker,
        // Back-pressure is overload, not an outage: it falls back but does not open the breaker.
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
    this.shards = deps.shards.map((client) => {
      const shard: Shard = {
        name: client.shard,
        client,
        scripts: client.defineScripts(LIKE_SCRIPTS),
        policy: createPolicy(
          {
            name: `redis:${client.shard}`,
            dependency: 'redis',
            // ioredis' commandTimeout bounds every command and script of this shard.
            timeoutMs: null,
            retry: false,
            breaker: this.options.redisBreaker,
          },
          policyDeps,
        ),
        dirty: new Set(),
        invalidationRequested: 0,
        invalidationDone: 0,
        invalidationReason: 'repair',
        invalidating: null,
        cache: openShardReadCache<CachedPost, typeof LIKE_SCRIPTS>(
          client,
          LIKE_SCRIPTS,
          this.options.readCache,
          postCacheKeys,
        ),
        onSwitch: (event) => {
          this.logger.warn(
            { shard: event.shard, from: event.from, to: event.to },
            'master switched: invalidating the shard',
          );
          shard.invalidationRequested += 1;
          shard.invalidationReason = 'master_switch';
          shard.cache?.values.clear();
          // The client is moving to the new master right now: give it a moment, the repair loop
          // retries anyway if this first attempt fails.
          void shard.client
            .waitUntilReady(5_000)
            .catch(() => undefined)
            .then(() => this.invalidateShard(shard, 'master_switch'))
            .catch(() => undefined);
        },
      };
      client.on('master-switch', shard.onSwitch);
      // Writes go to MySQL while the breaker is not closed: nothing cached may be served then.
      shard.policy.onStateChange((state) => {
        if (state !== 'closed') shard.cache?.values.clear();
      });
      return shard;
    });
    this.repairTimer = setInterval(() => void this.repair(), this.options.repairIntervalMs);
    this.repairTimer.unref();
  }

  /**
   * Likes (`liked` true) or unlikes `postId` for `userId`; idempotent (a repeat answers
   * `changed: false`). Resolves only once the change is durable (Kafka ack or MySQL commit).
   * @throws HttpProblem 503 when neither Kafka nor MySQL could make it durable.
   */
  async setLiked(userId: string, postId: string, liked: boolean): Promise<WriteOutcome> {
    const shard = this.shardOf(postId);
    const eventId = randomUUID();
    let applied: Extract<ApplyReply, { cold: false }>;
    try {
      applied = await this.applyWarm(shard, userId, postId, liked, eventId);
      // Reads that ran before this change may still be in flight on the tracked connection.
      shard.cache?.values.forget(postId);
    } catch (err) {
      if (err instanceof RedisPathError) {
        this.metrics.fallbacks.inc({ reason: 'redis_unavailable' });
        return this.directWrite(shard, userId, postId, liked);
      }
      if (err instanceof WarmUnavailableError) {
        this.metrics.fallbacks.inc({ reason: 'warm_unavailable' });
        return this.mysqlWrite(shard, userId, postId, liked, 'mysql_fallback', {
          supersedes: await this.ackedPosition(shard, postId),
        });
      }
      throw err;
    }
    const event: LikeEvent = {
      eventId,
      type: liked ? 'like' : 'unlike',
      userId,
      postId,
      at: new Date().toISOString(),
    };
    let ack: SendResult;
    try {
      ack = await this.kafkaPolicy.execute(() =>
        this.producer.send(this.options.topic, { key: postId, value: encodeLikeEvent(event) }),
      );
    } catch (err) {
      const reason = kafkaFallbackReason(err);
      if (reason === undefined) throw err;
      this.metrics.fallbacks.inc({ reason });
      if (applied.changed) {
        await this.bestEffort(shard, postId, () =>
          shard.scripts.likeUndo(this.keysOf(postId), [userId, liked ? '1' : '0', applied.gen, eventId]),
        );
      }
      // The send may still land (a broker that hung, not refused): recorded with the write, the
      // event is skipped by the writer, so it cannot undo a later acknowledged request. So are
      // this user's older events of the post that Kafka acknowledged and the writer may not have
      // applied yet (the writer cannot read Kafka either while it is down).
      return this.mysqlWrite(shard, userId, postId, liked, 'mysql_fallback', {
        sentEventId: eventId,
        supersedes: await this.ackedPosition(shard, postId),
      });
    }
    await this.checkGeneration(shard, postId, applied.gen, eventId, ack);
    shard.cache?.values.forget(postId);
    this.countWrite(liked, 'redis', applied.changed);
    return { postId, liked, changed: applied.changed, count: applied.count, path: 'redis' };
  }

  /**
   * The state of each post in `postIds` (order kept) for `userId` (`liked` false without one).
   * One auto-pipelined Redis round trip per shard; cold posts are warmed (single-flight) and
   * read again; what Redis cannot serve is read from MySQL through the router.
   */
  async readStates(userId: string | undefined, postIds: readonly string[]): Promise<PostState[]> {
    const byShard = new Map<Shard, string[]>();
    for (const postId of postIds) {
      const shard = this.shardOf(postId);
      const list = byShard.get(shard);
      if (list === undefined) byShard.set(shard, [postId]);
      else list.push(postId);
    }
    const states = new Map<string, PostState>();
    await Promise.all(
      [...byShard].map(async ([shard, ids]) => {
        for (const state of await this.readShard(shard, userId, ids)) states.set(state.postId, state);
      }),
    );
    return postIds.map((postId) => states.get(postId) ?? { postId, count: 0, liked: false });
  }

  /** {@link readStates} for one post. */
  async readState(userId: string | undefined, postId: string): Promise<PostState> {
    const [state] = await this.readStates(userId, [postId]);
    return state ?? { postId, count: 0, liked: false };
  }

  /**
   * Admin: makes posts cold and warms them again behind the writer barrier; without `postIds`
   * deletes every like key of every shard (posts warm again on their next access).
   */
  async rewarm(postIds?: readonly string[]): Promise<RewarmResult> {
    if (postIds === undefined) {
      const deleted = await Promise.all(this.shards.map((shard) => this.invalidateShard(shard, 'admin')));
      return { scope: 'all', invalidated: deleted.reduce((a, b) => a + b, 0), warmed: 0 };
    }
    let warmed = 0;
    for (let i = 0; i < postIds.length; i += 16) {
      const outcomes = await Promise.all(
        postIds.slice(i, i + 16).map(async (postId) => {
          const shard = this.shardOf(postId);
          await this.redis(shard, () => shard.client.redis.del(...Object.values(this.keysOf(postId))));
          shard.cache?.values.forget(postId);
          this.metrics.invalidations.inc({ reason: 'admin' });
          return this.warm(shard, postId);
        }),
      );
      warmed += outcomes.filter((outcome) => SERVED.has(outcome)).length;
    }
    return { scope: 'posts', invalidated: postIds.length, warmed };
  }

  /** Readiness of Redis: every shard answers a PING, or its breaker is open (served from MySQL). */
  async redisReady(timeoutMs = 500): Promise<Record<string, string>> {
    const result: Record<string, string> = {};
    await Promise.all(
      this.shards.map(async (shard) => {
        try {
          await shard.client.ping(timeoutMs);
          result[shard.name] = 'up';
        } catch (err) {
          if (shard.policy.breakerState() !== 'open') throw err;
          result[shard.name] = 'breaker open: served from MySQL';
        }
      }),
    );
    return result;
  }

  /** Stops the repair loop, detaches from the shards, releases barrier waiters. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.repairTimer);
    for (const shard of this.shards) {
      shard.client.off('master-switch', shard.onSwitch);
      shard.cache?.close();
    }
    this.barrier.close();
  }

  /** Posts waiting for a deferred invalidation, per shard (tests, diagnostics). */
  pendingRepairs(): Record<string, { dirty: number; invalidateAll: boolean }> {
    return Object.fromEntries(
      this.shards.map((s) => [
        s.name,
        { dirty: s.dirty.size, invalidateAll: s.invalidationRequested > s.invalidationDone },
      ]),
    );
  }

  // ---------------------------------------------------------------------------------------------

  private shardOf(postId: string): Shard {
    const shard = this.shards[shardIndexOf(postId, this.shards.length)];
    if (shard === undefined) throw new Error('no shard for post');
    return shard;
  }

  private keysOf(postId: string): string[] {
    const keys: PostKeys = postKeys(postId);
    return [keys.users, keys.count, keys.gen, keys.pending];
  }

  /** Runs a Redis call under the shard's policy; any Redis failure becomes RedisPathError. */
  private async redis<T>(shard: Shard, fn: () => Promise<T>): Promise<T> {
    try {
      return await shard.policy.execute(() => fn());
    } catch (err) {
      if (err instanceof RedisError || isDependencyUnavailable(err))
        throw new RedisPathError(shard.name, err);
      throw err;
    }
  }

  private async applyWarm(
    shard: Shard,
    userId: string,
    postId: string,
    liked: boolean,
    eventId: string,
  ): Promise<Extract<ApplyReply, { cold: false }>> {
    for (let attempt = 1; ; attempt += 1) {
      const reply = await this.redis(shard, () =>
        shard.scripts.likeApply(this.keysOf(postId), [
          userId,
          liked ? '1' : '0',
          eventId,
          this.options.pendingMs,
        ]),
      );
      if (!reply.cold) return reply;
      if (attempt >= MAX_APPLY_ATTEMPTS) throw new WarmUnavailableError(postId);
      const outcome = await this.warm(shard, postId);
      if (outcome === 'unavailable') throw new WarmUnavailableError(postId);
    }
  }

  /** Single-flight per post within this process. */
  private warm(shard: Shard, postId: string): Promise<WarmResult> {
    const running = this.warming.get(postId);
    if (running !== undefined) return running;
    const warming = this.doWarm(shard, postId).finally(() => this.warming.delete(postId));
    this.warming.set(postId, warming);
    return warming;
  }

  /**
   * Claim → writer barrier → MySQL snapshot on the primary → fill (only while the claim holds and
   * the post is still cold). See the README's "Warming" section for why this converges.
   */
  private async doWarm(shard: Shard, postId: string): Promise<WarmResult> {
    const keys = this.keysOf(postId);
    const stop = this.metrics.warmDuration.startTimer();
    const done = (outcome: WarmResult): WarmResult => {
      this.metrics.warms.inc({ outcome });
      if (outcome !== 'unavailable' && outcome !== 'aborted') stop();
      return outcome;
    };
    for (let attempt = 1; attempt <= MAX_WARM_ATTEMPTS; attempt += 1) {
      const gen = randomUUID();
      const claimed = await this.redis(shard, () =>
        shard.scripts.likeClaim(keys, [gen, this.options.claimTtlMs]),
      );
      if (!claimed) return done('already');
      const barrier = await this.barrier.waitForKey(postId, this.options.warmWaitMs);
      if (barrier.kind === 'unavailable') {
        this.logger.debug({ postId, err: barrier.error }, 'writer barrier unavailable; not warming');
        return done('unavailable');
      }
      const degraded = barrier.kind === 'timeout';
      if (degraded) this.warnDegraded(postId, barrier);
      let snapshot;
      try {
        snapshot = await mysqlSnapshot(this.router.primary, postId);
      } catch (err) {
        this.metrics.warms.inc({ outcome: 'failed' });
        throw serviceUnavailable('Likes cannot be read right now; retry later', 1, err);
      }
      if (snapshot.storedCount !== snapshot.userIds.length) {
        this.logger.warn(
          { postId, storedCount: snapshot.storedCount, rows: snapshot.userIds.length },
          'post_stats.like_count differs from COUNT(like_records); warming with the row count',
        );
      }
      const ttl = degraded ? this.options.degradedTtlMs : this.options.cacheTtlMs;
      const filled = await this.fill(shard, keys, gen, snapshot.userIds, ttl);
      if (filled === 'already') return done('already');
      if (filled === 'filled') return done(degraded ? 'degraded' : 'warmed');
      this.metrics.warms.inc({ outcome: 'aborted' });
    }
    return 'aborted';
  }

  private async fill(shard: Shard, keys: string[], gen: string, userIds: string[], ttlMs: number) {
    const chunk = this.options.fillChunk;
    for (let i = 0; ; i += chunk) {
      const part = userIds.slice(i, i + chunk);
      const final = i + chunk >= userIds.length;
      const reply = await this.redis(shard, () =>
        shard.scripts.likeFill(keys, [gen, final ? '1' : '0', ttlMs, ...part]),
      );
      if (reply !== 'filled' || final) return reply;
    }
  }

  private warnDegraded(postId: string, barrier: Extract<BarrierOutcome, { kind: 'timeout' }>): void {
    this.metrics.warmWaitTimeouts.inc();
    this.logger.warn(
      { postId, partition: barrier.partition, target: barrier.target, position: barrier.position },
      'writer did not catch up in time; warming anyway with a short TTL',
    );
  }

  private async readShard(shard: Shard, userId: string | undefined, postIds: string[]): Promise<PostState[]> {
    const fromRedis = new Map<string, PostState>();
    let missing = postIds;
    const cache = shard.cache;
    if (cache !== undefined && shard.policy.breakerState() === 'closed') {
      missing = [];
      for (const postId of postIds) {
        const entry = cache.values.get(postId);
        const state = entry === undefined ? undefined : stateFrom(entry, userId);
        if (state === undefined) missing.push(postId);
        else fromRedis.set(postId, { postId, ...state });
      }
      if (fromRedis.size > 0) this.metrics.reads.inc({ source: 'cache' }, fromRedis.size);
    }
    const fromCache = fromRedis.size;
    for (let round = 0; round < 2 && missing.length > 0; round += 1) {
      let replies;
      try {
        replies = await this.pipelineRead(shard, userId, missing);
      } catch (err) {
        if (!(err instanceof RedisPathError)) throw err;
        this.metrics.fallbacks.inc({ reason: 'redis_unavailable' });
        break;
      }
      const cold: string[] = [];
      replies.forEach((reply, i) => {
        const postId = missing[i] as string;
        if (reply.cold) cold.push(postId);
        else fromRedis.set(postId, { postId, count: reply.count, liked: reply.liked });
      });
      if (cold.length === 0 || round === 1) {
        missing = cold;
        break;
      }
      const outcomes = await Promise.all(
        cold.map((postId) =>
          this.warm(shard, postId).catch((err: unknown) => {
            // Redis or the primary failed while warming: MySQL (replica) may still serve the read.
            if (err instanceof RedisPathError || (err instanceof HttpProblem && err.status === 503)) {
              return 'unavailable' as const;
            }
            throw err;
          }),
        ),
      );
      missing = cold.filter((_, i) => SERVED.has(outcomes[i] ?? 'unavailable'));
      const unwarmed = cold.filter((_, i) => !SERVED.has(outcomes[i] ?? 'unavailable'));
      if (unwarmed.length > 0) {
        // Not warmable now: read those from MySQL together with whatever stays missing.
        for (const state of await this.mysqlRead(userId, unwarmed)) fromRedis.set(state.postId, state);
      }
    }
    this.metrics.reads.inc({ source: 'redis' }, fromRedis.size - fromCache);
    const rest = postIds.filter((postId) => !fromRedis.has(postId));
    if (rest.length > 0)
      for (const state of await this.mysqlRead(userId, rest)) fromRedis.set(state.postId, state);
    return postIds.map((postId) => fromRedis.get(postId) ?? { postId, count: 0, liked: false });
  }

  /**
   * All reads of one shard issued in the same tick: ioredis auto-pipelining sends them in one
   * write; on the tracked connection, and through the cache, while tracking is live.
   */
  private pipelineRead(shard: Shard, userId: string | undefined, postIds: readonly string[]) {
    const user = userId ?? '';
    const cache = shard.cache;
    if (cache === undefined || !cache.values.tracking()) {
      return this.redis(shard, () =>
        Promise.all(postIds.map((postId) => shard.scripts.likeRead(this.keysOf(postId), [user]))),
      );
    }
    return this.redis(shard, () =>
      cache.values.fetch(
        postIds,
        () => Promise.all(postIds.map((postId) => cache.scripts.likeRead(this.keysOf(postId), [user]))),
        (reply, previous) => cachedPost(reply, user, previous),
      ),
    );
  }

  private async mysqlRead(userId: string | undefined, postIds: readonly string[]): Promise<PostState[]> {
    this.metrics.reads.inc({ source: 'mysql' }, postIds.length);
    return mysqlReadStates(this.router, userId, postIds);
  }

  /** Redis unavailable: wait (bounded) for the writer, then write MySQL; the keys are deleted later. */
  private async directWrite(
    shard: Shard,
    userId: string,
    postId: string,
    liked: boolean,
  ): Promise<WriteOutcome> {
    // Delete the keys once Redis answers: they may hold this change (a timed-out script can still
    // run) or miss it (MySQL-only), either way they are no longer the truth.
    this.markDirty(shard, postId);
    try {
      let supersedes: AckedPosition | undefined;
      if (this.options.directWriteWaitMs > 0) {
        const barrier = await this.barrier.waitForKey(postId, this.options.directWriteWaitMs);
        if (barrier.kind !== 'passed') {
          this.logger.debug({ postId, barrier: barrier.kind }, 'direct write without the writer barrier');
        }
        // The writer has not reached what Kafka held when this request came: this user's events
        // of the post among those are older than this write and must not be applied after it.
        if (barrier.kind === 'timeout') {
          supersedes = { partition: barrier.partition, offset: (BigInt(barrier.target) - 1n).toString() };
        }
      }
      return await this.mysqlWrite(shard, userId, postId, liked, 'mysql_direct', { supersedes });
    } finally {
      // Again once the transaction ended: Redis may have come back while it ran, the repair loop
      // deleted the keys, and a warm filled them from a snapshot taken before this commit.
      this.markDirty(shard, postId);
    }
  }

  private async mysqlWrite(
    shard: Shard,
    userId: string,
    postId: string,
    liked: boolean,
    path: Exclude<WritePath, 'redis'>,
    records: FallbackRecords = {},
  ): Promise<WriteOutcome> {
    let result;
    try {
      result = await mysqlSetLiked(this.router, userId, postId, liked, records);
    } catch (err) {
      this.logger.warn({ err, postId, path }, 'MySQL write failed after Redis/Kafka failed');
      if (path === 'mysql_fallback') await this.invalidate(shard, postId, 'fallback');
      throw serviceUnavailable('Likes cannot be stored right now; retry later', 1, err);
    }
    if (path === 'mysql_fallback') await this.invalidate(shard, postId, 'fallback');
    this.countWrite(liked, path, result.changed);
    return { postId, liked, changed: result.changed, count: result.count, path };
  }

  private async checkGeneration(
    shard: Shard,
    postId: string,
    gen: string,
    eventId: string,
    ack: SendResult,
  ): Promise<void> {
    const known = ack.partition !== undefined && ack.offset !== undefined;
    try {
      const same = await this.redis(shard, () =>
        shard.scripts.likeCheckGen(
          [...this.keysOf(postId), ackedPositionKey(postId)],
          [
            gen,
            eventId,
            known ? String(ack.partition) : '',
            known ? (ack.offset ?? '') : '',
            String(this.options.ackedPositionTtlMs),
          ],
        ),
      );
      if (!same) this.metrics.invalidations.inc({ reason: 'generation' });
    } catch (err) {
      if (!(err instanceof RedisPathError)) throw err;
      this.markDirty(shard, postId);
    }
  }

  /**
   * The post's newest acknowledged Kafka position, for a fallback write to supersede the older
   * events up to it. Undefined when Redis cannot say (then nothing is superseded).
   */
  private async ackedPosition(shard: Shard, postId: string): Promise<AckedPosition | undefined> {
    try {
      return parseAckedPosition(
        await this.redis(shard, () => shard.client.redis.get(ackedPositionKey(postId))),
      );
    } catch (err) {
      if (!(err instanceof RedisPathError)) throw err;
      this.logger.warn({ postId }, 'acked position unknown: older events are not superseded');
      return undefined;
    }
  }

  /** Deletes a post's keys now, or remembers to (repair loop) when Redis fails. */
  private async invalidate(shard: Shard, postId: string, reason: InvalidationReason): Promise<void> {
    try {
      await this.redis(shard, () => shard.client.redis.del(...this.keysOf(postId)));
      shard.cache?.values.forget(postId);
      this.metrics.invalidations.inc({ reason });
    } catch (err) {
      if (!(err instanceof RedisPathError)) throw err;
      this.markDirty(shard, postId);
    }
  }

  private async bestEffort(shard: Shard, postId: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await this.redis(shard, fn);
    } catch (err) {
      if (!(err instanceof RedisPathError)) throw err;
      this.markDirty(shard, postId);
    }
  }

  private markDirty(shard: Shard, postId: string): void {
    shard.cache?.values.forget(postId);
    shard.dirty.add(postId);
    if (shard.dirty.size > this.options.maxDirtyPosts) {
      shard.dirty.clear();
      shard.invalidationRequested += 1;
      shard.invalidationReason = 'repair';
    }
  }

  /**
   * SCAN `like:*` on the shard's current master and delete every match (UNLINK, 1000 per round):
   * idempotent, so every pod doing it after a failover is fine; requests keep being served while
   * it runs. Resolves with the number of keys deleted; on failure the repair loop tries again.
   */
  private invalidateShard(shard: Shard, reason: InvalidationReason): Promise<number> {
    if (shard.invalidating !== null) return shard.invalidating;
    // A request arriving while this SCAN runs bumps `invalidationRequested` again, so the repair
    // loop runs another SCAN: keys written behind this cursor are never missed.
    if (shard.invalidationRequested === shard.invalidationDone) {
      shard.invalidationRequested += 1;
      shard.invalidationReason = reason;
    }
    const epoch = shard.invalidationRequested;
    shard.cache?.values.clear();
    const run = (async () => {
      let deleted = 0;
      let cursor = '0';
      do {
        const [next, keys] = await shard.client.run((redis) =>
          redis.scan(cursor, 'MATCH', KEY_PATTERN, 'COUNT', 1000),
        );
        cursor = next;
        if (keys.length > 0) deleted += await shard.client.run((redis) => redis.unlink(...keys));
      } while (cursor !== '0');
      shard.invalidationDone = Math.max(shard.invalidationDone, epoch);
      this.metrics.invalidations.inc({ reason }, deleted);
      this.logger.info({ shard: shard.name, deleted, reason }, 'shard like keys invalidated');
      return deleted;
    })();
    shard.invalidating = run;
    void run
      .catch((err: unknown) => {
        this.logger.warn({ err, shard: shard.name }, 'shard invalidation failed; will retry');
      })
      .finally(() => {
        shard.invalidating = null;
      });
    return run;
  }

  private repairing = false;

  /** Deferred invalidations: whole shards first, then dirty posts in batches of 500. */
  private async repair(): Promise<void> {
    if (this.repairing || this.closed) return;
    this.repairing = true;
    try {
      for (const shard of this.shards) {
        if (shard.invalidationRequested > shard.invalidationDone) {
          await this.invalidateShard(shard, shard.invalidationReason).catch(() => undefined);
          continue;
        }
        // An open breaker rejects at once; after its half-open delay this DEL is the probe.
        if (shard.dirty.size === 0) continue;
        const batch = [...shard.dirty].slice(0, 500);
        try {
          await this.redis(shard, () =>
            shard.client.redis.del(...batch.flatMap((postId) => this.keysOf(postId))),
          );
          for (const postId of batch) shard.dirty.delete(postId);
          this.metrics.invalidations.inc({ reason: 'repair' }, batch.length);
        } catch (err) {
          if (!(err instanceof RedisPathError)) this.logger.warn({ err }, 'repair failed');
        }
      }
    } finally {
      this.repairing = false;
    }
  }

  private countWrite(liked: boolean, path: WritePath, changed: boolean): void {
    this.metrics.writes.inc({ action: liked ? 'like' : 'unlike', path, changed: String(changed) });
  }
}

/** The fallback reason for a failed send, or undefined when the error is not Kafka's. */
function kafkaFallbackReason(err: unknown): FallbackReason | undefined {
  if (err instanceof KafkaBackpressureError) return 'kafka_backpressure';
  if (err instanceof BreakerOpenError) return 'kafka_breaker_open';
  if (err instanceof KafkaUnavailableError || isDependencyUnavailable(err)) return 'kafka_unavailable';
  return undefined;
}
