/**
 * Replica outages against the real servers: a frozen replica (SIGSTOP) makes queries fail at
 * their deadline instead of hanging, a killed replica (kill -9) sends reads to the primary with
 * reason `replica_down`; after restart reads return to the replica and replication catches up
 * with what was written meanwhile. Every disruption is undone in a finally and again in afterAll.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stack, startServer, stopServer } from '../../../hack/testing/stack-control.js';
import {
  MysqlRouter,
  MysqlTimeoutError,
  ReplicaLagMonitor,
  createDatabase,
  createMysqlPools,
  dropDatabase,
  migrate,
  waitForReplicaCatchUp,
} from '../src/mysql/index.js';
import type { MysqlPools, ReadResult } from '../src/mysql/index.js';

const logger = pino({ level: process.env['LOG_LEVEL'] ?? 'silent' });
const db = `hs_test_${Math.random().toString(36).slice(2, 10)}`;
const QUERY_TIMEOUT_MS = 1000;
const CONNECT_TIMEOUT_MS = 1000;
const INTERVAL_MS = 200;
const REPLICA = 'mariadb-replica';
/** stop/start go through hack/stack.sh, which serialises with other engineers' stack commands: allow for waiting. */
const DISRUPTIVE_TEST_TIMEOUT_MS = 300_000;

function url(
  endpoint: { host: string; port: number; user: string; password: string },
  database: string,
): string {
  return `mysql://${endpoint.user}:${endpoint.password}@${endpoint.host}:${endpoint.port}/${database}`;
}

let admin: MysqlPools;
let pools: MysqlPools;
let registry: Registry;
let monitor: ReplicaLagMonitor;
let router: MysqlRouter;

async function gauge(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value;
}

async function timedRead(
  sql: string,
  params: string[] = [],
): Promise<{ ms: number; result: ReadResult<Record<string, unknown>> }> {
  const started = performance.now();
  const result = await router.readQuery(sql, params);
  return { ms: performance.now() - started, result };
}

/** Polls until reads are served by the replica again (monitor saw it up and caught up). */
async function waitForReplicaReads(timeoutMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    const { result } = await timedRead('SELECT 1 AS one');
    if (result.target === 'replica') return performance.now() - started;
    if (performance.now() - started > timeoutMs)
      throw new Error(
        `reads did not return to the replica within ${timeoutMs} ms: ${JSON.stringify(monitor.status(), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`,
      );
    await sleep(100);
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
  await createDatabase(admin.primary, db);
  await migrate({ url: url(stack.mysql.primary, db), logger });
  await waitForReplicaCatchUp(admin.primary, admin.replica!, 15_000);

  registry = new Registry();
  pools = createMysqlPools({
    primaryUrl: url(stack.mysql.primary, db),
    replicaUrl: url(stack.mysql.replica, db),
    connectionLimit: 4,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    queryTimeoutMs: QUERY_TIMEOUT_MS,
    logger,
    registry,
  });
  monitor = new ReplicaLagMonitor({
    primary: pools.primary,
    replica: pools.replica!,
    intervalMs: INTERVAL_MS,
    probeTimeoutMs: 500,
    logger,
    registry,
  });
  await monitor.start();
  router = new MysqlRouter({ pools, replicaStatus: monitor, logger, registry });
});

afterAll(async () => {
  await startServer(REPLICA); // no-op when it runs; resumes or restarts it otherwise
  await monitor?.stop();
  await pools?.close();
  if (admin) {
    await waitForReplicaCatchUp(admin.primary, admin.replica!, 30_000).catch((err: unknown) =>
      logger.error({ err }, 'replica did not catch up'),
    );
    await dropDatabase(admin.primary, db);
    await admin.close();
  }
}, DISRUPTIVE_TEST_TIMEOUT_MS);

describe('replica frozen (SIGSTOP)', () => {
  it(
    'fails queries at their deadline instead of hanging, reads move to the primary and come back',
    async () => {
      expect((await timedRead('SELECT 1 AS one')).result.target).toBe('replica');
      // A pool with two warm connections, to observe each deadline separately.
      const probe = createMysqlPools({
        primaryUrl: url(stack.mysql.replica, db),
        connectionLimit: 2,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        queryTimeoutMs: QUERY_TIMEOUT_MS,
        logger,
      });
      const warm = await Promise.all([probe.primary.acquire(), probe.primary.acquire()]);
      await Promise.all(warm.map((c) => c.select('SELECT 1')));
      warm.forEach((c) => c.release());
      // A router whose health source has not noticed anything yet (probes once a minute): it must
      // find out by itself, within one statement deadline, and remember it.
      const slowMonitor = new ReplicaLagMonitor({
        primary: pools.primary,
        replica: pools.replica!,
        intervalMs: 60_000,
        logger,
        registry: new Registry(),
      });
      await slowMonitor.start();
      const unaware = new MysqlRouter({
        pools,
        replicaStatus: slowMonitor,
        logger,
        registry: new Registry(),
      });
      expect(unaware.read().target).toBe('replica');

      await stopServer(REPLICA, 'STOP');
      try {
        const timed = async (fn: () => Promise<unknown>): Promise<{ ms: number; err: unknown }> => {
          const started = performance.now();
          const err = await fn().then(
            () => undefined,
            (e: unknown) => e,
          );
          return { ms: performance.now() - started, err };
        };
        // warm connection, per-statement deadline
        const short = await timed(() => probe.primary.select('SELECT 1', [], { timeoutMs: 300 }));
        expect(short.err).toBeInstanceOf(MysqlTimeoutError);
        expect(short.err).toMatchObject({ phase: 'query', timeoutMs: 300 });
        expect(short.ms).toBeGreaterThanOrEqual(290);
        expect(short.ms).toBeLessThan(300 + 200);
        // warm connection, default deadline (queryTimeoutMs)
        const direct = await timed(() => probe.primary.select('SELECT 1'));
        expect(direct.err).toMatchObject({ phase: 'query', timeoutMs: QUERY_TIMEOUT_MS });
        expect(direct.ms).toBeGreaterThanOrEqual(QUERY_TIMEOUT_MS - 10);
        expect(direct.ms).toBeLessThan(QUERY_TIMEOUT_MS + 200);
        // both timed-out connections were destroyed: a new one cannot even finish its handshake
        const fresh = await timed(() => probe.primary.select('SELECT 1'));
        expect(fresh.err).toBeInstanceOf(MysqlTimeoutError);
        expect(fresh.err).toMatchObject({ phase: 'acquire' });
        expect(fresh.ms).toBeLessThan(CONNECT_TIMEOUT_MS + 200);

        // the unaware router pays one deadline, answers from the primary, then skips the replica
        const u1s = performance.now();
        const u1 = await unaware.readQuery('SELECT @@server_id AS id');
        const u1ms = performance.now() - u1s;
        expect(u1).toMatchObject({ target: 'primary', reason: 'replica_down' });
        expect(u1ms).toBeLessThan(Math.max(QUERY_TIMEOUT_MS, CONNECT_TIMEOUT_MS) + 300);
        const u2s = performance.now();
        expect(await unaware.readQuery('SELECT 1 AS one')).toMatchObject({
          target: 'primary',
          reason: 'replica_down',
        });
        expect(performance.now() - u2s).toBeLessThan(100);

        // the monitored router: never slower than one deadline either, fast once the monitor knows
        const reads = [];
        for (let i = 0; i < 5; i += 1) reads.push(await timedRead('SELECT 1 AS one'));
        for (const r of reads) {
          expect(r.result).toMatchObject({ target: 'primary', reason: 'replica_down' });
          expect(r.ms).toBeLessThan(Math.max(QUERY_TIMEOUT_MS, CONNECT_TIMEOUT_MS) + 300);
        }
        logger.info(
          {
            shortMs: short.ms,
            directMs: direct.ms,
            freshMs: fresh.ms,
            unawareFirstMs: u1ms,
            monitoredReadMs: reads.map((r) => Math.round(r.ms)),
          },
          'frozen replica',
        );
        expect(reads[4]!.ms).toBeLessThan(100);
        await sleep(2 * INTERVAL_MS + 600);
        expect(monitor.status().up).toBe(false);
        expect(await gauge('hyperscale_mysql_replica_up')).toBe(0);
        expect(Number.isNaN(await gauge('hyperscale_mysql_replica_lag_seconds'))).toBe(true);
      } finally {
        await startServer(REPLICA);
        await slowMonitor.stop();
        await probe.close();
      }
      const backMs = await waitForReplicaReads(15_000);
      logger.info({ backMs }, 'reads back on the replica after SIGCONT');
      expect(await gauge('hyperscale_mysql_replica_up')).toBe(1);
    },
    DISRUPTIVE_TEST_TIMEOUT_MS,
  );
});

describe('replica killed (kill -9)', () => {
  it(
    'routes reads to the primary (replica_down) within a bounded time and returns after restart with replication caught up',
    async () => {
      expect((await timedRead('SELECT 1 AS one')).result.target).toBe('replica');
      await stopServer(REPLICA, 'KILL');
      const killedAt = performance.now();
      try {
        const first = await timedRead('SELECT 1 AS one');
        expect(first.result).toMatchObject({ target: 'primary', reason: 'replica_down' });
        expect(first.ms).toBeLessThan(QUERY_TIMEOUT_MS);

        // written while the replica is gone
        await router.write((conn) =>
          conn.execute('INSERT INTO counters (name, value) VALUES (?, ?)', ['written-during-outage', 42]),
        );

        const reads = [];
        for (let i = 0; i < 10; i += 1) {
          reads.push(await timedRead('SELECT value FROM counters WHERE name = ?', ['written-during-outage']));
          await sleep(50);
        }
        for (const r of reads) {
          expect(r.result).toMatchObject({
            target: 'primary',
            reason: 'replica_down',
            rows: [{ value: '42' }],
          });
          expect(r.ms).toBeLessThan(QUERY_TIMEOUT_MS);
        }
        const downDetectedMs = performance.now() - killedAt;
        expect(monitor.status().up).toBe(false);
        expect(await gauge('hyperscale_mysql_replica_up')).toBe(0);
        logger.info(
          {
            firstReadMs: Math.round(first.ms),
            maxReadMs: Math.round(Math.max(...reads.map((r) => r.ms))),
            downDetectedMs,
          },
          'killed replica',
        );
      } finally {
        await startServer(REPLICA);
      }
      const backMs = await waitForReplicaReads(30_000);
      logger.info({ backMs }, 'reads back on the replica after restart');
      const status = monitor.status();
      expect(status).toMatchObject({ up: true, ioRunning: true, sqlRunning: true });
      // the row written during the outage arrived through replication
      await waitForReplicaCatchUp(pools.primary, pools.replica!, 15_000);
      const direct = await pools.replica!.select<{ value: string }>(
        'SELECT value FROM counters WHERE name = ?',
        ['written-during-outage'],
      );
      expect(direct).toEqual([{ value: '42' }]);
      const routed = await router.readQuery<{ value: string }>('SELECT value FROM counters WHERE name = ?', [
        'written-during-outage',
      ]);
      expect(routed).toEqual({ target: 'replica', reason: 'default', rows: [{ value: '42' }] });
    },
    DISRUPTIVE_TEST_TIMEOUT_MS,
  );
});
