/**
 * Retention of `fallback_events`, `like_fallback_marks` and `presence` against the real MariaDB primary: one pass deletes
 * exactly the rows older than the limits (MySQL's clock), in statements of at most the batch size;
 * a table locked by another session makes passes fail (statement timeout), which is logged and
 * counted while the other table is still served, and a later pass deletes once the lock is gone;
 * the real writer process runs the loop with its defaults and stops it on SIGTERM.
 */
import { Writable } from 'node:stream';
import { createMysqlPools, Registry, type MysqlExecutor, type MysqlPools } from '@hyperscale/platform';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { RetentionLoop, retentionTables } from '../src/retention.js';
import {
  buildWriter,
  createTestBed,
  killAllWriters,
  logger,
  metricValue,
  scrapeMetric,
  startWriter,
  waitFor,
  waitWriterReady,
  type TestBed,
} from './helpers.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** The writer's defaults: FALLBACK_EVENTS_RETENTION_MS 7 days, PRESENCE_RETENTION_MS 1 hour. */
const TABLES = retentionTables({ fallbackEventsMs: 7 * DAY, presenceMs: HOUR });

let bed: TestBed;
const extraPools: MysqlPools[] = [];

beforeAll(async () => {
  buildWriter();
  bed = await createTestBed('retention', 1);
});
afterAll(async () => {
  killAllWriters();
  for (const pools of extraPools) await pools.close();
  await bed?.cleanup();
});

/** Inserts fallback event ids stamped `ageMs` before MySQL's now. */
async function fallbackRows(ids: readonly string[], ageMs: number): Promise<void> {
  await bed.pool.execute(
    `INSERT INTO fallback_events (event_id, created_at)
     SELECT j.id, UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND
     FROM JSON_TABLE(?, '$[*]' COLUMNS (id VARCHAR(64) PATH '$')) AS j`,
    [ageMs * 1000, JSON.stringify(ids)],
  );
}

/** Inserts like fallback marks for (post, user) pairs stamped `ageMs` before MySQL's now. */
async function markRows(users: readonly string[], ageMs: number): Promise<void> {
  await bed.pool.execute(
    `INSERT INTO like_fallback_marks (post_id, user_id, kafka_partition, through_offset, created_at)
     SELECT 'post-1', j.u, 0, 42, UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND
     FROM JSON_TABLE(?, '$[*]' COLUMNS (u VARCHAR(64) PATH '$')) AS j`,
    [ageMs * 1000, JSON.stringify(users)],
  );
}

/** Inserts presence rows (room, user) last seen `ageMs` before MySQL's now. */
async function presenceRows(users: readonly string[], ageMs: number): Promise<void> {
  await bed.pool.execute(
    `INSERT INTO presence (room, user_id, last_seen)
     SELECT CONCAT('room-', MOD(CRC32(j.u), 7)), j.u, UTC_TIMESTAMP(3) - INTERVAL ? MICROSECOND
     FROM JSON_TABLE(?, '$[*]' COLUMNS (u VARCHAR(64) PATH '$')) AS j`,
    [ageMs * 1000, JSON.stringify(users)],
  );
}

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

async function remaining(): Promise<{ fallback: string[]; presence: string[] }> {
  const f = await bed.pool.select<{ id: string }>('SELECT event_id AS id FROM fallback_events ORDER BY 1');
  const p = await bed.pool.select<{ id: string }>('SELECT user_id AS id FROM presence ORDER BY 1');
  return { fallback: f.map((r) => r.id), presence: p.map((r) => r.id) };
}

async function remainingMarks(): Promise<string[]> {
  const m = await bed.pool.select<{ id: string }>('SELECT user_id AS id FROM like_fallback_marks ORDER BY 1');
  return m.map((r) => r.id);
}

async function clear(): Promise<void> {
  await bed.pool.execute('DELETE FROM fallback_events');
  await bed.pool.execute('DELETE FROM like_fallback_marks');
  await bed.pool.execute('DELETE FROM presence');
}

/** The real pool, recording what every DELETE changed (to see the batches). */
function recording(pool: MysqlExecutor): { executor: MysqlExecutor; deletes: Map<string, number[]> } {
  const deletes = new Map<string, number[]>();
  const executor: MysqlExecutor = {
    select: (sql, params, options) => pool.select(sql, params, options),
    async execute(sql, params, options) {
      const result = await pool.execute(sql, params, options);
      const table = /^DELETE FROM (\w+)/.exec(sql)?.[1] ?? 'other';
      deletes.set(table, [...(deletes.get(table) ?? []), result.affectedRows]);
      return result;
    },
  };
  return { executor, deletes };
}

describe('retention of fallback_events and presence', () => {
  it('one pass deletes exactly the rows older than the limits, 1000 rows per statement at most', async () => {
    await clear();
    const oldFallback = [...ids('f-old', 2_345), ...ids('f-edge-old', 3)];
    const keptFallback = [...ids('f-edge-new', 40), ...ids('f-new', 200)];
    await fallbackRows(ids('f-old', 2_345), 8 * DAY);
    await fallbackRows(ids('f-edge-old', 3), 7 * DAY + 2 * MINUTE);
    await fallbackRows(ids('f-edge-new', 40), 7 * DAY - 2 * MINUTE);
    await fallbackRows(ids('f-new', 200), MINUTE);
    const oldPresence = [...ids('p-old', 1_234), ...ids('p-edge-old', 5)];
    const keptPresence = [...ids('p-edge-new', 30), ...ids('p-new', 50)];
    await presenceRows(ids('p-old', 1_234), 2 * HOUR);
    await presenceRows(ids('p-edge-old', 5), HOUR + 2 * MINUTE);
    await presenceRows(ids('p-edge-new', 30), HOUR - 2 * MINUTE);
    await presenceRows(ids('p-new', 50), 10_000);
    await markRows(ids('m-old', 1_001), 7 * DAY + 2 * MINUTE);
    await markRows(ids('m-new', 20), 7 * DAY - 2 * MINUTE);

    const registry = new Registry();
    const { executor, deletes } = recording(bed.pool);
    const loop = new RetentionLoop({ pool: executor, tables: TABLES, intervalMs: HOUR, logger, registry });
    const started = performance.now();
    const result = await loop.runOnce();
    const ms = performance.now() - started;
    console.info(
      `retention pass: ${result.fallback_events} fallback_events + ${result.presence} presence rows in ${ms.toFixed(0)} ms; ` +
        `statements ${JSON.stringify(Object.fromEntries(deletes))}`,
    );

    expect(result).toEqual({
      fallback_events: oldFallback.length,
      like_fallback_marks: 1_001,
      presence: oldPresence.length,
    });
    expect(await remainingMarks()).toEqual(ids('m-new', 20).sort());
    expect(deletes.get('like_fallback_marks')).toEqual([1000, 1]);
    const left = await remaining();
    expect(left.fallback).toEqual([...keptFallback].sort());
    expect(left.presence).toEqual([...keptPresence].sort());
    // Bounded batches, repeated until a statement deletes fewer rows than the batch.
    expect(deletes.get('fallback_events')).toEqual([1000, 1000, 348]);
    expect(deletes.get('presence')).toEqual([1000, 239]);
    expect(
      await metricValue(registry, 'hyperscale_writer_retention_deleted_total', { table: 'fallback_events' }),
    ).toBe(oldFallback.length);
    expect(
      await metricValue(registry, 'hyperscale_writer_retention_deleted_total', { table: 'presence' }),
    ).toBe(oldPresence.length);
    expect(await metricValue(registry, 'hyperscale_writer_retention_errors_total')).toBe(0);
    // Nothing left to do: one statement per table, zero rows.
    expect(await loop.runOnce()).toEqual({ fallback_events: 0, like_fallback_marks: 0, presence: 0 });
    await loop.stop();
  });

  it('repeats a full batch until a statement deletes fewer rows (exact multiple of the batch)', async () => {
    await clear();
    await presenceRows(ids('p-old', 14), 2 * HOUR);
    const { executor, deletes } = recording(bed.pool);
    const loop = new RetentionLoop({
      pool: executor,
      tables: TABLES,
      intervalMs: HOUR,
      batchSize: 7,
      logger,
      registry: new Registry(),
    });
    expect(await loop.runOnce()).toEqual({ fallback_events: 0, like_fallback_marks: 0, presence: 14 });
    expect(deletes.get('presence')).toEqual([7, 7, 0]);
    await loop.stop();
  });

  it('a locked table fails its passes (logged, counted), the other table is still served, and it recovers', async () => {
    await clear();
    // Short statement deadline, as in production (MYSQL_QUERY_TIMEOUT_MS).
    const pools = createMysqlPools({
      primaryUrl: bed.url,
      connectionLimit: 4,
      connectTimeoutMs: 1_000,
      queryTimeoutMs: 500,
    });
    extraPools.push(pools);
    const lines: string[] = [];
    const captured = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    const registry = new Registry();
    const loop = new RetentionLoop({
      pool: pools.primary,
      tables: TABLES,
      intervalMs: 100,
      logger: captured,
      registry,
    });
    // Stopped even when an assertion fails: left running, it would delete the next test's rows.
    onTestFinished(() => loop.stop());
    const errors = () =>
      metricValue(registry, 'hyperscale_writer_retention_errors_total', { table: 'presence' });
    const locker = await bed.pool.acquire();
    let locked = false;
    try {
      await locker.unprepared('LOCK TABLES presence WRITE');
      locked = true;
      loop.start();
      await fallbackRows(['during-lock'], 8 * DAY);
      await waitFor(async () => (await errors()) >= 2, 10_000);
      expect(await errors(), 'presence passes failed and were retried').toBeGreaterThanOrEqual(2);
      // fallback_events is still served while presence fails.
      // (remaining() would wait for the lock: it reads presence too.)
      const fallbackLeft = async () =>
        (await bed.pool.select<{ n: number }>('SELECT COUNT(*) AS n FROM fallback_events'))[0]?.n;
      const ok = await waitFor(async () => Number(await fallbackLeft()) === 0, 5_000);
      expect(ok, 'old fallback_events deleted while presence is locked').toBe(true);
      expect(lines.some((l) => l.includes('retention pass failed') && l.includes('"table":"presence"'))).toBe(
        true,
      );
      await locker.unprepared('UNLOCK TABLES');
      locked = false;
    } finally {
      if (locked) locker.destroy();
      else locker.release();
    }
    const unlockedAt = Date.now() / 1000;
    await presenceRows(['after-unlock'], 2 * HOUR);
    await presenceRows(['recent'], MINUTE);
    const lastSuccess = () =>
      metricValue(registry, 'hyperscale_writer_retention_last_success_timestamp_seconds', {
        table: 'presence',
      });
    // Both, each in its own time: seeing the rows gone does not mean the loop has seen its
    // statement's answer yet (a statement can commit on the server and still pass its deadline).
    const recovered = await waitFor(async () => {
      const left = await remaining();
      return left.presence.length === 1 && (await lastSuccess()) >= unlockedAt - 1;
    }, 10_000);
    expect(recovered, 'old presence rows deleted after the lock is gone').toBe(true);
    expect((await remaining()).presence).toEqual(['recent']);
    expect(await lastSuccess()).toBeGreaterThanOrEqual(unlockedAt - 1);
    await loop.stop();
    // Stopped: no pass runs any more.
    const failedAtStop = await errors();
    await fallbackRows(['after-stop'], 8 * DAY);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await remaining()).fallback).toEqual(['after-stop']);
    console.info(`locked presence: ${failedAtStop} failed passes (statement timeout 500 ms), then recovered`);
  });

  it('the writer process runs the loop with its defaults and stops it on SIGTERM', async () => {
    await clear();
    await fallbackRows(ids('proc-old', 50), 8 * DAY);
    await fallbackRows(['proc-new'], 6 * DAY);
    await presenceRows(ids('proc-old', 20), 2 * HOUR);
    await presenceRows(['proc-new'], 30 * MINUTE);
    const writer = await startWriter(bed, bed.groupId('retention'), { RETENTION_INTERVAL_MS: '200' });
    await waitWriterReady(writer);
    const done = await waitFor(async () => {
      const left = await remaining();
      return left.fallback.length === 1 && left.presence.length === 1;
    }, 15_000);
    expect(done, writer.output()).toBe(true);
    expect(await remaining()).toEqual({ fallback: ['proc-new'], presence: ['proc-new'] });
    expect(
      await scrapeMetric(writer, 'hyperscale_writer_retention_deleted_total', { table: 'fallback_events' }),
    ).toBe(50);
    expect(
      await scrapeMetric(writer, 'hyperscale_writer_retention_deleted_total', { table: 'presence' }),
    ).toBe(20);
    writer.child.kill('SIGTERM');
    const exit = await writer.exited;
    expect(exit.code, writer.output()).toBe(0);
    expect(writer.output()).toMatch(
      /"step":"retention".*"shutdown step done"|"shutdown step done".*"step":"retention"/,
    );
  });
});
