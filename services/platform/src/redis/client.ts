import { Redis, type Command, type RedisOptions } from 'ioredis';
import { sendInCallerContext } from './caller-context.js';
import type { Logger } from 'pino';
import { isReadOnlyReply } from './errors.js';

/** A Redis or Sentinel address. */
export interface RedisEndpoint {
  host: string;
  port: number;
}

/** A Sentinel-managed primary/replica group. */
export interface RedisSentinelTarget {
  sentinels: readonly RedisEndpoint[];
  /** The group's master name as configured in Sentinel (`shard-0`...). */
  masterName: string;
  sentinelPassword?: string;
  /**
   * ioredis' own failover detector: a `+switch-master` subscription that drops the connection when
   * a failover is announced. Default FALSE, because in ioredis 5.9.2 it (1) can end the client for
   * good: a detector left over from the previous connection that fires while the connector is
   * resolving the master makes `connector.connect` reject with "Connection is closed." and
   * `Redis.connect` then sets status `end` — no more reconnects (seen once in ~6 local kill -9
   * failovers); (2) reacts to every group's switch and to each Sentinel's (later) copy of the
   * announcement, dropping a fresh connection to the new master. `RedisShardClient` does the same
   * job safely (targeted, and only while connected to the old master); use it, or set this to true
   * for a bare client and accept the above. Without either, after a graceful failover a client
   * keeps writing to the old master until Sentinel demotes it (~10 s measured), writes then lost.
   */
  failoverDetector?: boolean;
}

/** A single Redis server, no Sentinel (tests, or a Service that always points at the master). */
export interface RedisDirectTarget {
  host: string;
  port: number;
}

/** Capped exponential reconnect backoff. */
export interface RedisReconnectOptions {
  initialDelayMs: number;
  maxDelayMs: number;
}

/** Safety and connection settings shared by both targets; see each field for the trade-off. */
export interface RedisTuning {
  /** TCP connect + handshake budget per attempt (also per Sentinel). Default 2000. */
  connectTimeoutMs?: number;
  /** Every command (and every Sentinel query) is rejected after this long. Default 1000. */
  commandTimeoutMs?: number;
  /**
   * How many reconnect attempts a command already written may wait through before it is rejected
   * with `MaxRetriesPerRequestError`. Default 1: an in-flight command survives one quick reconnect
   * (a failover), not an outage.
   */
  maxRetriesPerRequest?: number;
  /**
   * Reconnect backoff (with jitter, never gives up). Default 50 ms doubling up to 1000 ms: the cap
   * bounds how long a client keeps retrying a dead master after Sentinel has promoted a new one.
   */
  reconnect?: RedisReconnectOptions;
  /**
   * Queue commands issued while disconnected and send them after reconnecting. Default FALSE: they
   * fail at once with `RedisUnavailableError('DISCONNECTED')`, so the caller's breaker/fallback
   * reacts immediately and — more important — nothing is applied behind the caller's back: ioredis'
   * command timeout rejects a queued command's promise but still sends the command once connected,
   * so a queued INCR the caller already gave up on (and retried elsewhere) would land later. If you
   * enable it, every queued command is still bounded by `commandTimeoutMs`.
   */
  offlineQueue?: boolean;
  /**
   * ioredis re-sends commands that were written but unanswered when the connection dropped
   * (default true, kept). The hazard: the server may have executed them already, so an in-flight
   * INCR can be applied twice. The platform's answer is that state-changing scripts carry a request
   * id checked inside the script (`idempotentScript`); callers whose writes are not idempotent set
   * this to false, and then such a command is rejected by `commandTimeoutMs` instead (ioredis 5.9
   * drops it without rejecting, so the timeout is what settles it).
   */
  autoResendUnfulfilledCommands?: boolean;
  /** `CLIENT SETNAME`, visible in `CLIENT LIST` (e.g. `hyperscale:like:shard-0`). */
  connectionName?: string;
  username?: string;
  password?: string;
  db?: number;
  /** Do not connect before the first command / `connect()`. Default false. */
  lazyConnect?: boolean;
  /** Connection events (errors at warn, state changes at info/debug). */
  logger?: Logger;
  /**
   * Called with the raw error of every rejected command (pipelined and scripted ones included), for
   * metrics. Must not throw.
   */
  onCommandError?: (err: unknown) => void;
}

/** Where to connect (Sentinel group or one server) plus the tuning; every field but the target is optional. */
export type RedisClientOptions = (RedisSentinelTarget | RedisDirectTarget) & RedisTuning;

/** Defaults of {@link RedisTuning}, chosen for a hot path on a local network (fail in ~1 s, not 10). */
export const REDIS_DEFAULTS = {
  connectTimeoutMs: 2_000,
  commandTimeoutMs: 1_000,
  maxRetriesPerRequest: 1,
  reconnect: { initialDelayMs: 50, maxDelayMs: 1_000 },
} as const;

/** True when the options describe a Sentinel-managed group. */
export function isSentinelTarget(
  target: RedisSentinelTarget | RedisDirectTarget,
): target is RedisSentinelTarget {
  return 'sentinels' in target;
}

/**
 * Capped exponential backoff with "equal jitter": attempt n waits between half and all of
 * min(max, initial × 2^(n−1)). Never returns null, so ioredis never gives up reconnecting — a
 * service outlives a Redis outage and recovers without a restart. `random` is injectable for tests.
 */
export function cappedBackoff(options: RedisReconnectOptions, random: () => number = Math.random) {
  return (attempt: number): number => {
    const exp = options.initialDelayMs * 2 ** Math.max(0, Math.min(attempt - 1, 30));
    const capped = Math.min(options.maxDelayMs, exp);
    return Math.round(capped / 2 + (random() * capped) / 2);
  };
}

/**
 * The ioredis options the platform uses; pure, exported for tests and for the rare caller that
 * must build a client itself. See {@link createRedisClient} for the choices.
 */
export function buildRedisOptions(options: RedisClientOptions): RedisOptions {
  const backoff = cappedBackoff(options.reconnect ?? REDIS_DEFAULTS.reconnect);
  const commandTimeout = options.commandTimeoutMs ?? REDIS_DEFAULTS.commandTimeoutMs;
  const connectTimeout = options.connectTimeoutMs ?? REDIS_DEFAULTS.connectTimeoutMs;
  const common: RedisOptions = {
    connectTimeout,
    commandTimeout,
    maxRetriesPerRequest: options.maxRetriesPerRequest ?? REDIS_DEFAULTS.maxRetriesPerRequest,
    retryStrategy: backoff,
    enableAutoPipelining: true,
    enableOfflineQueue: options.offlineQueue ?? false,
    autoResendUnfulfilledCommands: options.autoResendUnfulfilledCommands ?? true,
    // READONLY: we are talking to a (demoted) replica. Reconnect, which for Sentinel means asking
    // the Sentinels for the current master; the failed command itself is rejected (it did not run).
    reconnectOnError: (err) => isReadOnlyReply(err),
    enableReadyCheck: true,
    // CLIENT SETINFO does not exist before Redis 7.2; skip it rather than fail on every connect.
    disableClientInfo: true,
    lazyConnect: options.lazyConnect ?? false,
  };
  if (options.connectionName !== undefined) common.connectionName = options.connectionName;
  if (options.username !== undefined) common.username = options.username;
  if (options.password !== undefined) common.password = options.password;
  if (options.db !== undefined) common.db = options.db;
  if (!isSentinelTarget(options)) return { ...common, host: options.host, port: options.port };
  if (options.sentinels.length === 0)
    throw new RangeError('Redis sentinel target needs at least one sentinel');
  return {
    ...common,
    sentinels: options.sentinels.map(({ host, port }) => ({ host, port })),
    name: options.masterName,
    role: 'master',
    failoverDetector: options.failoverDetector ?? false,
    sentinelCommandTimeout: commandTimeout,
    sentinelRetryStrategy: backoff, // all Sentinels unreachable: keep trying, capped
    sentinelReconnectStrategy: backoff, // failover-detector subscriptions: keep them alive
    ...(options.sentinelPassword === undefined ? {} : { sentinelPassword: options.sentinelPassword }),
  };
}

/**
 * Creates an ioredis 5.9 client for a Sentinel group (`{ sentinels, masterName }`) or one server
 * (`{ host, port }`) with the platform's safety settings:
 * - every command is bounded by `commandTimeoutMs`, every connect by `connectTimeoutMs`;
 * - while disconnected, commands fail fast (no offline queue, see {@link RedisTuning.offlineQueue});
 * - reconnects forever with capped, jittered backoff; `maxRetriesPerRequest` 1;
 * - auto-pipelining on (concurrent commands of one tick share one write), each command still sent
 *   — and traced — in its caller's context ({@link sendInCallerContext});
 * - Sentinel: the ready check refuses a node whose role is not master, so the client never settles
 *   on a demoted primary; ioredis' `failoverDetector` is off by default (see its doc) — wrap the
 *   client in `RedisShardClient` for an immediate, safe reaction to `+switch-master`;
 * - `READONLY` replies trigger a reconnect (to the current master, via Sentinel).
 * The client connects immediately unless `lazyConnect`; await `waitForRedisReady` before serving,
 * since commands issued before the first connection fail fast. An `error` listener that logs is
 * always attached (ioredis would otherwise print unhandled errors to the console).
 */
export function createRedisClient(options: RedisClientOptions): Redis {
  const client = new Redis(buildRedisOptions(options));
  sendInCallerContext(client);
  const logger = options.logger;
  client.on('error', (err: Error) =>
    logger?.warn({ err: { message: err.message } }, 'redis connection error'),
  );
  if (logger) {
    client.on('ready', () => logger.info('redis connection ready'));
    client.on('reconnecting', (delay: number) => logger.debug({ delayMs: delay }, 'redis reconnecting'));
    client.on('end', () => logger.info('redis connection ended'));
  }
  if (options.onCommandError) observeCommandErrors(client, options.onCommandError);
  return client;
}

/**
 * Resolves once `client` is ready to take commands; rejects after `timeoutMs` or when the client
 * ends. Needed because commands issued before the first connection fail fast.
 */
export function waitForRedisReady(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  if (client.status === 'end') return Promise.reject(new Error('Redis client is closed'));
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('end', onEnd);
    };
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('Redis client closed before it was ready'));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready within ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    client.on('ready', onReady);
    client.on('end', onEnd);
    if (client.status === 'wait') client.connect().catch(() => undefined); // lazyConnect
  });
}

/**
 * Reports every rejected command to `listener` by wrapping this instance's `sendCommand`, the one
 * funnel every command (plain, pipelined, scripted, resent) passes through in ioredis 5. The
 * command's own promise is observed, not replaced, so callers see exactly what ioredis gives them.
 * A script's NOSCRIPT round trip is not reported: ioredis chains its EVAL fallback onto the
 * command's promise before sending it.
 */
function observeCommandErrors(client: Redis, listener: (err: unknown) => void): void {
  const send = client.sendCommand.bind(client);
  client.sendCommand = (command: Command, stream?: Parameters<Redis['sendCommand']>[1]) => {
    const result = send(command, stream);
    command.promise.catch((err: unknown) => {
      try {
        listener(err);
      } catch {
        // a metrics callback must never break a command
      }
    });
    return result;
  };
}
