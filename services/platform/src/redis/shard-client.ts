import { EventEmitter, once } from 'node:events';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ReadinessCheck } from '../health.js';
import {
  cappedBackoff,
  createRedisClient,
  REDIS_DEFAULTS,
  isSentinelTarget,
  waitForRedisReady,
  type RedisClientOptions,
  type RedisEndpoint,
} from './client.js';
import { isRedisClientError, toRedisError } from './errors.js';
import { pingWithTimeout, redisReadinessCheck } from './health.js';
import { MasterTracker, normalizeHost, sameEndpoint, type MasterChange } from './master-tracker.js';
import { redisShardMetrics, type RedisShardMetrics } from './metrics.js';
import { defineScripts, type ScriptDefinition, type ScriptInvokers } from './scripts.js';
import { SentinelSubscriber } from './sentinel-subscriber.js';
import { TrackedReader, type TrackedReaderOptions } from './tracked-reader.js';

/** Emitted once per master change of a Sentinel-managed shard. */
export interface MasterSwitchEvent extends MasterChange {
  shard: string;
  masterName: string;
  at: Date;
}

/** {@link RedisClientOptions} plus the shard's name. */
export type RedisShardOptions = RedisClientOptions & {
  /** Shard name, the `shard` label of the metrics (`shard-0`...). */
  shard: string;
};

/** Injected by the process: a logger (child per shard) and the registry for the shard metrics. */
export interface RedisShardDeps {
  logger: Logger;
  registry: Registry;
}

interface RedisShardEvents {
  'master-switch': [MasterSwitchEvent];
}

/**
 * One Redis shard (a Sentinel group or a single server) with what every service needs around the
 * raw client: metrics, health, typed errors, Lua scripts and — for Sentinel groups — a
 * `'master-switch'` event.
 *
 * `'master-switch'` fires exactly once per failover, with the previous and the new master address.
 * Two independent detectors feed one deduplicating {@link MasterTracker}: `+switch-master` on a
 * separate subscriber connection to every Sentinel (fires as soon as Sentinel decides, even while
 * the client is idle), and the client's own reconnect landing on another address (covers
 * announcements missed while the Sentinels were unreachable). On a Sentinel announcement the client
 * is also moved off the old master at once if it is still connected there — the safe replacement
 * for ioredis' `failoverDetector` (see `RedisSentinelTarget.failoverDetector`). Should ioredis ever
 * end the client on its own (status `end` without `close()`), the shard client reconnects it. Consumers treat the shard's cached
 * keys as cold on it: Sentinel failover is asynchronous and the new master may lack the last
 * acknowledged writes. Listener errors are logged, never thrown into the detectors.
 *
 * Metrics: `hyperscale_redis_up{shard}`, `hyperscale_redis_master_switches_total{shard}`,
 * `hyperscale_redis_command_errors_total{shard,kind}`.
 */
export class RedisShardClient extends EventEmitter<RedisShardEvents> {
  readonly shard: string;
  /**
   * The underlying ioredis client, configured by `createRedisClient`. Stop it with `close()`: a
   * direct `redis.quit()`/`disconnect()` looks like ioredis giving up and is undone (reconnect).
   */
  readonly redis: Redis;
  /** Sentinel master name; undefined for a direct (single server) shard. */
  readonly masterName: string | undefined;
  private readonly tracker = new MasterTracker();
  private readonly subscriber: SentinelSubscriber | undefined;
  private readonly metrics: RedisShardMetrics;
  private readonly logger: Logger;
  private readonly backoff: (attempt: number) => number;
  private readonly options: RedisShardOptions;
  private readonly registry: Registry;
  private readonly trackedReaders = new Set<TrackedReader>();
  private closing = false;
  private revivals = 0;
  private reviveTimer: NodeJS.Timeout | undefined;

  constructor(options: RedisShardOptions, deps: RedisShardDeps) {
    super();
    this.shard = options.shard;
    this.options = options;
    this.registry = deps.registry;
    this.logger = deps.logger.child({ component: 'redis', shard: options.shard });
    this.metrics = redisShardMetrics(deps.registry, options.shard);
    this.redis = createRedisClient({
      ...options,
      logger: this.logger,
      onCommandError: (err) => this.metrics.commandFailed(toRedisError(err).kind),
    });
    this.backoff = cappedBackoff(options.reconnect ?? REDIS_DEFAULTS.reconnect);
    this.redis.on('ready', () => this.onReady());
    this.redis.on('close', () => this.metrics.setUp(false));
    this.redis.on('end', () => this.onEnd());

    if (isSentinelTarget(options)) {
      this.masterName = options.masterName;
      this.subscriber = new SentinelSubscriber({
        sentinels: options.sentinels,
        masterName: options.masterName,
        ...(options.sentinelPassword === undefined ? {} : { sentinelPassword: options.sentinelPassword }),
        ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }),
        ...(options.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: options.commandTimeoutMs }),
        ...(options.reconnect === undefined ? {} : { reconnect: options.reconnect }),
        logger: this.logger,
        onSwitch: ({ from, to }) => this.announce(this.tracker.fromSentinel(from, to)),
      });
      this.subscriber.start();
    } else {
      this.masterName = undefined;
    }
  }

  /** The master this shard believes in: last switch target or the address first connected to. */
  currentMaster(): RedisEndpoint | null {
    return this.tracker.current();
  }

  /**
   * Resolves once the client can take commands; rejects after `timeoutMs`, or at once after
   * `close()`. Unlike `waitForRedisReady` it keeps waiting through an unexpected `end`, which the
   * shard client repairs.
   */
  async waitUntilReady(timeoutMs: number): Promise<void> {
    if (this.closing) throw new Error(`Redis shard ${this.shard} is closed`);
    if (this.redis.status === 'ready') return;
    if (this.redis.status !== 'end') return waitForRedisReady(this.redis, timeoutMs);
    await once(this.redis, 'ready', { signal: AbortSignal.timeout(timeoutMs) }).catch(() => {
      throw new Error(
        `Redis shard ${this.shard} not ready within ${timeoutMs} ms (status ${this.redis.status})`,
      );
    });
  }

  /**
   * Resolves once `+switch-master` subscriptions are active on at least `count` Sentinels (default
   * all); immediately for a direct shard. Rejects after `timeoutMs`.
   */
  async waitUntilWatching(timeoutMs: number, count?: number): Promise<void> {
    await this.subscriber?.whenSubscribed(timeoutMs, count);
  }

  /**
   * Runs `fn` with the raw client and turns Redis failures into typed `RedisError`s tagged with the
   * shard (errors that did not come from Redis pass through untouched). Compose with a resilience
   * policy for breaker/retry: `policy.execute(() => shard.run((r) => r.incr(k)))`.
   */
  async run<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
    try {
      return await fn(this.redis);
    } catch (err) {
      throw isRedisClientError(err) ? toRedisError(err, this.shard) : err;
    }
  }

  /** {@link defineScripts} on this shard's client, errors tagged with the shard. */
  defineScripts<D extends Record<string, ScriptDefinition<unknown>>>(definitions: D): ScriptInvokers<D> {
    return defineScripts(this.redis, definitions, { shard: this.shard });
  }

  /**
   * A {@link TrackedReader} on this shard's master: two more connections, for reads whose replies
   * may be cached until Redis says the keys changed. It starts over on every master switch of the
   * shard, and `close()` closes it.
   */
  openTrackedReader(options: TrackedReaderOptions = {}): TrackedReader {
    const { shard, ...clientOptions } = this.options;
    const reader: TrackedReader = new TrackedReader(
      { connectionName: `${clientOptions.connectionName ?? 'hyperscale'}:tracking`, ...options },
      {
        shard,
        clientOptions,
        logger: this.logger,
        registry: this.registry,
        onClose: () => this.trackedReaders.delete(reader),
      },
    );
    this.trackedReaders.add(reader);
    return reader;
  }

  /** {@link pingWithTimeout} on this shard; resolves with the round trip in ms. */
  ping(timeoutMs: number): Promise<number> {
    return pingWithTimeout(this.redis, timeoutMs, this.shard);
  }

  /** A readiness check (`Health.addReadinessCheck('redis:shard-0', ...)`) pinging the master. */
  readinessCheck(timeoutMs = 500): ReadinessCheck {
    return redisReadinessCheck(this.redis, { timeoutMs, shard: this.shard });
  }

  /**
   * Closes the Sentinel subscriptions and the client: QUIT (bounded by `timeoutMs`), then a hard
   * disconnect, and waits (bounded) until the client has ended, so close never hangs on a dead
   * server. Idempotent.
   */
  async close(timeoutMs = 1_000): Promise<void> {
    this.closing = true;
    clearTimeout(this.reviveTimer);
    this.subscriber?.close();
    for (const reader of this.trackedReaders) reader.close();
    if (this.redis.status === 'end') return;
    const ended = once(this.redis, 'end', { signal: AbortSignal.timeout(timeoutMs) }).catch(() => undefined);
    if (this.redis.status === 'ready') {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.redis.quit().catch(() => undefined),
        new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    this.redis.disconnect();
    await ended;
    this.metrics.setUp(false);
  }

  /**
   * Moves the client off `old` when it is still connected there. After a graceful failover the old
   * master keeps accepting writes until Sentinel reconfigures it (measured ~10 s locally), writes
   * that are then lost. Acts only while `ready` (no connect attempt in flight, unlike ioredis'
   * failover detector). `disconnect(true)` half-closes: replies in flight still arrive, then
   * ioredis reconnects through the Sentinels to the new master.
   */
  private leave(old: RedisEndpoint): void {
    if (this.redis.status !== 'ready') return;
    const { remoteAddress, remotePort } = this.redis.stream;
    if (remoteAddress === undefined || remotePort === undefined) return;
    if (!sameEndpoint({ host: remoteAddress, port: remotePort }, old)) return;
    this.logger.info({ from: old }, 'leaving the old master after +switch-master');
    this.redis.disconnect(true);
  }

  /**
   * ioredis stops reconnecting for good when a connect attempt itself rejects (status `end`), e.g.
   * after a disconnect that raced a Sentinel lookup. A shard client must outlive that: unless we
   * are closing, start connecting again with the reconnect backoff.
   */
  private onEnd(): void {
    this.metrics.setUp(false);
    if (this.closing) return;
    const delayMs = this.backoff(++this.revivals);
    this.logger.error({ delayMs }, 'redis client ended unexpectedly; reconnecting');
    clearTimeout(this.reviveTimer);
    this.reviveTimer = setTimeout(() => {
      if (!this.closing && this.redis.status === 'end') this.redis.connect().catch(() => undefined);
    }, delayMs);
  }

  private onReady(): void {
    this.revivals = 0;
    this.metrics.setUp(true);
    if (this.masterName === undefined) return;
    const { remoteAddress, remotePort } = this.redis.stream;
    if (remoteAddress === undefined || remotePort === undefined) return;
    this.announce(this.tracker.fromConnection({ host: normalizeHost(remoteAddress), port: remotePort }));
  }

  private announce(change: MasterChange | null): void {
    if (change === null || this.masterName === undefined) return;
    if (change.detectedBy === 'sentinel') this.leave(change.from);
    for (const reader of this.trackedReaders) reader.restart('master switch');
    this.metrics.masterSwitched();
    const event: MasterSwitchEvent = {
      ...change,
      shard: this.shard,
      masterName: this.masterName,
      at: new Date(),
    };
    this.logger.warn(
      { from: change.from, to: change.to, detectedBy: change.detectedBy },
      'redis master switched; cached keys of this shard are cold',
    );
    try {
      this.emit('master-switch', event);
    } catch (err) {
      this.logger.error({ err }, 'master-switch listener threw');
    }
  }
}
