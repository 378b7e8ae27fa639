/**
 * Replica lag on demand: with the replica's SQL thread stopped the measured lag grows past the
 * threshold although nobody but the heartbeat writes, reads move to the primary with reason
 * `lag`; after START SLAVE SQL_THREAD the lag drops and reads return to the replica, which then
 * has the row written meanwhile. The SQL thread is restarted in a finally and again in afterAll.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stack } from '../../../hack/testing/stack-control.js';
import {
  MysqlRouter,
  ReplicaLagMonitor,
  createDatabase,
  createMysqlPools,
  dropDatabase,
  migrate,
  waitForReplicaCatchUp,
} from '../src/mysql/index.js';
import type { MysqlPools, ReplicaStatus } from '../src/mysql/index.js';

const logger = pino({ level: process.env['LOG_LEVEL'] ?? 'silent' });
const db = `hs_test_${Math.random().toString(36).slice(2, 10)}`;
const MAX_LAG_MS = 1000;
const INTERVAL_MS = 200;

function url(
  endpoint: { host: string; port: number; user: string; password: string },
  database: string,
): string {
  return `mysql://${endpoint.user}:${endpoint.password}@${endpoint.host}:${endpoint.port}/${database}`;
}

let admin: MysqlPools;
/** Connection to the replica as `hyperscale` (ALL ON *.* includes REPLICATION SLAVE ADMIN) for STOP/START SLAVE. */
let replicaAdmin: MysqlPools;
let pools: MysqlPools;
let registry: Registry;
let monitor: ReplicaLagMonitor;
let router: MysqlRouter;

async function gauge(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value;
}

async function startSqlThread(): Promise<void> {
  await replicaAdmin.primary.execute('START SLAVE SQL_THREAD');
}

async function waitFor(
  what: string,
  timeoutMs: number,
  check: (s: ReplicaStatus) => boolean,
): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (check(monitor.status())) return performance.now() - started;
    if (performance.now() - started > timeoutMs)
      throw new Error(
        `${what} not reached within ${timeoutMs} ms; last status ${JSON.stringify(monitor.status(), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`,
      );
    await sleep(50);
  }
}

beforeAll(async () => {
  admin = createMysqlPools({
    primaryUrl: url(stack.mysql.primary, stack.mysql.database),
    replicaUrl: url(stack.mysql.replica, stack.mysql.database),
    connectionLimit: 2,
    connectTimeoutMs: 2000,
    queryTimeoutMs: 15_000,
    logger,
  });
  replicaAdmin = createMysqlPools({
    primaryUrl: url(stack.mysql.replica, stack.mysql.database),
    connectionLimit: 1,
    connectTimeoutMs: 2000,
    queryTimeoutMs: 10_000,
    logger,
  });
  await startSqlThread(); // a previous aborted run must not leave us with a stopped thread
  await createDatabase(admin.primary, db);
  await migrate({ url: url(stack.mysql.primary, db), logger });
  await waitForReplicaCatchUp(admin.primary, admin.replica!, 15_000);

  registry = new Registry();
  pools = createMysqlPools({
    primaryUrl: url(stack.mysql.primary, db),
    replicaUrl: url(stack.mysql.replica, db),
    connectionLimit: 4,
    connectTimeoutMs: 1000,
    queryTimeoutMs: 2000,
    logger,
    registry,
  });
  monitor = new ReplicaLagMonitor({
    primary: pools.primary,
    replica: pools.replica!,
    intervalMs: INTERVAL_MS,
    logger,
    registry,
  });
  await monitor.start();
  router = new MysqlRouter({ pools, replicaStatus: monitor, maxReplicaLagMs: MAX_LAG_MS, logger, registry });
});

afterAll(async () => {
  if (replicaAdmin) {
    await startSqlThread().catch((err: unknown) => logger.error({ err }, 'could not restart the SQL thread'));
    await replicaAdmin.close();
  }
  await monitor?.stop();
  await pools?.close();
  if (admin) {
    await dropDatabase(admin.primary, db);
    await admin.close();
  }
});

describe('replica lag', () => {
  it('is measured precisely while replication is healthy', async () => {
    await waitFor('a fresh healthy probe', 5000, (s) => s.up && s.lagSource === 'gtid_wait');
    const s = monitor.status();
    expect(s).toMatchObject({ up: true, ioRunning: true, sqlRunning: true, gtidBehind: 0n });
    expect(s.lagMs).toBeLessThan(100);
    expect(await gauge('hyperscale_mysql_replica_up')).toBe(1);
    expect(await gauge('hyperscale_mysql_replica_lag_seconds')).toBeLessThan(0.1);
    expect((await router.readQuery('SELECT 1 AS one')).target).toBe('replica');
  });

  it('grows past the threshold with the SQL thread stopped, reads go to the primary (reason lag), and recover after restart', async () => {
    await replicaAdmin.primary.execute('STOP SLAVE SQL_THREAD');
    try {
      const stoppedAt = performance.now();
      await router.write((conn) =>
        conn.execute('INSERT INTO counters (name, value) VALUES (?, ?)', ['written-while-lagging', 7]),
      );
      // the replica cannot have it
      expect(
        await pools.replica!.select('SELECT 1 FROM counters WHERE name = ?', ['written-while-lagging']),
      ).toHaveLength(0);

      const detectMs = await waitFor(
        'lag above threshold',
        10_000,
        (s) => s.lagMs !== null && s.lagMs > MAX_LAG_MS,
      );
      const lagging = monitor.status();
      logger.info({ detectMs, lagging }, 'lag detected');
      expect(lagging).toMatchObject({ up: true, sqlRunning: false, ioRunning: true, lagSource: 'heartbeat' });
      expect(lagging.gtidBehind).toBeGreaterThan(0n);
      // the lag is real time passing, not a step: it tracks how long the thread has been stopped
      expect(lagging.lagMs!).toBeLessThanOrEqual(performance.now() - stoppedAt + 2 * INTERVAL_MS);
      expect(detectMs).toBeLessThan(MAX_LAG_MS + 3 * INTERVAL_MS + 500);
      expect(await gauge('hyperscale_mysql_replica_lag_seconds')).toBeGreaterThan(MAX_LAG_MS / 1000);
      expect(await gauge('hyperscale_mysql_replica_thread_running', { thread: 'sql' })).toBe(0);
      expect(await gauge('hyperscale_mysql_replica_up')).toBe(1);

      const before = (await gauge('hyperscale_mysql_reads_total', { target: 'primary', reason: 'lag' })) ?? 0;
      const r = await router.readQuery<{ value: string }>(
        'SELECT value FROM counters WHERE name = ?',
        ['written-while-lagging'],
        { callerId: 'reader' },
      );
      expect(r).toEqual({ target: 'primary', reason: 'lag', rows: [{ value: '7' }] });
      expect(router.read().target).toBe('primary');
      expect((await gauge('hyperscale_mysql_reads_total', { target: 'primary', reason: 'lag' })) ?? 0).toBe(
        before + 1,
      );

      // keeps growing while stopped, with an idle application
      const first = monitor.status().lagMs!;
      await sleep(3 * INTERVAL_MS);
      expect(monitor.status().lagMs!).toBeGreaterThan(first + INTERVAL_MS);
    } finally {
      await startSqlThread();
    }
    const recoverMs = await waitFor(
      'lag back under threshold',
      10_000,
      (s) => s.up && s.lagMs !== null && s.lagMs < MAX_LAG_MS,
    );
    logger.info({ recoverMs }, 'lag recovered');
    expect(recoverMs).toBeLessThan(3 * INTERVAL_MS + 1000);
    expect(monitor.status().sqlRunning).toBe(true);
    const r = await router.readQuery<{ value: string }>('SELECT value FROM counters WHERE name = ?', [
      'written-while-lagging',
    ]);
    expect(r).toEqual({ target: 'replica', reason: 'default', rows: [{ value: '7' }] });
    expect(await gauge('hyperscale_mysql_replica_thread_running', { thread: 'sql' })).toBe(1);
  });
});
