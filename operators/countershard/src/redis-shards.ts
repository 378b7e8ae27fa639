import { createRedisClient, waitForRedisReady, type RedisEndpoint } from '@hyperscale/platform';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

export interface ShardTarget {
  sentinels: readonly RedisEndpoint[];
  masterName: string;
}

export interface ShardConnectionsOptions {
  /** Every command; DUMP/RESTORE of large sets must fit. Default 5 s. */
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  logger: Logger;
}

/**
 * One ioredis client per (Sentinels, master name), shared by every CounterShard that names the
 * same group, created on first use. Clients follow failovers through Sentinel; commands fail fast
 * while disconnected (no offline queue) and every command has a deadline.
 */
export class ShardConnections {
  private readonly clients = new Map<string, Redis>();

  constructor(private readonly options: ShardConnectionsOptions) {}

  /** The master of `target`, connected (waits up to the connect timeout ×2 for the first connection). */
  async get(target: ShardTarget): Promise<Redis> {
    const key = `${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}|${target.masterName}`;
    let client = this.clients.get(key);
    if (client === undefined) {
      client = createRedisClient({
        sentinels: target.sentinels,
        masterName: target.masterName,
        commandTimeoutMs: this.options.commandTimeoutMs ?? 5_000,
        connectTimeoutMs: this.options.connectTimeoutMs ?? 2_000,
        connectionName: `hyperscale:countershard-operator:${target.masterName}`,
        logger: this.options.logger.child({ component: 'redis', masterName: target.masterName }),
      });
      this.clients.set(key, client);
    }
    await waitForRedisReady(client, (this.options.connectTimeoutMs ?? 2_000) * 2);
    return client;
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.clients.values()].map((client) => client.quit().catch(() => client.disconnect())),
    );
    this.clients.clear();
  }
}
