import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { cappedBackoff, REDIS_DEFAULTS, type RedisEndpoint, type RedisReconnectOptions } from './client.js';
import { parseSwitchMaster, type SwitchMasterMessage } from './master-tracker.js';

const CHANNEL = '+switch-master';

/** Where the Sentinels are, which group to follow, and the connection budget (defaults as the client). */
export interface SentinelSubscriberOptions {
  sentinels: readonly RedisEndpoint[];
  masterName: string;
  sentinelPassword?: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  reconnect?: RedisReconnectOptions;
  logger?: Logger;
  /** Called for every `+switch-master` of `masterName`, from every Sentinel (dedupe downstream). */
  onSwitch: (message: SwitchMasterMessage) => void;
}

/**
 * Listens to `+switch-master` on EVERY Sentinel, each over its own plain ioredis connection (a
 * Sentinel speaks enough of the Redis protocol for SUBSCRIBE), so losing one Sentinel loses no
 * announcement. Each connection reconnects forever with capped backoff and re-subscribes on every
 * `ready`. The SUBSCRIBE itself is bounded by `commandTimeoutMs`; a failed one is logged and the
 * connection is recycled to try again. Messages for other master names are ignored.
 */
export class SentinelSubscriber {
  private readonly connections: Redis[];
  private readonly subscribed = new Set<Redis>();
  private closed = false;

  constructor(private readonly options: SentinelSubscriberOptions) {
    const backoff = cappedBackoff(options.reconnect ?? REDIS_DEFAULTS.reconnect);
    this.connections = options.sentinels.map(({ host, port }) => {
      const connection = new Redis({
        host,
        port,
        ...(options.sentinelPassword === undefined ? {} : { password: options.sentinelPassword }),
        connectTimeout: options.connectTimeoutMs ?? REDIS_DEFAULTS.connectTimeoutMs,
        commandTimeout: options.commandTimeoutMs ?? REDIS_DEFAULTS.commandTimeoutMs,
        retryStrategy: backoff,
        maxRetriesPerRequest: 1,
        enableReadyCheck: false, // a Sentinel has no role/loading INFO worth checking
        enableOfflineQueue: false,
        autoResubscribe: false, // re-subscribed explicitly on every ready
        disableClientInfo: true,
        lazyConnect: true,
      });
      const where = `${host}:${port}`;
      connection.on('error', (err: Error) =>
        options.logger?.debug({ sentinel: where, err: err.message }, 'sentinel'),
      );
      connection.on('close', () => this.subscribed.delete(connection));
      connection.on('ready', () => this.subscribe(connection, where));
      connection.on('message', (channel: string, message: string) => {
        if (channel !== CHANNEL) return;
        const parsed = parseSwitchMaster(message);
        if (parsed === null) {
          options.logger?.warn({ sentinel: where, message }, 'unparseable +switch-master message');
        } else if (parsed.masterName === options.masterName) {
          options.onSwitch(parsed);
        }
      });
      return connection;
    });
  }

  /** Opens the connections (idempotent). */
  start(): void {
    for (const connection of this.connections) {
      if (connection.status === 'wait') connection.connect().catch(() => undefined); // retried by backoff
    }
  }

  /** How many Sentinels currently deliver `+switch-master` to us. */
  subscribedCount(): number {
    return this.subscribed.size;
  }

  /**
   * Resolves once at least `count` Sentinels (default: all) are subscribed; rejects after
   * `timeoutMs`. For startup checks and tests that must not race the subscription.
   */
  async whenSubscribed(timeoutMs: number, count = this.connections.length): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.subscribed.size < count) {
      if (this.closed) throw new Error('Sentinel subscriber is closed');
      if (Date.now() >= deadline) {
        throw new Error(`Only ${this.subscribed.size}/${count} Sentinels subscribed after ${timeoutMs} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Closes every Sentinel connection at once (no QUIT round trip to wait for). */
  close(): void {
    this.closed = true;
    this.subscribed.clear();
    for (const connection of this.connections) connection.disconnect();
  }

  private subscribe(connection: Redis, where: string): void {
    connection.subscribe(CHANNEL).then(
      () => {
        if (!this.closed && connection.status === 'ready') this.subscribed.add(connection);
      },
      (err: unknown) => {
        this.options.logger?.warn(
          { sentinel: where, err: err instanceof Error ? err.message : String(err) },
          'could not subscribe to +switch-master; reconnecting to retry',
        );
        if (!this.closed) connection.disconnect(true);
      },
    );
  }
}
