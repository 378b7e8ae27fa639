/**
 * Migrations against the real MariaDB pair: the schema of DESIGN §4 is created exactly, reruns
 * are no-ops, concurrent runs serialise on GET_LOCK and both succeed, the schema replicates,
 * checksums and forward-only targets are enforced.
 */
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stack } from '../../../hack/testing/stack-control.js';
import {
  MysqlMigrationError,
  createDatabase,
  createMysqlPools,
  defaultMigrationsDir,
  dropDatabase,
  migrate,
  migrationLockName,
  waitForReplicaCatchUp,
} from '../src/mysql/index.js';
import type { MysqlPools } from '../src/mysql/index.js';

const logger = pino({ level: process.env['LOG_LEVEL'] ?? 'silent' });
const suffix = Math.random().toString(36).slice(2, 10);
/** Versions of the migration files shipped with the platform (`NNN.do.*.sql`), ascending. */
const SHIPPED = (await readdir(defaultMigrationsDir))
  .map((file) => /^(\d+)\.do\./.exec(file)?.[1])
  .filter((version): version is string => version !== undefined)
  .map(Number)
  .sort((a, b) => a - b);
const LATEST = SHIPPED[SHIPPED.length - 1] ?? 0;
const dbs = {
  main: `hs_test_${suffix}`,
  target: `hs_test_${suffix}_t`,
  checksum: `hs_test_${suffix}_c`,
  lock: `hs_test_${suffix}_l`,
};

function url(endpoint: { host: string; port: number; user: string; password: string }, db: string): string {
  return `mysql://${endpoint.user}:${endpoint.password}@${endpoint.host}:${endpoint.port}/${db}`;
}
const primaryUrl = (db: string): string => url(stack.mysql.primary, db);

let admin: MysqlPools;
let tempDir: string | undefined;

beforeAll(async () => {
  admin = createMysqlPools({
    primaryUrl: primaryUrl(stack.mysql.database),
    replicaUrl: url(stack.mysql.replica, stack.mysql.database),
    connectionLimit: 4,
    connectTimeoutMs: 2000,
    queryTimeoutMs: 10_000,
    logger,
  });
  for (const db of Object.values(dbs)) await createDatabase(admin.primary, db);
});

afterAll(async () => {
  for (const db of Object.values(dbs)) await dropDatabase(admin.primary, db);
  await admin.close();
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
});

interface ColumnRow {
  TABLE_NAME: string;
  COLUMN_NAME: string;
  COLUMN_TYPE: string;
  IS_NULLABLE: string;
  CHARACTER_SET_NAME: string | null;
  COLLATION_NAME: string | null;
}

async function columns(db: string, server: 'primary' | 'replica'): Promise<Map<string, ColumnRow>> {
  const pool = server === 'primary' ? admin.primary : admin.replica!;
  const rows = await pool.select<ColumnRow>(
    `SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, COLLATION_NAME
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    [db],
  );
  return new Map(rows.map((r) => [`${r.TABLE_NAME}.${r.COLUMN_NAME}`, r]));
}

async function indexColumns(db: string): Promise<Record<string, string>> {
  const rows = await admin.primary.select<{
    TABLE_NAME: string;
    INDEX_NAME: string;
    cols: string;
    NON_UNIQUE: number | string;
  }>(
    `SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) AS cols
       FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? GROUP BY TABLE_NAME, INDEX_NAME, NON_UNIQUE`,
    [db],
  );
  return Object.fromEntries(
    rows.map((r) => [
      `${r.TABLE_NAME}.${r.INDEX_NAME}`,
      `${Number(r.NON_UNIQUE) === 0 ? 'unique' : 'key'}(${r.cols})`,
    ]),
  );
}

describe('migrate', () => {
  it('two concurrent runs both succeed, exactly one applies the migrations', async () => {
    const [a, b] = await Promise.all([
      migrate({ url: primaryUrl(dbs.main), logger }),
      migrate({ url: primaryUrl(dbs.main), logger }),
    ]);
    const appliedCounts = [a.applied.length, b.applied.length].sort();
    expect(appliedCounts).toEqual([0, SHIPPED.length]);
    expect(a.toVersion).toBe(LATEST);
    expect(b.toVersion).toBe(LATEST);
    const versions = await admin.primary.select<{ version: string }>(
      `SELECT version FROM \`${dbs.main}\`.schemaversion ORDER BY version`,
    );
    expect(versions.map((v) => Number(v.version))).toEqual([0, ...SHIPPED]);
  });

  it('creates the DESIGN §4 tables with ASCII binary ids, exact BIGINTs and the specified keys', async () => {
    const cols = await columns(dbs.main, 'primary');
    const ids = [
      'like_records.post_id',
      'like_records.user_id',
      'post_stats.post_id',
      'counters.name',
      'unique_daily.name',
      'unique_daily.user_id',
      'consumer_offsets.group_id',
      'consumer_offsets.topic',
      'like_fallback_marks.post_id',
      'like_fallback_marks.user_id',
    ];
    for (const id of ids) {
      expect(cols.get(id), id).toMatchObject({
        CHARACTER_SET_NAME: 'ascii',
        COLLATION_NAME: 'ascii_bin',
        IS_NULLABLE: 'NO',
      });
    }
    expect(cols.get('like_records.post_id')?.COLUMN_TYPE).toBe('varchar(64)');
    expect(cols.get('counters.name')?.COLUMN_TYPE).toBe('varchar(200)');
    expect(cols.get('like_records.created_at')?.COLUMN_TYPE).toBe('datetime(6)');
    expect(cols.get('post_stats.like_count')).toMatchObject({ COLUMN_TYPE: 'bigint(20)', IS_NULLABLE: 'NO' });
    expect(cols.get('counters.value')).toMatchObject({ COLUMN_TYPE: 'bigint(20)', IS_NULLABLE: 'NO' });
    expect(cols.get('unique_daily.day')?.COLUMN_TYPE).toBe('date');
    expect(cols.get('consumer_offsets.partition')?.COLUMN_TYPE).toBe('int(11)');
    expect(cols.get('consumer_offsets.next_offset')?.COLUMN_TYPE).toBe('bigint(20)');
    expect(cols.get('like_fallback_marks.through_offset')).toMatchObject({
      COLUMN_TYPE: 'bigint(20)',
      IS_NULLABLE: 'NO',
    });
    expect(cols.has('post_stats.updated_at') && cols.has('counters.updated_at')).toBe(true);
    expect(cols.has('replication_heartbeat.ts')).toBe(true);

    expect(await indexColumns(dbs.main)).toEqual({
      'like_records.PRIMARY': 'unique(post_id,user_id)',
      'like_records.idx_like_records_user_created': 'key(user_id,created_at)',
      'post_stats.PRIMARY': 'unique(post_id)',
      'counters.PRIMARY': 'unique(name)',
      'unique_daily.PRIMARY': 'unique(name,day,user_id)',
      'consumer_offsets.PRIMARY': 'unique(group_id,topic,partition)',
      'replication_heartbeat.PRIMARY': 'unique(id)',
      'fallback_events.PRIMARY': 'unique(event_id)',
      'fallback_events.idx_fallback_events_created': 'key(created_at)',
      'like_fallback_marks.PRIMARY': 'unique(post_id,user_id)',
      'like_fallback_marks.idx_like_fallback_marks_created': 'key(created_at)',
      'presence.PRIMARY': 'unique(room,user_id)',
      'presence.idx_presence_room_seen': 'key(room,last_seen)',
      'presence.idx_presence_last_seen': 'key(last_seen)',
      'schemaversion.PRIMARY': 'unique(version)',
    });
  });

  it('ids compare case-sensitively and reject non-ASCII (strict mode)', async () => {
    await admin.primary.execute(
      `INSERT INTO \`${dbs.main}\`.post_stats (post_id, like_count) VALUES (?, 1), (?, 2)`,
      ['Post-1', 'post-1'],
    );
    const rows = await admin.primary.select<{ like_count: string }>(
      `SELECT like_count FROM \`${dbs.main}\`.post_stats WHERE post_id = ?`,
      ['post-1'],
    );
    expect(rows).toEqual([{ like_count: '2' }]);
    await expect(
      admin.primary.execute(`INSERT INTO \`${dbs.main}\`.post_stats (post_id, like_count) VALUES (?, 1)`, [
        'pöst',
      ]),
    ).rejects.toThrow(/Incorrect string value/);
  });

  it('is idempotent: a rerun applies nothing', async () => {
    const again = await migrate({ url: primaryUrl(dbs.main), logger });
    expect(again).toMatchObject({ fromVersion: LATEST, toVersion: LATEST, applied: [] });
  });

  it('the schema reaches the replica', async () => {
    await waitForReplicaCatchUp(admin.primary, admin.replica!, 10_000);
    const replicaCols = await columns(dbs.main, 'replica');
    const primaryCols = await columns(dbs.main, 'primary');
    expect([...replicaCols.keys()]).toEqual([...primaryCols.keys()]);
  });

  it('honours targetVersion and refuses to go backwards', async () => {
    const first = await migrate({ url: primaryUrl(dbs.target), logger, targetVersion: 1 });
    expect(first).toMatchObject({ fromVersion: 0, toVersion: 1 });
    expect(first.applied.map((m) => m.version)).toEqual([1]);
    const tables = await admin.primary.select<{ t: string }>(
      'SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1',
      [dbs.target],
    );
    expect(tables.map((r) => r.t)).not.toContain('replication_heartbeat');

    const rest = await migrate({ url: primaryUrl(dbs.target), logger });
    expect(rest.applied.map((m) => m.version)).toEqual(SHIPPED.slice(1));

    await expect(migrate({ url: primaryUrl(dbs.target), logger, targetVersion: 1 })).rejects.toThrow(
      /forward-only/,
    );
    await expect(migrate({ url: primaryUrl(dbs.target), logger, targetVersion: 99 })).rejects.toThrow(
      MysqlMigrationError,
    );
  });

  it('fails when an applied migration file was edited (checksum)', async () => {
    tempDir = await mkdtemp(path.join(tmpdir(), 'hs-migrations-'));
    for (const f of await readdir(defaultMigrationsDir))
      await copyFile(path.join(defaultMigrationsDir, f), path.join(tempDir, f));
    await migrate({ url: primaryUrl(dbs.checksum), logger, migrationsDir: tempDir });
    await writeFile(
      path.join(tempDir, '002.do.replication-heartbeat.sql'),
      'CREATE TABLE IF NOT EXISTS replication_heartbeat (id INT PRIMARY KEY);\n',
    );
    const err = await migrate({ url: primaryUrl(dbs.checksum), logger, migrationsDir: tempDir }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MysqlMigrationError);
    expect((err as Error).message).toMatch(/checksum/i);
  });

  it('waits for a concurrent migrator and gives up after lockTimeoutSec', async () => {
    const holder = await admin.primary.acquire();
    try {
      const [got] = await holder.select<{ l: number | string }>('SELECT GET_LOCK(?, 0) AS l', [
        migrationLockName(dbs.lock),
      ]);
      expect(Number(got?.l)).toBe(1);
      const started = performance.now();
      const err = await migrate({ url: primaryUrl(dbs.lock), logger, lockTimeoutSec: 1 }).catch(
        (e: unknown) => e,
      );
      const waited = performance.now() - started;
      expect(err).toBeInstanceOf(MysqlMigrationError);
      expect((err as Error).message).toMatch(/held .* for more than 1 s/);
      expect(waited).toBeGreaterThanOrEqual(900);
      expect(waited).toBeLessThan(5000);
      const tables = await admin.primary.select(
        'SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?',
        [dbs.lock],
      );
      expect(tables).toHaveLength(0);
    } finally {
      await holder.select('SELECT RELEASE_LOCK(?)', [migrationLockName(dbs.lock)]).catch(() => undefined);
      holder.release();
    }
    const after = await migrate({ url: primaryUrl(dbs.lock), logger });
    expect(after.toVersion).toBe(LATEST);
  });

  it('rejects a URL without database and an unreachable server with a typed error', async () => {
    await expect(
      migrate({ url: `mysql://hyperscale:hyperscale@127.0.0.1:${stack.mysql.primary.port}`, logger }),
    ).rejects.toThrow(/no database/);
    const started = performance.now();
    await expect(
      migrate({ url: 'mysql://hyperscale:hyperscale@127.0.0.1:1/x', logger, connectTimeoutMs: 1000 }),
    ).rejects.toThrow(MysqlMigrationError);
    expect(performance.now() - started).toBeLessThan(3000);
  });
});
