/**
 * A statement abandoned at its deadline is ended on the real MariaDB primary too: an auto-committed
 * write stuck behind a row lock, a transaction's statement stuck behind a row lock, a long read.
 * Without the kill the server does not notice the closed socket while it waits: the write lands
 * once the lock is gone, after its caller was told it timed out; the transaction keeps its row
 * locks until InnoDB's lock wait timeout; the read runs to its end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stack } from '../../../hack/testing/stack-control.js';
import {
  MysqlTimeoutError,
  createDatabase,
  createMysqlPools,
  dropDatabase,
  mysqlMetrics,
} from '../src/mysql/index.js';
import { ServerThreadKiller } from '../src/mysql/server-thread-killer.js';
import type { MysqlPools } from '../src/mysql/index.js';

const logger = pino({ level: process.env['LOG_LEVEL'] ?? 'silent' });
const db = `hs_test_${Math.random().toString(36).slice(2, 10)}`;
const { host, port, user, password } = stack.mysql.primary;
const urlOf = (database: string) => `mysql://${user}:${password}@${host}:${port}/${database}`;

/** The deadline of the statements meant to pass it; the pool's default leaves the others room. */
const SHORT = { timeoutMs: 300 };

let admin: MysqlPools;
let pools: MysqlPools;
let registry: Registry;

async function kills(outcome: string): Promise<number> {
  const metric = await registry.getSingleMetric('hyperscale_mysql_timeout_kills_total')?.get();
  return metric?.values.find((v) => v.labels['outcome'] === outcome)?.value ?? 0;
}

/** Server threads of this test's database still executing `marker` (their statement text). */
async function running(marker: string): Promise<number> {
  const rows = await admin.primary.select<{ n: number | string }>(
    `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST
     WHERE DB = ? AND INFO LIKE ? AND ID <> CONNECTION_ID()`,
    [db, `%${marker}%`],
  );
  return Number(rows[0]?.n ?? 0);
}

async function eventually(
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(intervalMs);
  }
}

beforeAll(async () => {
  admin = createMysqlPools({
    primaryUrl: urlOf(stack.mysql.database),
    connectionLimit: 4,
    connectTimeoutMs: 2_000,
    queryTimeoutMs: 15_000,
    logger,
  });
  await createDatabase(admin.primary, db);
  await admin.primary.execute(`CREATE TABLE ${db}.t (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB`);
  await admin.primary.execute(`INSERT INTO ${db}.t VALUES (1, 0)`);
  registry = new Registry();
  pools = createMysqlPools({
    primaryUrl: urlOf(db),
    connectionLimit: 4,
    connectTimeoutMs: 2_000,
    queryTimeoutMs: 5_000,
    logger,
    registry,
  });
});

afterAll(async () => {
  await pools?.close();
  if (admin) {
    await dropDatabase(admin.primary, db).catch(() => undefined);
    await admin.close();
  }
});

describe('a statement past its deadline', () => {
  it('is ended on the server: a write waiting on a row lock never lands after its timeout', async () => {
    const holder = await admin.primary.acquire();
    try {
      await holder.unprepared('START TRANSACTION');
      await holder.execute(`UPDATE ${db}.t SET v = v + 1 WHERE id = 1`);
      const write = pools.primary.execute(
        'UPDATE t SET v = v + 10 WHERE id = 1 /* timeout-row-write */',
        [],
        SHORT,
      );
      await expect(write).rejects.toBeInstanceOf(MysqlTimeoutError);
      const timedOutAt = performance.now();
      const ended = await eventually(async () => (await running('timeout-row-write')) === 0, 2_000, 5);
      expect(ended, 'the timed-out UPDATE still waits on the server').toBe(true);
      console.info(
        `timed-out UPDATE gone from the server ${(performance.now() - timedOutAt).toFixed(1)} ms after its deadline`,
      );
      await holder.unprepared('COMMIT');
    } finally {
      // Destroyed, not released: a failure before COMMIT would leave its transaction open.
      holder.destroy();
    }
    // Give a surviving statement every chance to run once the lock is gone.
    await sleep(300);
    const [row] = await admin.primary.select<{ v: number }>(`SELECT v FROM ${db}.t WHERE id = 1`);
    expect(Number(row?.v), 'the write reported as timed out landed').toBe(1);
    expect(await kills('killed')).toBe(1);
  });

  it('rolls back the session: its row locks are freed at once, not at the lock wait timeout', async () => {
    const holder = await admin.primary.acquire();
    const txn = await pools.primary.acquire();
    try {
      await txn.unprepared('START TRANSACTION');
      // The session takes a row lock on id 1, then waits on id 3, held by `holder`.
      await admin.primary.execute(`INSERT INTO ${db}.t VALUES (3, 0)`);
      await holder.unprepared('START TRANSACTION');
      await holder.execute(`UPDATE ${db}.t SET v = v + 1 WHERE id = 3`);
      await txn.execute('UPDATE t SET v = 100 WHERE id = 1');
      await expect(
        txn.execute('UPDATE t SET v = 100 WHERE id = 3 /* timeout-row */', [], SHORT),
      ).rejects.toBeInstanceOf(MysqlTimeoutError);
      // Row 1 is free again well within InnoDB's lock wait timeout (50 s by default).
      const started = performance.now();
      await admin.primary.execute(`UPDATE ${db}.t SET v = v + 1 WHERE id = 1`, [], { timeoutMs: 3_000 });
      expect(performance.now() - started).toBeLessThan(2_000);
      await holder.unprepared('COMMIT');
    } finally {
      holder.destroy();
      txn.release();
    }
    const rows = await admin.primary.select<{ id: number; v: number }>(
      `SELECT id, v FROM ${db}.t ORDER BY id`,
    );
    // The session's UPDATE of row 1 was rolled back; only the later increments remain.
    expect(rows.map((r) => [Number(r.id), Number(r.v)])).toEqual([
      [1, 2],
      [3, 1],
    ]);
    expect(await kills('killed')).toBe(2);
  });

  it('ends a long read as well', async () => {
    const conn = await pools.primary.acquire();
    try {
      await expect(conn.select('SELECT SLEEP(5) AS s /* timeout-sleep */', [], SHORT)).rejects.toBeInstanceOf(
        MysqlTimeoutError,
      );
    } finally {
      conn.release();
    }
    const ended = await eventually(async () => (await running('timeout-sleep')) === 0, 2_000);
    expect(ended, 'SLEEP(5) still runs on the server').toBe(true);
    expect(await kills('killed')).toBe(3);
  });
});

describe('killTimedOutSessions: false', () => {
  it('leaves the timed-out statement to the server', async () => {
    const unkilledRegistry = new Registry();
    const unkilled = createMysqlPools({
      primaryUrl: urlOf(db),
      connectionLimit: 1,
      connectTimeoutMs: 2_000,
      queryTimeoutMs: 5_000,
      killTimedOutSessions: false,
      logger,
      registry: unkilledRegistry,
    });
    try {
      await expect(
        unkilled.primary.select('SELECT SLEEP(2) AS s /* timeout-unkilled */', [], SHORT),
      ).rejects.toBeInstanceOf(MysqlTimeoutError);
      await sleep(500);
      expect(await running('timeout-unkilled'), 'SLEEP(2) still runs on the server').toBe(1);
      expect(
        await unkilledRegistry.getSingleMetric('hyperscale_mysql_timeout_kills_total')?.get(),
      ).toMatchObject({
        values: [],
      });
    } finally {
      await unkilled.close();
    }
  });
});

describe('ServerThreadKiller', () => {
  const killerRegistry = new Registry();
  const kills = mysqlMetrics(killerRegistry).timeoutKills;
  const killer = (url: string, maxInFlight = 4) =>
    new ServerThreadKiller({ pool: 'primary', url, timeoutMs: 1_000, maxInFlight, kills, logger });

  it('reports a session that already ended as gone', async () => {
    expect(await killer(urlOf(db)).kill(2 ** 31 - 7)).toBe('gone');
  });

  it('skips kills beyond its bound and invalid ids, and reports an unreachable server as failed', async () => {
    const bounded = killer('mysql://nobody:x@127.0.0.1:1/none', 1);
    const first = bounded.kill(123);
    expect(await bounded.kill(124)).toBe('skipped');
    expect(await first).toBe('failed');
    expect(await bounded.kill(0)).toBe('skipped');
    await bounded.drain();
    const values = (await kills.get()).values.map((v) => [v.labels['outcome'], v.value]);
    expect(Object.fromEntries(values)).toEqual({ gone: 1, skipped: 2, failed: 1 });
  });
});
