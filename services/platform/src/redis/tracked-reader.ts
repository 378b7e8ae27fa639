import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { getOrCreate } from '../resilience/metrics.js';
import { buildRedisOptions, type RedisClientOptions } from './client.js';

/** Where Redis publishes invalidations for clients that track with REDIRECT (RESP2). */
const INVALIDATE_CHANNEL = '__redis__:invalidate';

/** Tuning of a {@link TrackedReader}. */
export interface TrackedReaderOptions {
  /**
   * The most a cached value may trail a write when invalidations stop arriving without the
   * connection closing (a network partition): {@link TrackedReader.live} turns false when no
   * heartbeat sent within this many ms has come back. Default 2000.
   */
  maxStalenessMs?: number;
  /** How often the invalidation connection is pinged. Default a quarter of `maxStalenessMs`. */
  heartbeatMs?: number;
  /** Base name of the two connections in `CLIENT LIST` (`<name>:reads`, `<name>:invalidations`). */
  connectionName?: string;
}

/** What the reader needs from its shard: connection options, where it logs and counts, failovers. */
export interface TrackedReaderDeps {
  shard: string;
  clientOptions: RedisClientOptions;
  logger: Logger;
  registry: Registry;
  /** Called once by close() (the shard client forgets the reader). */
  onClose?: () => void;
}

/** Keys Redis says changed (`null`: all of them, e.g. after FLUSHALL or when tracking lapsed). */
export type InvalidationListener = (keys: readonly string[] | null) => void;

/**
 * Server-assisted client-side caching (Redis `CLIENT TRACKING`) for one shard's master.
 *
 * Two connections of its own: `redis`, whose reads Redis remembers (tracking, default mode), and a
 * subscriber that receives an invalidation for every key those reads touched, as soon as anyone
 * changes it (`REDIRECT`, because ioredis speaks RESP2). A cache built on it stays exact under
 * writes from any client, on the terms below.
 *
 * What makes a cached value trustworthy, and how this class tells:
 * - Tracking must be on for the connection that read it, redirected to OUR subscriber on the SAME
 *   server. Client ids are per server, so before `CLIENT TRACKING ... REDIRECT <id>` both
 *   connections must report the same `run_id`; otherwise the redirect could name a stranger.
 * - Any close of either connection, and any master switch of the shard, may lose invalidations:
 *   the {@link epoch} changes and listeners get `null` (drop everything). A cache compares the
 *   epoch it read under with the epoch when the reply came.
 * - A connection that stays open but stops delivering (a partition) is caught by a heartbeat: a
 *   PING on the subscriber comes back after every invalidation sent before it, so a PONG proves
 *   delivery up to the moment the PING left. {@link live} is false when that moment is older than
 *   `maxStalenessMs`; the cache then serves nothing, and can serve again after the next PONG.
 *
 * Metrics: `hyperscale_redis_tracking_up{shard}`, `hyperscale_redis_invalidations_total{shard}`
 * (keys), `hyperscale_redis_tracking_resets_total{shard}` (epoch changes).
 */
export class TrackedReader {
  /** The tracked connection: send only the reads whose replies may be cached. */
  readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly logger: Logger;
  private readonly maxStalenessMs: number;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly onClose: (() => void) | undefined;
  private readonly listeners = new Set<InvalidationListener>();
  private readonly metrics: { up: (v: boolean) => void; keys: (n: number) => void; reset: () => void };
  private currentEpoch = 0;
  /** Epoch in which tracking was switched on, or -1. */
  private trackingEpoch = -1;
  /** The subscriber's identity on its server, known while it is connected and subscribed. */
  private subscriberId: { id: number; runId: string } | undefined;
  /** When the newest PING that came back was sent (ms since the epoch). */
  private confirmedAt = 0;
  private heartbeatFailures = 0;
  private pinging = false;
  private establishing = false;
  private closed = false;

  constructor(options: TrackedReaderOptions, deps: TrackedReaderDeps) {
    this.maxStalenessMs = options.maxStalenessMs ?? 2_000;
    this.onClose = deps.onClose;
    const heartbeatMs = options.heartbeatMs ?? Math.max(50, Math.floor(this.maxStalenessMs / 4));
    if (heartbeatMs >= this.maxStalenessMs) {
      throw new RangeError('TrackedReader: heartbeatMs must be less than maxStalenessMs');
    }
    this.logger = deps.logger.child({ component: 'redis-tracking', shard: deps.shard });
    this.metrics = trackingMetrics(deps.registry, deps.shard);
    const base = options.connectionName ?? `hyperscale:tracking:${deps.shard}`;
    this.redis = this.connect(deps.clientOptions, `${base}:reads`, false);
    // Resubscribing by itself after a reconnect would skip the identity check: done by establish().
    this.subscriber = this.connect(deps.clientOptions, `${base}:invalidations`, true);

    this.redis.on('ready', () => void this.establish());
    onConnectionLost(this.redis, () => this.reset('reads connection closed'));
    this.subscriber.on('ready', () => void this.subscribe());
    onConnectionLost(this.subscriber, () => {
      this.subscriberId = undefined;
      this.reset('invalidation connection closed');
    });
    this.subscriber.on('messageBuffer', (channel: Buffer, message: unknown) => {
      if (channel.toString() === INVALIDATE_CHANNEL) this.onInvalidation(message);
    });
    this.heartbeat = setInterval(() => void this.ping(), heartbeatMs);
    this.heartbeat.unref();
  }

  /** Changes whenever invalidations may have been missed; a reply read in an older epoch must not be cached. */
  get epoch(): number {
    return this.currentEpoch;
  }

  /**
   * True while reads on {@link redis} are tracked in the current epoch and every invalidation sent
   * more than `maxStalenessMs` ago has provably arrived.
   */
  live(now = Date.now()): boolean {
    return this.trackingEpoch === this.currentEpoch && now - this.confirmedAt <= this.maxStalenessMs;
  }

  /** Calls `listener` with the keys of every invalidation, and with `null` when everything must go. */
  onInvalidate(listener: InvalidationListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Starts over: a new epoch (listeners drop everything), tracking off until re-established. For
   * the owner to call on a master switch; the reader reconnects both connections, which go through
   * Sentinel to the current master.
   */
  restart(reason: string): void {
    if (this.closed) return;
    this.reset(reason);
    for (const client of [this.redis, this.subscriber]) {
      if (client.status === 'ready') client.disconnect(true);
    }
  }

  /** Closes both connections (no reconnect). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.reset('closed');
    this.redis.disconnect();
    this.subscriber.disconnect();
    this.listeners.clear();
    this.onClose?.();
  }

  private connect(options: RedisClientOptions, connectionName: string, subscriber: boolean): Redis {
    const client = new Redis({
      ...buildRedisOptions({ ...options, connectionName }),
      ...(subscriber ? { autoResubscribe: false } : {}),
    });
    client.on('error', (err: Error) =>
      this.logger.warn({ err: { message: err.message }, connectionName }, 'redis tracking connection error'),
    );
    return client;
  }

  private reset(reason: string): void {
    const wasLive = this.trackingEpoch === this.currentEpoch;
    this.currentEpoch += 1;
    this.metrics.up(false);
    this.metrics.reset();
    if (wasLive && !this.closed) this.logger.info({ reason }, 'redis tracking reset; cached reads dropped');
    this.emit(null);
  }

  /** Subscriber (re)connected: learn its id and server, subscribe, then (re)enable tracking. */
  private async subscribe(): Promise<void> {
    try {
      const [id, info] = await Promise.all([
        this.subscriber.client('ID') as Promise<number>,
        this.subscriber.info('server'),
      ]);
      await this.subscriber.subscribe(INVALIDATE_CHANNEL);
      this.subscriberId = { id, runId: runIdOf(info) };
    } catch (err) {
      this.logger.warn({ err }, 'redis tracking: subscribing for invalidations failed; reconnecting');
      if (this.subscriber.status === 'ready') this.subscriber.disconnect(true);
      return;
    }
    await this.establish();
  }

  /** Turns tracking on for the reads connection once both connections are up on one server. */
  private async establish(): Promise<void> {
    if (this.closed || this.establishing) return;
    const target = this.subscriberId;
    if (target === undefined || this.redis.status !== 'ready') return;
    this.establishing = true;
    // Everything read before this point, or while it runs, belongs to an older epoch.
    this.reset('tracking (re)established');
    const epoch = this.currentEpoch;
    try {
      const runId = runIdOf(await this.redis.info('server'));
      if (runId !== target.runId) {
        this.logger.warn(
          { reads: runId, invalidations: target.runId },
          'redis tracking: the two connections reached different servers; reconnecting',
        );
        this.restart('connections on different servers');
        return;
      }
      const sentAt = Date.now();
      await this.redis.client('TRACKING', 'ON', 'REDIRECT', String(target.id));
      if (epoch === this.currentEpoch && this.subscriberId === target) {
        this.trackingEpoch = epoch;
        this.confirmedAt = sentAt;
        this.metrics.up(true);
        this.logger.info({ redirect: target.id }, 'redis tracking on');
      }
    } catch (err) {
      this.logger.warn({ err }, 'redis tracking: CLIENT TRACKING failed; reads are not cached');
    } finally {
      this.establishing = false;
    }
    // Something changed while this ran (e.g. the subscriber reconnected): go again. A plain
    // failure is retried by the heartbeat instead, so a server that refuses cannot spin this.
    if (this.currentEpoch !== epoch) void this.establish();
  }

  /** Every heartbeat: confirm delivery, or retry tracking that is off while both connections are up. */
  private async ping(): Promise<void> {
    if (this.trackingEpoch !== this.currentEpoch) void this.establish();
    if (this.pinging || this.subscriberId === undefined || this.subscriber.status !== 'ready') return;
    this.pinging = true;
    const sentAt = Date.now();
    try {
      await this.subscriber.ping();
      this.confirmedAt = Math.max(this.confirmedAt, sentAt);
      this.heartbeatFailures = 0;
    } catch (err) {
      this.heartbeatFailures += 1;
      // The command timeout answered, not the server: after three in a row, start over.
      if (this.heartbeatFailures >= 3) {
        this.heartbeatFailures = 0;
        this.logger.warn({ err }, 'redis tracking: heartbeat failing; reconnecting');
        this.restart('heartbeat failing');
      }
    } finally {
      this.pinging = false;
    }
  }

  private onInvalidation(message: unknown): void {
    if (message === null || message === undefined) {
      this.emit(null); // FLUSHALL / FLUSHDB
      return;
    }
    const keys = (Array.isArray(message) ? message : [message]).map((key: unknown) =>
      Buffer.isBuffer(key) ? key.toString('utf8') : String(key),
    );
    this.metrics.keys(keys.length);
    this.emit(keys);
  }

  private emit(keys: readonly string[] | null): void {
    for (const listener of this.listeners) {
      try {
        listener(keys);
      } catch (err) {
        this.logger.error({ err }, 'invalidation listener threw');
      }
    }
  }
}

/**
 * Calls `lost` once per connection of `client`, at the first sign that it ended: the socket's
 * 'end' (the peer's FIN, seen in the same event-loop turn it is read) or ioredis' 'close', which
 * Node emits only in a later turn — by then a request that arrived with the FIN could have been
 * answered from a cache whose invalidations stopped.
 */
function onConnectionLost(client: Redis, lost: () => void): void {
  let current: unknown;
  let reported = true;
  const report = (stream: unknown) => {
    if (stream !== current || reported) return;
    reported = true;
    lost();
  };
  client.on('connect', () => {
    const stream = client.stream;
    current = stream;
    reported = false;
    stream.once('end', () => report(stream));
  });
  client.on('close', () => report(current));
}

function runIdOf(info: string): string {
  const match = /^run_id:([0-9a-f]+)\s*$/m.exec(info);
  if (match?.[1] === undefined) throw new Error('INFO server has no run_id');
  return match[1];
}

function trackingMetrics(registry: Registry, shard: string) {
  const up = getOrCreate(
    registry,
    'hyperscale_redis_tracking_up',
    () =>
      new Gauge({
        name: 'hyperscale_redis_tracking_up',
        help: '1 while reads of the shard are tracked (client-side caching may serve), else 0.',
        labelNames: ['shard'],
        registers: [registry],
      }),
    Gauge,
  );
  const keys = getOrCreate(
    registry,
    'hyperscale_redis_invalidations_total',
    () =>
      new Counter({
        name: 'hyperscale_redis_invalidations_total',
        help: 'Keys Redis reported changed to the shard’s tracking connection.',
        labelNames: ['shard'],
        registers: [registry],
      }),
    Counter,
  );
  const resets = getOrCreate(
    registry,
    'hyperscale_redis_tracking_resets_total',
    () =>
      new Counter({
        name: 'hyperscale_redis_tracking_resets_total',
        help: 'Times the tracking state started over (a connection closed, a failover, tracking re-enabled): caches dropped everything.',
        labelNames: ['shard'],
        registers: [registry],
      }),
    Counter,
  );
  up.set({ shard }, 0);
  keys.inc({ shard }, 0);
  const bound = { up: up.labels({ shard }), keys: keys.labels({ shard }), resets: resets.labels({ shard }) };
  return {
    up: (value: boolean) => bound.up.set(value ? 1 : 0),
    keys: (n: number) => bound.keys.inc(n),
    reset: () => bound.resets.inc(),
  };
}
