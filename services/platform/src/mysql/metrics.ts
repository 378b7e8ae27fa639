import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

type MetricClass = typeof Counter | typeof Gauge | typeof Histogram;

function getOrCreate<M>(
  registry: Registry,
  name: string,
  kind: MetricClass,
  create: (registers: Registry[]) => M,
): M {
  const existing = registry.getSingleMetric(name);
  if (existing === undefined) return create([registry]);
  if (!(existing instanceof kind))
    throw new TypeError(`metric ${name} is already registered with another type`);
  return existing as M;
}

/**
 * Metrics of the MySQL pools and router. Created once per registry: building a second router or
 * pool on the same registry reuses the same series instead of throwing "already registered".
 */
export interface MysqlMetrics {
  readonly reads: Counter<'target' | 'reason'>;
  readonly statementDuration: Histogram<'pool' | 'outcome'>;
  readonly timeouts: Counter<'pool' | 'phase'>;
  readonly timeoutKills: Counter<'pool' | 'outcome'>;
  readonly transactions: Counter<'outcome'>;
  readonly stickyEvictions: Counter;
}

/** Registers (or finds) the pool/router metrics on `registry`. */
export function mysqlMetrics(registry: Registry): MysqlMetrics {
  return {
    reads: getOrCreate(
      registry,
      'hyperscale_mysql_reads_total',
      Counter,
      (registers) =>
        new Counter({
          name: 'hyperscale_mysql_reads_total',
          help: 'Reads routed by the MySQL router, by chosen pool (primary|replica) and reason (sticky|lag|replica_down|default).',
          labelNames: ['target', 'reason'] as const,
          registers,
        }),
    ),
    statementDuration: getOrCreate(
      registry,
      'hyperscale_mysql_statement_duration_seconds',
      Histogram,
      (registers) =>
        new Histogram({
          name: 'hyperscale_mysql_statement_duration_seconds',
          help: 'Duration of single MySQL statements by pool and outcome (ok|error|timeout).',
          labelNames: ['pool', 'outcome'] as const,
          buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
          registers,
        }),
    ),
    timeouts: getOrCreate(
      registry,
      'hyperscale_mysql_timeouts_total',
      Counter,
      (registers) =>
        new Counter({
          name: 'hyperscale_mysql_timeouts_total',
          help: 'MySQL operations abandoned at their deadline, by pool and phase (acquire|query|admin).',
          labelNames: ['pool', 'phase'] as const,
          registers,
        }),
    ),
    timeoutKills: getOrCreate(
      registry,
      'hyperscale_mysql_timeout_kills_total',
      Counter,
      (registers) =>
        new Counter({
          name: 'hyperscale_mysql_timeout_kills_total',
          help: 'Server sessions of timed-out statements ended with KILL CONNECTION, by pool and outcome (killed|gone|failed|skipped).',
          labelNames: ['pool', 'outcome'] as const,
          registers,
        }),
    ),
    transactions: getOrCreate(
      registry,
      'hyperscale_mysql_transactions_total',
      Counter,
      (registers) =>
        new Counter({
          name: 'hyperscale_mysql_transactions_total',
          help: 'Primary transactions run by the router, by outcome (commit|rollback|retry|unknown).',
          labelNames: ['outcome'] as const,
          registers,
        }),
    ),
    stickyEvictions: getOrCreate(
      registry,
      'hyperscale_mysql_sticky_evictions_total',
      Counter,
      (registers) =>
        new Counter({
          name: 'hyperscale_mysql_sticky_evictions_total',
          help: 'Recent writers forgotten before their sticky window ended because the tracking map was full.',
          registers,
        }),
    ),
  };
}

/** Gauges of the replica lag monitor. */
export interface ReplicaMetrics {
  readonly lagSeconds: Gauge;
  readonly up: Gauge;
  readonly gtidBehind: Gauge;
  readonly threadRunning: Gauge<'thread'>;
  readonly probeFailures: Counter<'server'>;
}

/** Registers (or finds) the replica monitor metrics on `registry`. */
export function replicaMetrics(registry: Registry): ReplicaMetrics {
  return {
    lagSeconds: getOrCreate(
      registry,
      'hyperscale_mysql_replica_lag_seconds',
      Gauge,
      (registers) =>
        new Gauge({
          name: 'hyperscale_mysql_replica_lag_seconds',
          help: 'Replica staleness in seconds (NaN while unknown: replica down or primary not probed).',
          registers,
        }),
    ),
    up: getOrCreate(
      registry,
      'hyperscale_mysql_replica_up',
      Gauge,
      (registers) =>
        new Gauge({
          name: 'hyperscale_mysql_replica_up',
          help: '1 when the replica answered its last probe, else 0.',
          registers,
        }),
    ),
    gtidBehind: getOrCreate(
      registry,
      'hyperscale_mysql_replica_gtid_behind',
      Gauge,
      (registers) =>
        new Gauge({
          name: 'hyperscale_mysql_replica_gtid_behind',
          help: 'Transactions the replica still has to apply (GTID sequence difference summed over domains).',
          registers,
        }),
    ),
    threadRunning: getOrCreate(
      registry,
      'hyperscale_mysql_replica_thread_running',
      Gauge,
      (registers) =>
        new Gauge({
          name: 'hyperscale_mysql_replica_thread_running',
          help: '1 when the replication thread (io|sql) is running according to SHOW SLAVE STATUS.',
          labelNames: ['thread'] as const,
          registers,
        }),
    ),
    probeFailures: getOrCreate(
      registry,
      'hyperscale_mysql_replica_probe_failures_total',
      Counter,
      (registers) =>
        new Counter({
          name: 'hyperscale_mysql_replica_probe_failures_total',
          help: 'Failed replica lag probes, by server (primary|replica).',
          labelNames: ['server'] as const,
          registers,
        }),
    ),
  };
}
