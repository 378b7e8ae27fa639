/**
 * MysqlRouter against the real primary + replica: default reads hit the replica, sticky
 * read-your-writes per caller for the window (time-based and GTID-based), transactions commit,
 * roll back, and retry deadlock victims; BIGINT values stay exact.
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
import type { MysqlPools } from '../src/mysql/index.js';

const logger = pino({ level: process.env['LOG_LEVEL'] ?? 'silent' });
const db = `hs_test_${Math.random().toString(36).slice(2, 10)}`;
const STICKY_MS = 1500;

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
let serverIds: { primary: number; replica: number };

async function readsTotal(target: string, reason: string): Promise<number> {
  const metric = await registry.getSingleMetric('hyperscale_mysql_reads_total')?.get();
  return (
    metric?.values.find((v) => v.labels['target'] === target && v.labels['reason'] === reason)?.value ?? 0
  );
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
    connectionLimit: 8,
    connectTimeoutMs: 1000,
    queryTimeoutMs: 2000,
    logger,
    registry,
  });
  monitor = new ReplicaLagMonitor({
    primary: pools.primary,
    replica: pools.replica!,
    intervalMs: 200,
    logger,
    registry,
  });
  await monitor.start();
  router = new MysqlRouter({ pools, replicaStatus: monitor, stickyWindowMs: STICKY_MS, logger, registry });
  const [p] = await pools.primary.select<{ id: string | number }>('SELECT @@server_id AS id');
  const [r] = await pools.replica!.select<{ id: string | number }>('SELECT @@server_id AS id');
  serverIds = { primary: Number(p?.id), replica: Number(r?.id) };
  expect(serverIds.primary).not.toBe(serverIds.replica);
});

afterAll(async () => {
  await monitor?.stop();
  await pools?.close();
  if (admin) {
    await dropDatabase(admin.primary, db);
    await admin.close();
  }
});

async function servedBy(callerId?: string): Promise<{ target: string; reason: string; serverId: number }> {
  const r = await router.readQuery<{ id: string | number }>('SELECT @@server_id AS id', [], { callerId });
  return { target: r.target, reason: r.reason, serverId: Number(r.rows[0]?.id) };
}

describe('MysqlRouter reads', () => {
  it('sends default reads to the replica (the replica server answers them)', async () => {
    expect(monitor.status()).toMatchObject({ up: true, ioRunning: true, sqlRunning: true });
    const before = await readsTotal('replica', 'default');
    for (let i = 0; i < 5; i += 1) {
      expect(await servedBy()).toEqual({ target: 'replica', reason: 'default', serverId: serverIds.replica });
    }
    expect(await servedBy('someone')).toEqual({
      target: 'replica',
      reason: 'default',
      serverId: serverIds.replica,
    });
    expect((await readsTotal('replica', 'default')) - before).toBe(6);
    expect(router.read().target).toBe('replica');
  });

  it('keeps a writer on the primary for the sticky window only, other callers stay on the replica', async () => {
    await router.write(
      async (conn) => {
        await conn.execute(
          'INSERT INTO like_records (post_id, user_id, created_at) VALUES (?, ?, UTC_TIMESTAMP(6))',
          ['p1', 'alice'],
        );
      },
      { callerId: 'alice' },
    );
    const wroteAt = performance.now();
    const stickyBefore = await readsTotal('primary', 'sticky');

    const alice = await router.readQuery<{ n: string }>(
      'SELECT COUNT(*) AS n FROM like_records WHERE user_id = ?',
      ['alice'],
      { callerId: 'alice' },
    );
    expect(alice).toMatchObject({ target: 'primary', reason: 'sticky', rows: [{ n: '1' }] });
    expect(await servedBy('alice')).toEqual({
      target: 'primary',
      reason: 'sticky',
      serverId: serverIds.primary,
    });
    expect(await servedBy('bob')).toEqual({
      target: 'replica',
      reason: 'default',
      serverId: serverIds.replica,
    });
    expect(await servedBy()).toMatchObject({ target: 'replica', reason: 'default' });
    expect(router.read('alice')).toMatchObject({ target: 'primary', reason: 'sticky' });

    // still sticky shortly before the window ends
    await sleep(Math.max(0, STICKY_MS - 300 - (performance.now() - wroteAt)));
    expect(await servedBy('alice')).toMatchObject({ target: 'primary', reason: 'sticky' });
    // and back on the replica after it
    await sleep(Math.max(0, STICKY_MS + 50 - (performance.now() - wroteAt)));
    expect(await servedBy('alice')).toEqual({
      target: 'replica',
      reason: 'default',
      serverId: serverIds.replica,
    });
    expect((await readsTotal('primary', 'sticky')) - stickyBefore).toBe(3);
  });

  it('markWrote makes a caller sticky without a router transaction', async () => {
    router.markWrote('carol');
    expect(await servedBy('carol')).toMatchObject({ target: 'primary', reason: 'sticky' });
    expect(await servedBy('dave')).toMatchObject({ target: 'replica', reason: 'default' });
  });

  it('GTID mode: a writer reads the replica once it applied the write, and sees it', async () => {
    const gtidRouter = new MysqlRouter({
      pools,
      replicaStatus: monitor,
      gtidReadYourWrites: true,
      gtidWaitMs: 200,
      logger,
      registry,
    });
    for (let i = 0; i < 5; i += 1) {
      const postId = `gtid-${i}`;
      await gtidRouter.write(
        (conn) => conn.execute('INSERT INTO post_stats (post_id, like_count) VALUES (?, 1)', [postId]),
        { callerId: 'erin' },
      );
      const r = await gtidRouter.readQuery<{ like_count: string; id: string | number }>(
        'SELECT like_count, @@server_id AS id FROM post_stats WHERE post_id = ?',
        [postId],
        {
          callerId: 'erin',
        },
      );
      // either the replica confirmed the GTID (and so has the row) or the primary served it
      expect(r.reason).toBe('sticky');
      expect(r.rows).toHaveLength(1);
      expect(Number(r.rows[0]?.id)).toBe(r.target === 'replica' ? serverIds.replica : serverIds.primary);
    }
    // with a healthy replica the GTID arrives within the 200 ms wait
    expect(await readsTotal('replica', 'sticky')).toBeGreaterThanOrEqual(4);
  });

  it('falls back to the primary when the replica does not have the table yet', async () => {
    const conn = await pools.primary.acquire();
    try {
      // a table that exists only on the primary (not binlogged for this session)
      await conn.unprepared('SET SESSION sql_log_bin = 0');
      await conn.execute('CREATE TABLE primary_only (id INT PRIMARY KEY)');
      await conn.unprepared('SET SESSION sql_log_bin = 1');
    } finally {
      conn.destroy();
    }
    const r = await router.readQuery('SELECT COUNT(*) AS n FROM primary_only');
    expect(r).toMatchObject({ target: 'primary', reason: 'replica_down', rows: [{ n: '0' }] });
    // a missing table is not an outage: the replica stays up for everyone else
    expect(monitor.status().up).toBe(true);
    expect(await servedBy()).toMatchObject({ target: 'replica', reason: 'default' });
  });

  it('does not retry SQL errors on the primary', async () => {
    await expect(router.readQuery('SELEC nonsense')).rejects.toThrow(/SQL syntax/);
  });
});

describe('MysqlRouter writes', () => {
  it('keeps BIGINT counters exact beyond 2^53', async () => {
    const big = 9007199254740993n; // 2^53 + 1: not representable as a double
    await router.write((conn) =>
      conn.execute('INSERT INTO counters (name, value) VALUES (?, ?)', ['big', big]),
    );
    await router.write((conn) =>
      conn.execute('UPDATE counters SET value = value + ? WHERE name = ?', [2n, 'big']),
    );
    await router.write((conn) =>
      conn.execute('UPDATE counters SET value = value + ? WHERE name = ?', [1, 'big']),
    ); // a JS number delta
    const [row] = await router.primary.select<{ value: string }>(
      'SELECT value FROM counters WHERE name = ?',
      ['big'],
    );
    expect(row?.value).toBe('9007199254740996');
    expect(BigInt(row?.value ?? '0')).toBe(big + 3n);
    // and compared exactly in WHERE clauses
    expect(await router.primary.select('SELECT 1 FROM counters WHERE value = ?', [big + 3n])).toHaveLength(1);
    expect(await router.primary.select('SELECT 1 FROM counters WHERE value = ?', [big + 2n])).toHaveLength(0);
  });

  it('rolls back everything when fn throws', async () => {
    const err = await router
      .write(async (conn) => {
        await conn.execute('INSERT INTO counters (name, value) VALUES (?, 1)', ['rolled-back']);
        throw new Error('boom');
      })
      .catch((e: unknown) => e);
    expect((err as Error).message).toBe('boom');
    expect(
      await router.primary.select('SELECT 1 FROM counters WHERE name = ?', ['rolled-back']),
    ).toHaveLength(0);
  });

  it('does not retry constraint violations', async () => {
    let attempts = 0;
    await expect(
      router.write(async (conn) => {
        attempts += 1;
        await conn.execute('INSERT INTO counters (name, value) VALUES (?, 1), (?, 1)', ['dup', 'dup']);
      }),
    ).rejects.toThrow(/Duplicate entry/);
    expect(attempts).toBe(1);
  });

  it('re-runs the deadlock victim so both conflicting transactions commit', async () => {
    await router.write((conn) =>
      conn.execute('INSERT INTO counters (name, value) VALUES (?, 0), (?, 0)', ['dl-a', 'dl-b']),
    );
    const metric = registry.getSingleMetric('hyperscale_mysql_transactions_total');
    const retriesBefore =
      (await metric?.get())?.values.find((v) => v.labels['outcome'] === 'retry')?.value ?? 0;

    // Both transactions lock their first row, meet at the barrier, then take the other's row.
    let arrived = 0;
    let release!: () => void;
    const barrier = new Promise<void>((resolve) => (release = resolve));
    const attempts = { ab: 0, ba: 0 };
    const tx = (first: string, second: string, key: 'ab' | 'ba') =>
      router.write(async (conn) => {
        attempts[key] += 1;
        await conn.execute('UPDATE counters SET value = value + 1 WHERE name = ?', [first]);
        if (attempts[key] === 1) {
          arrived += 1;
          if (arrived === 2) release();
          await barrier;
        }
        await conn.execute('UPDATE counters SET value = value + 1 WHERE name = ?', [second]);
      });
    await Promise.all([tx('dl-a', 'dl-b', 'ab'), tx('dl-b', 'dl-a', 'ba')]);

    const rows = await router.primary.select<{ name: string; value: string }>(
      'SELECT name, value FROM counters WHERE name IN (?, ?) ORDER BY name',
      ['dl-a', 'dl-b'],
    );
    expect(rows).toEqual([
      { name: 'dl-a', value: '2' },
      { name: 'dl-b', value: '2' },
    ]);
    expect(attempts.ab + attempts.ba).toBe(3); // exactly one victim, re-run once
    const retriesAfter =
      (await metric?.get())?.values.find((v) => v.labels['outcome'] === 'retry')?.value ?? 0;
    expect(retriesAfter - retriesBefore).toBe(1);
  });
});
