import { Counter, Gauge, type Registry } from 'prom-client';
import { getOrCreate } from '../resilience/metrics.js';
import type { RedisErrorKind } from './errors.js';

/** The Redis series of one shard, bound to its `shard` label. */
export interface RedisShardMetrics {
  setUp(up: boolean): void;
  masterSwitched(): void;
  commandFailed(kind: RedisErrorKind): void;
}

/**
 * Binds the per-shard Redis metrics on `registry` (shared metric objects, get-or-create):
 * `hyperscale_redis_up{shard}` (1 while the connection is ready), `hyperscale_redis_master_switches_total{shard}`
 * and `hyperscale_redis_command_errors_total{shard,kind}` (kind: timeout | unavailable | readonly | reply).
 */
export function redisShardMetrics(registry: Registry, shard: string): RedisShardMetrics {
  const up = getOrCreate(
    registry,
    'hyperscale_redis_up',
    () =>
      new Gauge({
        name: 'hyperscale_redis_up',
        help: '1 while the connection to the shard master is ready, else 0.',
        labelNames: ['shard'],
        registers: [registry],
      }),
    Gauge,
  );
  const switches = getOrCreate(
    registry,
    'hyperscale_redis_master_switches_total',
    () =>
      new Counter({
        name: 'hyperscale_redis_master_switches_total',
        help: 'Master changes seen for the shard (Sentinel +switch-master or reconnect to a new address).',
        labelNames: ['shard'],
        registers: [registry],
      }),
    Counter,
  );
  const errors = getOrCreate(
    registry,
    'hyperscale_redis_command_errors_total',
    () =>
      new Counter({
        name: 'hyperscale_redis_command_errors_total',
        help: 'Redis commands that failed, by error kind (timeout, unavailable, readonly, reply).',
        labelNames: ['shard', 'kind'],
        registers: [registry],
      }),
    Counter,
  );
  up.set({ shard }, 0);
  switches.inc({ shard }, 0);
  return {
    setUp: (isUp) => up.set({ shard }, isUp ? 1 : 0),
    masterSwitched: () => switches.inc({ shard }),
    commandFailed: (kind) => errors.inc({ shard, kind }),
  };
}
