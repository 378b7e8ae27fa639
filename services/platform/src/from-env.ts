/**
 * Wiring shared by the HTTP services, from the validated environment fragments of config.ts
 * (`redisEnv`, `mysqlEnv`): the same variables always build the same clients.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { z } from 'zod';
import type { mysqlEnv, redisEnv } from './config.js';
import { migrate } from './mysql/migrate.js';
import { createMysqlPools, type MysqlPools } from './mysql/pool.js';
import { ReplicaLagMonitor } from './mysql/replica-lag-monitor.js';
import { MysqlRouter } from './mysql/router.js';
import type { RedisShardOptions } from './redis/shard-client.js';

type RedisEnvValues = z.infer<z.ZodObject<typeof redisEnv>> & { SERVICE_NAME: string };
type MysqlEnvValues = z.infer<z.ZodObject<typeof mysqlEnv>>;

/**
 * One shard per REDIS_MASTER_NAMES entry (shard name = master name) behind REDIS_SENTINELS, or per
 * REDIS_DIRECT server (`direct-<i>`), in the order given: slot tables depend on that order.
 */
export function redisShardOptionsFromEnv(config: RedisEnvValues): RedisShardOptions[] {
  const tuning = {
    connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS,
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
  };
  if (config.REDIS_SENTINELS !== undefined) {
    const sentinels = config.REDIS_SENTINELS;
    return (config.REDIS_MASTER_NAMES ?? []).map((masterName) => ({
      shard: masterName,
      sentinels,
      masterName,
      connectionName: `hyperscale:${config.SERVICE_NAME}:${masterName}`,
      ...tuning,
    }));
  }
  return (config.REDIS_DIRECT ?? []).map(({ host, port }, i) => ({
    shard: `direct-${i}`,
    host,
    port,
    connectionName: `hyperscale:${config.SERVICE_NAME}:direct-${i}`,
    ...tuning,
  }));
}

/** The MySQL side of a service: pools, the replica lag monitor (when there is a replica), the router. */
export interface MysqlStack {
  pools: MysqlPools;
  monitor: ReplicaLagMonitor | undefined;
  router: MysqlRouter;
}

/**
 * Migrates (when MYSQL_MIGRATE_ON_START), opens the pools, starts the replica lag monitor and
 * builds the lag-aware, sticky router. Stop `monitor` and close `pools` on shutdown.
 */
export async function startMysqlFromEnv(
  config: MysqlEnvValues,
  deps: { logger: Logger; registry: Registry },
): Promise<MysqlStack> {
  const { logger, registry } = deps;
  if (config.MYSQL_MIGRATE_ON_START) await migrate({ url: config.MYSQL_PRIMARY_URL, logger });
  const pools = createMysqlPools({
    primaryUrl: config.MYSQL_PRIMARY_URL,
    replicaUrl: config.MYSQL_REPLICA_URL,
    connectionLimit: config.MYSQL_CONNECTION_LIMIT,
    connectTimeoutMs: config.MYSQL_CONNECT_TIMEOUT_MS,
    queryTimeoutMs: config.MYSQL_QUERY_TIMEOUT_MS,
    killTimedOutSessions: config.MYSQL_KILL_TIMED_OUT_SESSIONS,
    logger,
    registry,
  });
  const monitor =
    pools.replica === null
      ? undefined
      : new ReplicaLagMonitor({ primary: pools.primary, replica: pools.replica, logger, registry });
  await monitor?.start();
  const router = new MysqlRouter({
    pools,
    ...(monitor === undefined ? {} : { replicaStatus: monitor }),
    stickyWindowMs: config.MYSQL_STICKY_WINDOW_MS,
    maxReplicaLagMs: config.MYSQL_MAX_REPLICA_LAG_MS,
    logger,
    registry,
  });
  return { pools, monitor, router };
}
